"""Boxes of the tiles of a scene, and their merging into one set of scene boxes.

:func:`tile_detections` moves a tile's boxes to scene pixels and flags the
boxes cut by an inner tile edge; :func:`merge_tile_detections` drops cut boxes
covered by a larger box of another tile, then removes duplicates with
class-wise NMS.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ['tile_detections', 'merge_tile_detections', 'concat_tile_detections']


def tile_detections(bbox_result: Sequence[np.ndarray], window: Tuple[int, int, int, int],
                    inner_edges: Sequence[bool], score_thr: float = 0.3,
                    edge_tol: float = 2.0) -> Dict[str, np.ndarray]:
    """One tile's boxes above ``score_thr`` in scene pixels.

    Args:
        bbox_result: Per class (n, 5) (x1, y1, x2, y2, score) in tile pixels.
        window: ``(x0, y0, w, h)`` of the tile in the scene; boxes are clipped
            to it (a padded tile's boxes may reach into the padding).
        inner_edges: (top, bottom, left, right): edges inside the scene.
        score_thr: Keep boxes scoring above this.
        edge_tol: A box within this many pixels of an inner edge is ``cut``.

    Returns:
        dict: ``boxes`` (n, 4) float32 scene xyxy, ``scores`` (n,), ``labels``
        (n,) int64 and ``cut`` (n,) bool.
    """
    x0, y0, w, h = window
    parts = [(np.asarray(b, dtype=np.float32).reshape(-1, 5), label)
             for label, b in enumerate(bbox_result)]
    boxes = np.concatenate([b for b, _ in parts]) if parts else np.zeros((0, 5), np.float32)
    labels = np.concatenate([np.full(len(b), label, np.int64) for b, label in parts]) \
        if parts else np.zeros(0, np.int64)
    keep = boxes[:, 4] > score_thr
    boxes, labels = boxes[keep], labels[keep]
    xyxy = boxes[:, :4].copy()
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    xyxy, boxes, labels = xyxy[keep], boxes[keep], labels[keep]
    top, bottom, left, right = (bool(e) for e in inner_edges)
    cut = ((left & (xyxy[:, 0] <= edge_tol)) | (right & (xyxy[:, 2] >= w - edge_tol))
           | (top & (xyxy[:, 1] <= edge_tol)) | (bottom & (xyxy[:, 3] >= h - edge_tol)))
    xyxy += np.array([x0, y0, x0, y0], dtype=np.float32)
    return dict(boxes=xyxy, scores=boxes[:, 4].copy(), labels=labels, cut=cut)


def _covered_cut_boxes(boxes: np.ndarray, labels: np.ndarray, tiles: np.ndarray,
                       cut: np.ndarray, cover_thr: float, chunk: int = 256) -> np.ndarray:
    """Mask of cut boxes covered (intersection / own area >= ``cover_thr``) by a
    larger box of the same class from another tile."""
    drop = np.zeros(len(boxes), dtype=bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for label in np.unique(labels[cut]):
        others = np.nonzero(labels == label)[0]
        cand = np.nonzero(cut & (labels == label))[0]
        for start in range(0, len(cand), chunk):
            idx = cand[start:start + chunk]
            a, b = boxes[idx][:, None], boxes[others][None]
            iw = (np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
            ih = (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])).clip(0)
            cover = iw * ih / np.maximum(area[idx][:, None], 1e-6)
            valid = ((tiles[idx][:, None] != tiles[others][None])
                     & (area[others][None] > area[idx][:, None]))
            drop[idx] = np.any(valid & (cover >= cover_thr), axis=1)
    return drop


def merge_tile_detections(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                          tiles: Optional[np.ndarray] = None, cut: Optional[np.ndarray] = None,
                          iou_thr: float = 0.5, cover_thr: Optional[float] = 0.7) -> np.ndarray:
    """Indices of the boxes kept when the detections of all tiles are merged.

    1. A box cut by an inner tile edge (``cut``) is dropped when a larger box
       of the same class from another tile covers at least ``cover_thr`` of
       it (skipped when ``cover_thr`` is None or ``cut`` / ``tiles`` are not given);
    2. class-wise NMS (``mmcv.ops.batched_nms``) at ``iou_thr``.

    Args:
        boxes: (n, 4) xyxy in scene pixels.
        scores: (n,).
        labels: (n,) class indices.
        tiles: (n,) index of the tile each box comes from.
        cut: (n,) bool, the box touches an inner edge of its tile.
        iou_thr: NMS IoU threshold.
        cover_thr: Coverage above which a cut box is dropped.

    Returns:
        np.ndarray: Kept indices into the inputs, best score first.
    """
    from mmcv.ops import batched_nms
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.arange(len(boxes))
    if cover_thr is not None and cut is not None and tiles is not None:
        drop = _covered_cut_boxes(boxes, labels, np.asarray(tiles).reshape(-1),
                                  np.asarray(cut, dtype=bool).reshape(-1), cover_thr)
        candidates = candidates[~drop]
    if len(candidates) == 0:
        return candidates
    _, keep = batched_nms(torch.from_numpy(boxes[candidates]),
                          torch.from_numpy(scores[candidates]),
                          torch.from_numpy(labels[candidates]),
                          dict(type='nms', iou_threshold=float(iou_thr)))
    return candidates[keep.numpy()]



def concat_tile_detections(parts: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """The :func:`tile_detections` of every tile (each with ``tiles``) in one dict."""
    if parts:
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return dict(boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                labels=np.zeros(0, np.int64), cut=np.zeros(0, bool), tiles=np.zeros(0, np.int64))
