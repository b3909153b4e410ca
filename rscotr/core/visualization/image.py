"""Drawing task results on images (OpenCV, RGB uint8 arrays in and out).

Every function takes an (H, W, 3) uint8 RGB image, leaves it unchanged and
returns a new image. Results are the plain forms of
:func:`rscotr.apis.inference.inference_multitask`:

- classification: ``[(class name, score), ...]`` (best first);
- detection: ``[{'bbox': [x1, y1, x2, y2], 'label': name, 'score': s}, ...]``
  in pixels of the image (ground truth: without ``'score'``);
- segmentation: an (H, W) integer label map.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'get_palette', 'label_map_to_color', 'overlay_seg', 'draw_det_boxes', 'draw_cls_topk',
    'draw_text_box'
]

Color = Tuple[int, int, int]


def get_palette(num_classes: int, palette: Optional[Sequence[Sequence[int]]] = None,
                seed: int = 42) -> np.ndarray:
    """(num_classes, 3) uint8 RGB colours.

    Args:
        num_classes: Number of colours needed.
        palette: Known colours (e.g. the Potsdam palette); used for the
            first classes, random colours for the rest.
        seed: Seed of the random colours (the same classes get the same
            colours in every picture).
    """
    rng = np.random.RandomState(seed)
    # bright colours: no channel combination darker than 64
    colours = rng.randint(64, 256, size=(max(num_classes, 0), 3)).astype(np.uint8)
    if palette is not None:
        known = np.asarray(palette, dtype=np.int64).reshape(-1, 3)[:num_classes]
        colours[:len(known)] = np.clip(known, 0, 255).astype(np.uint8)
    return colours


def label_map_to_color(label_map: np.ndarray, palette: np.ndarray,
                       ignore_color: Color = (0, 0, 0)) -> np.ndarray:
    """Colour image of a label map.

    Args:
        label_map: (H, W) integer labels.
        palette: (N, 3) uint8 RGB colours; labels ``>= N`` (or < 0) get
            ``ignore_color``.
        ignore_color: Colour of labels without a palette entry.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    table = np.empty((256, 3), dtype=np.uint8)
    table[:] = np.asarray(ignore_color, dtype=np.uint8)
    table[:min(len(palette), 256)] = palette[:256]
    labels = np.asarray(label_map)
    if labels.dtype != np.uint8:
        labels = np.where((labels >= 0) & (labels < 256), labels, 255).astype(np.uint8)
    return table[labels]


def overlay_seg(img: np.ndarray, label_map: np.ndarray, palette: np.ndarray,
                alpha: float = 0.5) -> np.ndarray:
    """Blend the palette colours of a label map over the image.

    Args:
        img: (H, W, 3) uint8 RGB.
        label_map: (H, W) labels (same size as ``img``).
        palette: (N, 3) uint8 RGB colours.
        alpha: Weight of the colours (0: image only, 1: colours only).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    if label_map.shape[:2] != img.shape[:2]:
        raise ValueError(f'label map {label_map.shape[:2]} and image {img.shape[:2]} differ '
                         'in size')
    colour = label_map_to_color(label_map, palette)
    return cv2.addWeighted(img, 1.0 - alpha, colour, alpha, 0.0)


def _sizes(img: np.ndarray) -> Tuple[float, int]:
    """Font scale and line thickness that stay readable on small and huge images."""
    side = min(img.shape[:2])
    font_scale = float(np.clip(side / 1000.0, 0.35, 3.0))
    thickness = int(np.clip(round(side / 400.0), 1, 8))
    return font_scale, thickness


def _text_color(background: Sequence[int]) -> Color:
    r, g, b = (int(v) for v in background[:3])
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 128 else (255, 255, 255)


def draw_text_box(img: np.ndarray, text: str, origin: Tuple[int, int], color: Sequence[int],
                  font_scale: Optional[float] = None, thickness: Optional[int] = None) -> None:
    """Draw ``text`` on a filled box of ``color`` with its top-left corner at
    ``origin`` (kept inside the image), in place."""
    auto_scale, auto_thickness = _sizes(img)
    font_scale = auto_scale if font_scale is None else font_scale
    thickness = max(1, (auto_thickness if thickness is None else thickness) // 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    h, w = img.shape[:2]
    x = int(np.clip(origin[0], 0, max(w - tw - 2, 0)))
    y = int(np.clip(origin[1], 0, max(h - th - baseline - 2, 0)))
    colour = tuple(int(c) for c in color[:3])
    cv2.rectangle(img, (x, y), (x + tw + 2, y + th + baseline + 2), colour, -1)
    cv2.putText(img, text, (x + 1, y + th + 1), font, font_scale, _text_color(colour),
                thickness, cv2.LINE_AA)


def draw_det_boxes(img: np.ndarray, detections: Sequence[Dict],
                   class_names: Optional[Sequence[str]] = None,
                   palette: Optional[np.ndarray] = None,
                   thickness: Optional[int] = None,
                   font_scale: Optional[float] = None) -> np.ndarray:
    """Boxes with ``<class> <score>`` labels (``<class>`` for a box without a score).

    Args:
        img: (H, W, 3) uint8 RGB.
        detections: ``{'bbox': [x1, y1, x2, y2], 'label': name, 'score': s}``
            in pixels of ``img``; ``'score'`` may be left out (ground truth).
        class_names: All class names (fixes each class's colour); when None,
            colours follow the order in which classes first appear.
        palette: (N, 3) colours for the classes of ``class_names``.
        thickness: Box line width (default from the image size).
        font_scale: Label font scale (default from the image size).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    out = np.ascontiguousarray(img.copy())
    names: List[str] = list(class_names) if class_names is not None else []
    for det in detections:
        if det['label'] not in names:
            names.append(det['label'])
    colours = get_palette(len(names), palette)
    auto_scale, auto_thickness = _sizes(out)
    thickness = auto_thickness if thickness is None else thickness
    h, w = out.shape[:2]
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det['bbox'])
        p1 = (int(np.clip(round(x1), 0, w - 1)), int(np.clip(round(y1), 0, h - 1)))
        p2 = (int(np.clip(round(x2), 0, w - 1)), int(np.clip(round(y2), 0, h - 1)))
        colour = tuple(int(c) for c in colours[names.index(det['label'])])
        cv2.rectangle(out, p1, p2, colour, thickness)
        score = det.get('score')
        text = det['label'] if score is None else f'{det["label"]} {float(score):.2f}'
        draw_text_box(out, text,
                      (p1[0], p1[1] - int(30 * (font_scale or auto_scale))), colour,
                      font_scale)
    return out


def draw_cls_topk(img: np.ndarray, topk: Sequence[Tuple[str, float]],
                  gt_label: Optional[str] = None) -> np.ndarray:
    """Top-k classes (and the ground truth, if known) written in the top-left corner.

    Args:
        img: (H, W, 3) uint8 RGB.
        topk: ``[(class name, score), ...]``, best first.
        gt_label: Ground-truth class name.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    out = np.ascontiguousarray(img.copy())
    font_scale, _ = _sizes(out)
    line = int(round(30 * font_scale)) + 4
    lines = [f'{name} {float(score):.2f}' for name, score in topk]
    if gt_label is not None:
        lines.append(f'gt: {gt_label}')
    for i, text in enumerate(lines):
        hit = gt_label is not None and i == 0 and topk and topk[0][0] == gt_label
        colour = (0, 200, 0) if hit else (255, 255, 255)
        if gt_label is not None and i == len(lines) - 1:
            colour = (255, 220, 0)
        draw_text_box(out, text, (2, 2 + i * line), colour)
    return out
