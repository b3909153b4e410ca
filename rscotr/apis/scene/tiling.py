"""Tiles of a scene and the blending of overlapping segmentation tiles.

:class:`TileGrid` cuts a scene into ``tile`` x ``tile`` windows at a step of
``tile - overlap``; :func:`blend_weights` gives each tile's smooth window
(weights of overlapping tiles sum to 1); :class:`SegBlender` accumulates the
weighted class scores in a strip one tile high and emits finished label rows.
"""
import math
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['WINDOWS', 'tile_offsets', 'TileGrid', 'blend_weights', 'SegBlender']

WINDOWS = ('cosine', 'linear', 'flat')
#: Rows of the strip handled at once when labels are taken and rows moved.
_CHUNK_ROWS = 32


def tile_offsets(size: int, tile: int, step: int) -> List[int]:
    """Start offsets of tiles along one axis; the last tile ends at ``size``.

    ``[0]`` when ``size <= tile`` (one, padded, tile).
    """
    if size <= tile:
        return [0]
    count = int(math.ceil((size - tile) / step)) + 1
    return [min(i * step, size - tile) for i in range(count)]


class TileGrid:
    """Tile windows over a ``height`` x ``width`` scene.

    Args:
        height, width: Scene size in pixels.
        tile: Tile side in pixels.
        overlap: Pixels shared by neighbouring tiles (``0 <= overlap < tile``).

    Attributes:
        step: ``tile - overlap``.
        ys, xs: Tile start rows / columns (:func:`tile_offsets`).
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int):
        tile, overlap = int(tile), int(overlap)
        if tile < 16:
            raise ValueError(f'tile must be at least 16 pixels, got {tile}')
        if not 0 <= overlap < tile:
            raise ValueError(f'overlap must be in [0, tile) = [0, {tile}), got {overlap}')
        self.height, self.width, self.tile, self.overlap = int(height), int(width), tile, overlap
        self.step = tile - overlap
        self.ys = tile_offsets(self.height, tile, self.step)
        self.xs = tile_offsets(self.width, tile, self.step)

    @property
    def rows(self) -> int:
        return len(self.ys)

    @property
    def cols(self) -> int:
        return len(self.xs)

    def __len__(self) -> int:
        return self.rows * self.cols

    def window(self, row: int, col: int) -> Tuple[int, int, int, int]:
        """``(x0, y0, w, h)`` of tile ``(row, col)`` in scene pixels (clipped to the scene)."""
        x0, y0 = self.xs[col], self.ys[row]
        return x0, y0, min(self.tile, self.width - x0), min(self.tile, self.height - y0)

    def inner_edges(self, row: int, col: int) -> Tuple[bool, bool, bool, bool]:
        """Which edges (top, bottom, left, right) of the tile lie inside the scene."""
        x0, y0, w, h = self.window(row, col)
        return y0 > 0, y0 + h < self.height, x0 > 0, x0 + w < self.width

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        for row in range(self.rows):
            for col in range(self.cols):
                yield row, col

    def cell_transform(self, transform):
        """Transform of the coarse per-tile map (one cell = the tile's central step x step)."""
        from affine import Affine
        half = self.overlap / 2.0
        return transform * Affine.translation(half, half) * Affine.scale(self.step)

    def __repr__(self) -> str:
        return (f'TileGrid({self.width}x{self.height}, tile={self.tile}, overlap={self.overlap}'
                f': {self.rows}x{self.cols} tiles)')


def _ramp(n: int, overlap: int, kind: str, at_start: bool, at_end: bool) -> np.ndarray:
    t = np.ones(n, dtype=np.float64)
    if overlap > 0 and kind != 'flat':
        i = np.arange(n, dtype=np.float64)
        if at_start:
            t = np.minimum(t, (i + 0.5) / overlap)
        if at_end:
            t = np.minimum(t, (n - i - 0.5) / overlap)
        if kind == 'cosine':
            t = np.sin(0.5 * np.pi * t)**2
    return t


def blend_weights(height: int, width: int, overlap: int, kind: str = 'cosine',
                  edges: Sequence[bool] = (True, True, True, True)) -> np.ndarray:
    """(height, width) float32 weights of one tile's scores.

    Along each edge flagged in ``edges`` (top, bottom, left, right) the weight
    rises over ``overlap`` pixels from nearly 0 to 1: linearly (``linear``) or
    as ``sin^2`` (``cosine``); ``flat`` is 1 everywhere. At pixel ``k`` of an
    overlap of exactly ``overlap`` pixels the two tiles' weights are
    ``t`` and ``1 - t`` (linear) or ``sin^2`` and ``cos^2``: they sum to 1.
    Every weight is positive.
    """
    if kind not in WINDOWS:
        raise ValueError(f'unknown blending window {kind!r}; use one of {WINDOWS}')
    top, bottom, left, right = (bool(e) for e in edges)
    wy = _ramp(height, overlap, kind, top, bottom)
    wx = _ramp(width, overlap, kind, left, right)
    return np.outer(wy, wx).astype(np.float32)


# ---------------------------------------------------------------------- segmentation blending
class SegBlender:
    """Accumulates weighted per-class scores of tiles in a strip and emits finished rows.

    Tiles must be added tile row by tile row (any order within a row); after
    a tile row call :meth:`flush` with the first row of the next tile row (the
    scene height after the last): rows above it get their labels
    (argmax over classes) and are passed to ``sink(y0, labels)``. Only rows
    still touched by later tiles stay in memory.

    Args:
        grid: The tile grid.
        num_classes: Score channels.
        sink: Called with ``(first row, (rows, width) uint8 labels)``, rows in order.
        window: ``cosine``, ``linear`` or ``flat`` (:func:`blend_weights`).
        no_class_index: A score channel that stands for "no class" (the
            released segmentation head's, see its ``simple_test_scores``):
            where it wins, the label is 255.
    """

    def __init__(self, grid: TileGrid, num_classes: int,
                 sink: Callable[[int, np.ndarray], None], window: str = 'cosine',
                 no_class_index: Optional[int] = None):
        if num_classes > 255:
            raise ValueError('labels are stored as uint8: at most 255 classes')
        self.no_class_index = no_class_index
        self.grid = grid
        self.sink = sink
        self.window = window
        blend_weights(1, 1, 0, window)  # option check
        self.rows = min(grid.tile, grid.height)
        self.acc = np.zeros((num_classes, self.rows, grid.width), dtype=np.float32)
        self.base = 0  # scene row of acc[:, 0]
        self._weights: Dict[Tuple, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        return int(self.acc.nbytes)

    def add(self, scores: np.ndarray, row: int, col: int) -> None:
        """Add tile ``(row, col)``'s (num_classes, h, w) scores (h, w: the tile window)."""
        x0, y0, w, h = self.grid.window(row, col)
        if scores.shape != (self.acc.shape[0], h, w):
            raise ValueError(f'tile ({row}, {col}): scores of shape {tuple(scores.shape)}, '
                             f'expected {(self.acc.shape[0], h, w)}')
        top = y0 - self.base
        if top < 0 or top + h > self.rows:
            raise RuntimeError(f'tile ({row}, {col}) at rows {y0}..{y0 + h} is outside the '
                               f'strip {self.base}..{self.base + self.rows}: add tiles row by '
                               'row and flush after each row')
        edges = self.grid.inner_edges(row, col)
        key = (h, w, edges)
        if key not in self._weights:
            self._weights[key] = blend_weights(h, w, self.grid.overlap, self.window, edges)
        self.acc[:, top:top + h, x0:x0 + w] += scores * self._weights[key]

    def flush(self, until: int) -> None:
        """Emit the labels of rows ``[base, until)`` and drop them from the strip."""
        until = min(int(until), self.grid.height)
        n = until - self.base
        if n <= 0:
            return
        labels = np.empty((n, self.acc.shape[2]), np.uint8)
        for i in range(0, n, _CHUNK_ROWS):  # row chunks: no strip-sized temporaries
            labels[i:i + _CHUNK_ROWS] = self.acc[:, i:min(i + _CHUNK_ROWS, n)].argmax(axis=0)
        if self.no_class_index is not None:
            labels[labels == self.no_class_index] = 255
        self.sink(self.base, labels)
        keep = self.rows - n
        chunk = min(n, _CHUNK_ROWS)
        for i in range(0, keep, chunk):  # move the rows still in use to the top
            j = min(i + chunk, keep)
            self.acc[:, i:j] = self.acc[:, n + i:n + j]
        self.acc[:, max(keep, 0):] = 0
        self.base = until
