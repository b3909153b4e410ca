"""Several pictures in one: captioned panels on a grid (OpenCV, RGB uint8)."""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .image import draw_text_box

__all__ = ['fit_to_square', 'tile_images', 'panel_grid']

Color = Tuple[int, int, int]


def fit_to_square(img: np.ndarray, side: int, fill: Color = (255, 255, 255)) -> np.ndarray:
    """Scale ``img`` to fit a ``side`` x ``side`` square (ratio kept) and centre it.

    Args:
        img: (H, W, 3) uint8 RGB.
        side: Side of the square in pixels.
        fill: Colour around an image that is not square.

    Returns:
        np.ndarray: (side, side, 3) uint8 RGB.
    """
    if side <= 0:
        raise ValueError(f'side must be positive, got {side}')
    h, w = img.shape[:2]
    scale = side / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(img), (new_w, new_h), interpolation=interpolation)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = np.asarray(fill, np.uint8)
    y, x = (side - new_h) // 2, (side - new_w) // 2
    out[y:y + new_h, x:x + new_w] = resized
    return out


def tile_images(images: Sequence[np.ndarray], side: int, cols: int, gap: int = 2,
                fill: Color = (255, 255, 255)) -> np.ndarray:
    """Images side by side on a grid of ``cols`` columns, each fitted to a square.

    Args:
        images: (H, W, 3) uint8 RGB images (at least one).
        side: Side of every cell.
        cols: Number of columns; rows follow from the number of images.
        gap: Pixels between cells.
        fill: Background colour.

    Returns:
        np.ndarray: (rows * (side + gap) - gap, cols * (side + gap) - gap, 3) uint8 RGB.
    """
    if not images:
        raise ValueError('no images to tile')
    if cols <= 0 or gap < 0:
        raise ValueError(f'need cols > 0 and gap >= 0, got cols={cols}, gap={gap}')
    rows = -(-len(images) // cols)
    out = np.empty((rows * (side + gap) - gap, cols * (side + gap) - gap, 3), np.uint8)
    out[:] = np.asarray(fill, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = r * (side + gap), c * (side + gap)
        out[y:y + side, x:x + side] = fit_to_square(img, side, fill)
    return out


def panel_grid(panels: Sequence[Tuple[str, np.ndarray]], side: int, cols: int,
               title: Optional[str] = None, gap: int = 8, caption_height: Optional[int] = None,
               background: Color = (255, 255, 255)) -> np.ndarray:
    """One picture of captioned panels: each panel's caption above its image.

    Args:
        panels: ``(caption, image)`` pairs; images are (H, W, 3) uint8 RGB and
            are fitted to ``side`` x ``side``.
        side: Side of every panel image in pixels.
        cols: Panels per row.
        title: Optional line of text above the grid.
        gap: Pixels around and between panels.
        caption_height: Height of each caption strip (default from ``side``).
        background: Background colour.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB with
        ``W = cols * (side + gap) + gap``.
    """
    if not panels:
        raise ValueError('no panels')
    if cols <= 0 or side <= 0 or gap < 0:
        raise ValueError(f'need cols > 0, side > 0 and gap >= 0, got {cols}, {side}, {gap}')
    font_scale = float(np.clip(side / 640, 0.35, 1.2))
    caption_height = caption_height or int(round(34 * font_scale)) + 6
    title_height = caption_height + gap if title else 0
    rows = -(-len(panels) // cols)
    cell_h = caption_height + side
    height = title_height + rows * (cell_h + gap) + gap
    width = cols * (side + gap) + gap
    out = np.empty((height, width, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    if title:
        draw_text_box(out, title, (gap, gap), background, font_scale=font_scale * 1.1,
                      thickness=3)
    for i, (caption, img) in enumerate(panels):
        r, c = divmod(i, cols)
        y = title_height + gap + r * (cell_h + gap)
        x = gap + c * (side + gap)
        strip = out[y:y + caption_height, x:x + side]
        draw_text_box(strip, caption, (0, 2), background, font_scale=font_scale, thickness=2)
        out[y + caption_height:y + cell_h, x:x + side] = fit_to_square(img, side, background)
    return out
