"""Tiled inference on large scenes (GeoTIFF or any GDAL raster) with georeferenced outputs.

Example::

    from rscotr.apis import init_model, inference_scene
    model = init_model(CONFIG, CKPT, device='cuda')
    summary = inference_scene(model, 'top_potsdam_2_13_RGBIR.tif', 'out/',
                              tasks=['seg', 'det'], tile=512, overlap=128, bands=(4, 1, 2))
    summary['files']   # {'seg': 'out/top_potsdam_2_13_RGBIR_seg.tif', 'det': ..., ...}

Tiles
-----
The scene is cut into ``tile`` x ``tile`` windows at a step of
``tile - overlap`` pixels (:class:`TileGrid`). The last window of a row or
column is moved back so that it ends at the scene edge (no padding); a scene
smaller than one tile is zero-padded to a full tile. Every tile goes through
each task's test pipeline, exactly as :func:`~rscotr.apis.inference.inference_multitask`
prepares a single image (so the pipelines resize the tile to their test
size: choose ``tile`` close to the size the heads were trained at, 512 for
Potsdam segmentation, 800 for DIOR detection), and tasks whose inputs are
equal share one backbone pass.

- **seg**: the head's per-pixel class scores (softmax class x sigmoid mask,
  before the argmax: ``simple_test_scores``) of every tile are multiplied by
  a smooth window (:func:`blend_weights`: a cosine or linear ramp over the
  ``overlap`` pixels next to every tile edge that is inside the scene; weights
  of overlapping tiles sum to 1) and accumulated; the label is the argmax of
  the sum (:class:`SegBlender`).
- **det**: boxes above ``score_thr`` of every tile, moved to scene pixels, then
  merged (:func:`merge_tile_detections`): a box cut by an inner tile edge is
  dropped when a larger box of the same class from another tile covers it
  (the tile that saw the whole object), then class-wise NMS removes the
  duplicates found by several tiles. Objects larger than ``overlap`` can be
  cut by every tile that sees them: choose ``overlap`` above the largest
  object size.
- **cls**: the top-1 class and score of every tile, as a coarse map with one
  cell per tile. Cell ``(r, c)`` is the ``step`` x ``step`` square at the centre
  of tile ``(r, c)`` (map transform = scene transform x translation by
  ``overlap / 2`` x scale by ``step``).

Memory
------
Bounded by the tile size and the scene *width*, not by the scene height: the
scene is read tile by tile (rasterio windows, GDAL's block cache limited to
``gdal_cache_mb``), the segmentation scores are accumulated in a strip one
tile high ((num_classes, tile, width) float32: 5 x 512 x 20000 x 4 bytes =
195 MiB for a 20000-pixel-wide scene) and finished rows are written to the
label GeoTIFF (in whole blocks of 256 rows) as soon as no later tile touches
them; only the overlap band stays between tile rows. Boxes and the class map
grow with their counts only. Measured (``tools/analysis/scene_memory.py``,
tiny demo model, seg + det, tile 512, overlap 128): the scene adds 25 MB to
the peak RSS at 1024 x 1024, 159 MB at 8192 x 8192, 320 MB at 20000 x 2048,
43 MB at 2048 x 20000 and 329 MB at 20000 x 20000.

Bands and scaling
-----------------
As :func:`~rscotr.apis.image_io.read_image`: 1-based band numbers (``bands``,
default the first three: R, G, B of RGB / RGBIR scenes, or the config's
``inference.bands.<task>``), IRRG scenes are used as they are (the model sees
the bands in file order). ``scale='auto'`` keeps 8-bit data and stretches
other data per band between its 2nd and 98th percentile. The statistics of
``percentile`` / ``minmax`` (and ``auto`` on 16-bit data) come from a
subsample of the *whole scene* (:class:`SceneScaler`), so that all tiles are
scaled alike (per-tile statistics would show the tile grid in the results);
``none`` and ``divide:N`` are per pixel.

Outputs (in ``out_dir``, ``<stem>`` = scene file name without extension)
-----------------------------------------------------------------------
- ``<stem>_seg.tif``: uint8 class indices, one band, the scene's transform and
  CRS, the seg palette as colour table, class names in the ``classes`` tag;
- ``<stem>_det.geojson``: one polygon per box (the 4 pixel corners through the
  scene transform, so rotated transforms are honoured) in the scene CRS
  (named by the legacy ``crs`` member when it has an EPSG code), with
  ``label``, ``label_index``, ``score``, ``bbox_px`` (x1, y1, x2, y2 in scene
  pixels) and ``tile``;
- ``<stem>_cls.tif`` + ``<stem>_cls.json``: the coarse top-1 class map (uint8,
  colour table) and its class names, palette, grid and top-1 scores;
- ``<stem>_scene.json``: scene, options, tiles, timings, counts and files
  (written last).

A scene without georeferencing (no CRS, identity transform) gives outputs in
pixel coordinates (identity transform, no CRS), and the summary says so
(``"coordinates": "pixel"``). Every file is written under a temporary name
and renamed when complete.
"""
import json
import math
import os
import os.path as osp
import resource
import time
import warnings
from contextlib import ExitStack
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..utils.io import atomic_output, atomic_write_bytes
from ..utils.logger import get_root_logger
from .image_io import (BandsArg, ImageReadError, encode_png, parse_bands, parse_scale,
                       scale_to_uint8, select_bands)

__all__ = [
    'inference_scene', 'TileGrid', 'tile_offsets', 'blend_weights', 'SegBlender',
    'SceneReader', 'SceneScaler', 'open_scene', 'seg_class_scores', 'run_tile',
    'tile_detections', 'merge_tile_detections', 'box_polygon', 'is_georeferenced',
    'render_scene_preview'
]

PathLike = Union[str, os.PathLike]
#: Rows per block of the label GeoTIFF (and rows written at once).
LABEL_BLOCK = 256
#: Pixels sampled from the scene for the scaling statistics.
STATS_SAMPLES = 1 << 20
WINDOWS = ('cosine', 'linear', 'flat')
#: Rows of the strip handled at once when labels are taken and rows moved.
_CHUNK_ROWS = 32


# ---------------------------------------------------------------------- tile grid
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
    """

    def __init__(self, grid: TileGrid, num_classes: int,
                 sink: Callable[[int, np.ndarray], None], window: str = 'cosine'):
        if num_classes > 255:
            raise ValueError('labels are stored as uint8: at most 255 classes')
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
        self.sink(self.base, labels)
        keep = self.rows - n
        chunk = min(n, _CHUNK_ROWS)
        for i in range(0, keep, chunk):  # move the rows still in use to the top
            j = min(i + chunk, keep)
            self.acc[:, i:j] = self.acc[:, n + i:n + j]
        self.acc[:, max(keep, 0):] = 0
        self.base = until


class _LabelWriter:
    """Writes label rows to band 1 of a rasterio dataset in whole blocks of rows,
    and counts the labels."""

    def __init__(self, dst, num_classes: int, block_rows: int = LABEL_BLOCK):
        self.dst = dst
        self.block_rows = block_rows
        self.next_row = 0
        self.pending: List[np.ndarray] = []
        self.counts = np.zeros(256, dtype=np.int64)

    def __call__(self, y0: int, labels: np.ndarray) -> None:
        if y0 != self.next_row + sum(len(p) for p in self.pending):
            raise RuntimeError('label rows must arrive in order')
        self.counts += np.bincount(labels.ravel(), minlength=256)
        self.pending.append(labels)
        buffered = sum(len(p) for p in self.pending)
        if buffered >= self.block_rows:
            self._write(buffered - buffered % self.block_rows)

    def _write(self, rows: int) -> None:
        from rasterio.windows import Window
        block = np.concatenate(self.pending, axis=0) if len(self.pending) > 1 else self.pending[0]
        self.dst.write(block[:rows], 1, window=Window(0, self.next_row, block.shape[1], rows))
        self.next_row += rows
        self.pending = [block[rows:]] if rows < len(block) else []

    def close(self) -> None:
        buffered = sum(len(p) for p in self.pending)
        if buffered:
            self._write(buffered)


# ---------------------------------------------------------------------- reading
def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def open_scene(path: PathLike):
    """Open a raster with rasterio, turning every failure into :class:`ImageReadError`.

    Raises:
        ImageReadError: Missing file, folder, empty file, not a raster GDAL
            can read, or an unsupported pixel type.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    path = os.fspath(path)
    if not osp.exists(path):
        raise ImageReadError(path, 'no such file')
    if osp.isdir(path):
        raise ImageReadError(path, 'is a folder, not an image file')
    if osp.getsize(path) == 0:
        raise ImageReadError(path, 'empty file')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            src = rasterio.open(path)
    except (RasterioError, OSError) as e:
        raise ImageReadError(path, f'not a raster image that GDAL can read '
                             f'({_first_line(e)})') from None
    dtype = np.dtype(src.dtypes[0])
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        src.close()
        raise ImageReadError(path, f'unsupported pixel type {dtype}')
    if src.width < 1 or src.height < 1 or src.count < 1:
        src.close()
        raise ImageReadError(path, 'has no pixels')
    return src


def is_georeferenced(src) -> bool:
    """Whether the raster has a CRS or a non-identity transform."""
    return src.crs is not None or not src.transform.is_identity


class SceneScaler:
    """Scaling of scene windows to uint8 with per-band statistics of the whole scene.

    Same modes and formulas as :func:`~rscotr.apis.image_io.scale_to_uint8`;
    the stretches (``percentile``, ``minmax``, ``auto`` on non-8-bit data)
    take their low / high values from :meth:`from_scene`'s subsample instead
    of the window, so that all tiles are scaled alike.

    Attributes:
        mode: ``identity``, ``pointwise`` (``none`` / ``divide``) or ``stretch``.
        limits: ``{band number: (low, high)}`` of the stretch.
    """

    def __init__(self, scale: str, mode: str,
                 limits: Optional[Dict[int, Tuple[float, float]]] = None):
        self.scale = scale
        self.mode = mode
        self.limits = dict(limits or {})

    @classmethod
    def from_scene(cls, src, bands: Sequence[int], scale: str = 'auto',
                   max_samples: int = STATS_SAMPLES) -> 'SceneScaler':
        """Scaler of ``bands`` (1-based) of an open rasterio dataset."""
        mode, params = parse_scale(scale)
        dtype = np.dtype(src.dtypes[0])
        if mode == 'auto':
            if dtype == np.uint8:
                return cls(scale, 'identity')
            mode, params = 'percentile', (2.0, 98.0)
        if mode in ('none', 'divide'):
            return cls(scale, 'identity' if mode == 'none' and dtype == np.uint8 else 'pointwise')
        from rasterio.enums import Resampling
        factor = max(1.0, math.sqrt(src.width * src.height / float(max_samples)))
        out_h = max(1, int(round(src.height / factor)))
        out_w = max(1, int(round(src.width / factor)))
        bands = sorted(set(int(b) for b in bands))
        sample = src.read(bands, out_shape=(len(bands), out_h, out_w),
                          resampling=Resampling.nearest)
        valid = None
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            valid = ~np.all(sample == nodata, axis=0)
            if not valid.any():
                valid = None
        limits = {}
        for i, band in enumerate(bands):
            values = sample[i] if valid is None else sample[i][valid]
            values = values.astype(np.float64).ravel()
            values = values[np.isfinite(values)]
            if values.size == 0:
                limits[band] = (0.0, 0.0)
            elif mode == 'minmax':
                limits[band] = (float(values.min()), float(values.max()))
            else:
                low, high = np.percentile(values, params)
                limits[band] = (float(low), float(high))
        return cls(scale, 'stretch', limits)

    def __call__(self, data: np.ndarray, bands: Sequence[int]) -> np.ndarray:
        """(h, w, k) data of file bands ``bands`` -> (h, w, k) uint8."""
        if self.mode == 'identity':
            return data if data.dtype == np.uint8 else scale_to_uint8(data, 'none')
        if self.mode == 'pointwise':
            return scale_to_uint8(data, self.scale)
        out = np.empty(data.shape, dtype=np.uint8)
        for c, band in enumerate(bands):
            low, high = self.limits[int(band)]
            values = data[..., c].astype(np.float32)
            if high <= low:
                out[..., c] = 0 if high <= 0 else np.clip(np.nan_to_num(values), 0, 255)
                continue
            stretched = (np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low))
            out[..., c] = np.clip(stretched + 0.5, 0, 255).astype(np.uint8)
        return out

    def describe(self) -> Dict[str, Any]:
        return {'scale': self.scale, 'mode': self.mode,
                'limits': {str(b): list(v) for b, v in sorted(self.limits.items())}}


def _band_numbers(count: int, bands: BandsArg, name: str) -> Tuple[int, ...]:
    """1-based band numbers that :func:`select_bands` picks from a ``count``-band image."""
    probe = np.arange(1, count + 1, dtype=np.int64).reshape(1, 1, count)
    return tuple(int(v) for v in select_bands(probe, bands, name)[0, 0])


class SceneReader:
    """Reads tiles of a scene as each task's (H, W, 3) uint8 RGB-ordered image.

    Args:
        path: Raster file.
        task_bands: ``{task: band numbers or None}`` (None: the first 3).
        scale: See :class:`SceneScaler`.

    Attributes:
        src: The open rasterio dataset.
        bands: ``{task: (b1, b2, b3)}`` 1-based band numbers.
        scaler: The :class:`SceneScaler`.
    """

    def __init__(self, path: PathLike, task_bands: Dict[str, Optional[Sequence[int]]],
                 scale: str = 'auto'):
        self.path = os.fspath(path)
        self.src = open_scene(self.path)
        try:
            self.bands = {task: _band_numbers(self.src.count, wanted, self.path)
                          for task, wanted in task_bands.items()}
            self.read_bands = sorted(set(b for bands in self.bands.values() for b in bands))
            self.scaler = SceneScaler.from_scene(self.src, self.read_bands, scale)
        except Exception:
            self.src.close()
            raise

    def __enter__(self) -> 'SceneReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.src.close()

    @property
    def height(self) -> int:
        return self.src.height

    @property
    def width(self) -> int:
        return self.src.width

    def _select(self, scaled: np.ndarray) -> Dict[str, np.ndarray]:
        position = {b: i for i, b in enumerate(self.read_bands)}
        images: Dict[Tuple, np.ndarray] = {}
        out = {}
        for task, bands in self.bands.items():
            if bands not in images:
                images[bands] = np.ascontiguousarray(scaled[..., [position[b] for b in bands]])
            out[task] = images[bands]
        return out

    def read(self, x0: int, y0: int, w: int, h: int, pad_to: Optional[int] = None
             ) -> Dict[str, np.ndarray]:
        """Each task's image of a window, zero-padded at the bottom / right to
        ``pad_to`` x ``pad_to`` when smaller."""
        from rasterio.errors import RasterioError
        from rasterio.windows import Window
        try:
            data = self.src.read(self.read_bands, window=Window(x0, y0, w, h))
        except (RasterioError, OSError) as e:
            raise ImageReadError(self.path, f'cannot read window x={x0} y={y0} {w}x{h} '
                                 f'({_first_line(e)})') from None
        scaled = self.scaler(np.moveaxis(data, 0, -1), self.read_bands)
        if pad_to is not None and (h < pad_to or w < pad_to):
            padded = np.zeros((max(h, pad_to), max(w, pad_to), scaled.shape[2]), np.uint8)
            padded[:h, :w] = scaled
            scaled = padded
        return self._select(scaled)

    def read_overview(self, max_side: int) -> Tuple[np.ndarray, float]:
        """The whole scene subsampled to at most ``max_side`` pixels a side, as the
        first task's (h, w, 3) uint8 image, and the subsampling factor."""
        from rasterio.enums import Resampling
        factor = max(1.0, max(self.height, self.width) / float(max_side))
        out_h = max(1, int(round(self.height / factor)))
        out_w = max(1, int(round(self.width / factor)))
        data = self.src.read(self.read_bands, out_shape=(len(self.read_bands), out_h, out_w),
                             resampling=Resampling.bilinear)
        scaled = self.scaler(np.moveaxis(data, 0, -1), self.read_bands)
        return next(iter(self._select(scaled).values())), factor


# ---------------------------------------------------------------------- model on one tile
def seg_class_scores(head: nn.Module, feats: Dict, img_metas: List[dict]) -> List[torch.Tensor]:
    """Per-image (num_classes, H, W) semantic scores of the segmentation head.

    The scores that the head's ``simple_test`` takes the argmax of, at
    ``ori_shape`` (:meth:`Mask2FormerSegHead.simple_test_scores`). The one
    place where the scene API asks a head for scores instead of labels.

    Raises:
        TypeError: A seg head without ``simple_test_scores``.
    """
    if not hasattr(head, 'simple_test_scores'):
        raise TypeError(f'{type(head).__name__} has no simple_test_scores(feats, img_metas, '
                        'rescale): scene inference blends per-class scores and needs it')
    return list(head.simple_test_scores(feats, img_metas, rescale=True))


def run_tile(model: nn.Module, images: Dict[str, np.ndarray], tasks: Sequence[str],
             filename: Optional[str] = None) -> Dict[str, Any]:
    """Raw results of ``tasks`` on one tile.

    Args:
        model: From :func:`~rscotr.apis.inference.init_model`.
        images: ``{task: (H, W, 3) uint8}`` in band (RGB) order.
        tasks: Tasks to run.
        filename: Recorded in the metas.

    Returns:
        dict: ``cls``: (num_classes,) softmax scores; ``det``: per class (n, 5)
        arrays (x1, y1, x2, y2, score) in tile pixels; ``seg``:
        (num_classes, H, W) float32 scores (numpy).
    """
    from ..models.multitask.rscotr import set_batch_input_shape
    from .inference import prepare_task_inputs
    module = getattr(model, 'module', model)
    device = next(module.parameters()).device
    out: Dict[str, Any] = {}
    with torch.no_grad():
        for group in prepare_task_inputs(module, images, tasks, filename):
            img = group.img[None].to(device)
            metas = [dict(group.img_meta)]
            set_batch_input_shape(img, metas)
            feats = module.extract_feat(img, group.tasks)
            for task in group.tasks:
                head_feats = module.head_feats(task, feats, metas)
                head = module.heads[task]
                if task == 'seg':
                    out[task] = seg_class_scores(head, head_feats, metas)[0].float().cpu().numpy()
                else:
                    out[task] = head.simple_test(head_feats, metas, rescale=True)[0]
    return out


# ---------------------------------------------------------------------- detection merging
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


# ---------------------------------------------------------------------- output helpers
def box_polygon(box: Sequence[float], transform) -> List[List[float]]:
    """Closed, counter-clockwise ring of a pixel box's corners through ``transform``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    ring = [transform * (x, y) for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]
    signed = sum(ring[i][0] * ring[(i + 1) % 4][1] - ring[(i + 1) % 4][0] * ring[i][1]
                 for i in range(4))
    if signed < 0:
        ring = ring[::-1]
    ring.append(ring[0])
    return [[float(x), float(y)] for x, y in ring]


def _crs_info(src) -> Dict[str, Any]:
    if src.crs is None:
        return {'crs': None, 'epsg': None, 'crs_wkt': None}
    epsg = src.crs.to_epsg()
    return {'crs': src.crs.to_string(), 'epsg': epsg, 'crs_wkt': src.crs.to_wkt()}


def _colormap(palette: np.ndarray) -> Dict[int, Tuple[int, int, int, int]]:
    return {i: (int(c[0]), int(c[1]), int(c[2]), 255) for i, c in enumerate(palette[:256])}


def _geo_profile(src, georef: bool, **kwargs) -> Dict:
    profile = dict(driver='GTiff', **kwargs)
    if georef:
        profile.update(crs=src.crs, transform=src.transform)
    return profile


def _open_raster(path: str, mode: str = 'r', **profile):
    """``rasterio.open`` without the warning about rasters in pixel coordinates."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------- main entry
def inference_scene(model: nn.Module,
                    scene_path: PathLike,
                    out_dir: PathLike,
                    tasks: Optional[Sequence[str]] = None,
                    tile: int = 512,
                    overlap: int = 128,
                    bands: BandsArg = None,
                    scale: str = 'auto',
                    score_thr: float = 0.3,
                    nms_iou: float = 0.5,
                    cover_thr: Optional[float] = 0.7,
                    window: str = 'cosine',
                    progress: bool = True,
                    gdal_cache_mb: int = 64,
                    preview: Optional[PathLike] = None) -> Dict[str, Any]:
    """Run ``tasks`` on a large scene tile by tile and write georeferenced results.

    Args:
        model: From :func:`~rscotr.apis.inference.init_model`.
        scene_path: GeoTIFF (or any raster GDAL reads; tiled or striped
            GeoTIFFs are read window by window): RGB, IRRG or RGBIR, 8 or 16 bit.
        out_dir: Output folder (created).
        tasks: Subset of the model's tasks (default: all of its heads).
        tile: Tile side in pixels.
        overlap: Pixels shared by neighbouring tiles.
        bands: 1-based band numbers for every task (``'4,1,2'``); default
            the config's ``inference.bands.<task>`` if the scene has them,
            else the first 3.
        scale: To uint8 (see :class:`SceneScaler`).
        score_thr: Boxes scoring above this are kept.
        nms_iou: IoU threshold of the class-wise NMS across tiles.
        cover_thr: Coverage above which a box cut by a tile edge is dropped
            (see :func:`merge_tile_detections`); None disables the step.
        window: Blending window of the segmentation (``cosine``, ``linear``, ``flat``).
        progress: Show a tqdm progress bar over tiles (stderr).
        gdal_cache_mb: GDAL block cache during the run (MB).
        preview: Also write a PNG preview of the outputs there
            (:func:`render_scene_preview`).

    Returns:
        dict: The summary written to ``<stem>_scene.json``.

    Raises:
        ImageReadError: The scene cannot be read, or lacks a requested band.
        ValueError: Bad options. KeyError: A task without head.
    """
    import rasterio

    from .inference import check_tasks, task_bands_for, resolve_class_names
    start = time.perf_counter()
    module = getattr(model, 'module', model)
    tasks = check_tasks(module, tasks)
    parse_bands(bands)
    parse_scale(scale)
    TileGrid(1, 1, tile, overlap)  # option errors before any file access
    if window not in WINDOWS:
        raise ValueError(f'unknown blending window {window!r}; use one of {WINDOWS}')
    scene_path = os.fspath(scene_path)
    out_dir = os.fspath(out_dir)
    names = getattr(module, 'CLASSES', None)
    palettes = getattr(module, 'PALETTE', None) or {}
    if not isinstance(names, dict) or any(t not in names for t in tasks):
        names, palettes = resolve_class_names(module.cfg, module)
    logger = get_root_logger()
    timings = dict(stats=0.0, read=0.0, model=0.0, seg_blend=0.0, det_merge=0.0, write=0.0)
    with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb)):
        src = open_scene(scene_path)
        count = src.count
        src.close()
        task_bands = task_bands_for(module.cfg, tasks, bands, np.empty((1, 1, count), np.uint8))
        t0 = time.perf_counter()
        reader = SceneReader(scene_path, task_bands, scale)
        timings['stats'] = time.perf_counter() - t0
        try:
            # every output is written to a temporary file; all are moved to
            # their names when the run succeeds, all removed when it fails
            with ExitStack() as outputs:
                summary = _run_scene(module, reader, out_dir, tasks, tile, overlap, score_thr,
                                     nms_iou, cover_thr, window, progress, names, palettes,
                                     timings, outputs)
        finally:
            reader.close()
        summary['options'].update(bands={t: list(b) for t, b in reader.bands.items()},
                                  scaling=reader.scaler.describe())
        if preview is not None:
            t0 = time.perf_counter()
            render_scene_preview(summary, preview)
            summary['files']['preview'] = osp.abspath(os.fspath(preview))
            timings['write'] += time.perf_counter() - t0
    timings['total'] = time.perf_counter() - start
    summary['timings_s'] = {k: round(v, 3) for k, v in timings.items()}
    summary['timings_s']['per_tile'] = round(timings['total'] / max(summary['tiles']['count'], 1),
                                             4)
    summary['peak_rss_mb'] = round(_peak_rss_mb(), 1)
    atomic_write_bytes(summary['files']['summary'],
                       (json.dumps(summary, indent=2) + '\n').encode())
    logger.info(f'inference_scene: {summary["tiles"]["count"]} tiles in '
                f'{timings["total"]:.1f} s; wrote {summary["files"]["summary"]}')
    return summary


def _run_scene(module: nn.Module, reader: SceneReader, out_dir: str, tasks: List[str],
               tile: int, overlap: int, score_thr: float, nms_iou: float,
               cover_thr: Optional[float], window: str, progress: bool,
               names: Dict, palettes: Dict, timings: Dict[str, float],
               outputs: ExitStack) -> Dict[str, Any]:
    """The tile loop and the outputs (temporary files entered into ``outputs``)."""
    from tqdm import tqdm

    from ..core.visualization import get_palette
    src = reader.src
    grid = TileGrid(reader.height, reader.width, tile, overlap)
    georef = is_georeferenced(src)
    stem = osp.splitext(osp.basename(reader.path))[0]
    os.makedirs(out_dir, exist_ok=True)
    files = {'summary': osp.abspath(osp.join(out_dir, f'{stem}_scene.json'))}
    seg_blender = seg_writer = seg_dst = None
    if 'seg' in tasks:
        seg_path = osp.join(out_dir, f'{stem}_seg.tif')
        tmp = outputs.enter_context(atomic_output(seg_path))
        seg_names = names['seg']
        seg_palette = get_palette(len(seg_names), palettes.get('seg'))
        block = LABEL_BLOCK if grid.width >= LABEL_BLOCK and grid.height >= LABEL_BLOCK else None
        options = dict(tiled=True, blockxsize=block, blockysize=block) if block else {}
        seg_dst = _open_raster(tmp, 'w', **_geo_profile(
            src, georef, width=grid.width, height=grid.height, count=1, dtype='uint8',
            compress='deflate', BIGTIFF='IF_SAFER', **options))
        seg_dst.write_colormap(1, _colormap(seg_palette))
        seg_dst.set_band_description(1, 'class index')
        seg_dst.update_tags(classes=json.dumps(list(seg_names)))
        seg_writer = _LabelWriter(seg_dst, len(seg_names), block or LABEL_BLOCK)
        seg_blender = SegBlender(grid, len(seg_names), seg_writer, window)
        files['seg'] = osp.abspath(seg_path)
    det_parts: List[Dict[str, np.ndarray]] = []
    raw_boxes = 0
    cls_index = cls_score = None
    if 'cls' in tasks:
        cls_index = np.zeros((grid.rows, grid.cols), np.uint8 if len(names['cls']) <= 256
                             else np.uint16)
        cls_score = np.zeros((grid.rows, grid.cols), np.float32)
    try:
        bar = tqdm(total=len(grid), unit='tile', desc=osp.basename(reader.path),
                   disable=not progress, leave=False)
        for row in range(grid.rows):
            for col in range(grid.cols):
                x0, y0, w, h = grid.window(row, col)
                t0 = time.perf_counter()
                images = reader.read(x0, y0, w, h, pad_to=grid.tile)
                t1 = time.perf_counter()
                out = run_tile(module, images, tasks, reader.path)
                t2 = time.perf_counter()
                timings['read'] += t1 - t0
                timings['model'] += t2 - t1
                if 'seg' in out:
                    seg_blender.add(out['seg'][:, :h, :w], row, col)
                if 'det' in out:
                    part = tile_detections(out['det'], (x0, y0, w, h),
                                           grid.inner_edges(row, col), score_thr)
                    raw_boxes += sum(len(b) for b in out['det'])
                    part['tiles'] = np.full(len(part['scores']), row * grid.cols + col, np.int64)
                    det_parts.append(part)
                if 'cls' in out:
                    scores = np.asarray(out['cls']).ravel()
                    cls_index[row, col] = int(scores.argmax())
                    cls_score[row, col] = float(scores.max())
                timings['seg_blend'] += time.perf_counter() - t2
                bar.update(1)
            if seg_blender is not None:
                t0 = time.perf_counter()
                seg_blender.flush(grid.ys[row + 1] if row + 1 < grid.rows else grid.height)
                timings['seg_blend'] += time.perf_counter() - t0
        bar.close()
        if seg_dst is not None:
            seg_writer.close()
            seg_dst.close()
            seg_dst = None
    finally:
        if seg_dst is not None:
            seg_dst.close()

    summary: Dict[str, Any] = {
        'scene': dict(path=osp.abspath(reader.path), width=grid.width, height=grid.height,
                      bands=src.count, dtype=src.dtypes[0], nodata=src.nodata,
                      georeferenced=georef, coordinates='map' if georef else 'pixel',
                      transform=list(src.transform)[:6] if georef else None, **_crs_info(src)),
        'options': dict(tasks=list(tasks), tile=grid.tile, overlap=grid.overlap, step=grid.step,
                        score_thr=score_thr, nms_iou=nms_iou, cover_thr=cover_thr,
                        window=window),
        'tiles': dict(rows=grid.rows, cols=grid.cols, count=len(grid)),
        'counts': {},
        'files': files,
    }
    if not georef:
        summary['scene']['note'] = ('the scene has no georeferencing: outputs are in pixel '
                                    'coordinates (identity transform, no CRS)')
    if seg_blender is not None:
        counts = seg_writer.counts[:len(names['seg'])]
        total = max(int(counts.sum()), 1)
        summary['counts']['seg'] = {
            'pixels': {n: int(c) for n, c in zip(names['seg'], counts)},
            'fractions': {n: round(float(c) / total, 6) for n, c in zip(names['seg'], counts)},
            'accumulator_mb': round(seg_blender.nbytes / 2**20, 1)}
    t0 = time.perf_counter()
    if 'det' in tasks:
        det_path = osp.join(out_dir, f'{stem}_det.geojson')
        geojson, det_counts = _merge_and_format_det(det_parts, names['det'], src.transform,
                                                    georef, src, nms_iou, cover_thr, grid)
        det_counts['raw'] = raw_boxes
        summary['counts']['det'] = det_counts
        timings['det_merge'] += time.perf_counter() - t0
        tmp = outputs.enter_context(atomic_output(det_path))
        with open(tmp, 'w') as f:
            json.dump(geojson, f)
        files['det'] = osp.abspath(det_path)
    t0 = time.perf_counter()
    if 'cls' in tasks:
        cls_names = names['cls']
        cls_path = osp.join(out_dir, f'{stem}_cls.tif')
        side_path = osp.join(out_dir, f'{stem}_cls.json')
        palette = get_palette(len(cls_names), palettes.get('cls'))
        transform = grid.cell_transform(src.transform)
        tmp = outputs.enter_context(atomic_output(cls_path))
        profile = dict(driver='GTiff', width=grid.cols, height=grid.rows, count=1,
                       dtype=cls_index.dtype.name, transform=transform)
        if georef:
            profile['crs'] = src.crs
        with _open_raster(tmp, 'w', **profile) as dst:
            dst.write(cls_index, 1)
            if cls_index.dtype == np.uint8:
                dst.write_colormap(1, _colormap(palette))
            dst.set_band_description(1, 'top-1 class index')
            dst.update_tags(classes=json.dumps(list(cls_names)))
        side = dict(classes=list(cls_names), palette=palette.tolist(),
                    grid=dict(rows=grid.rows, cols=grid.cols, tile=grid.tile, step=grid.step,
                              overlap=grid.overlap, tile_x=grid.xs, tile_y=grid.ys),
                    transform=list(transform)[:6], crs=_crs_info(src)['crs'],
                    coordinates='map' if georef else 'pixel',
                    top1_score=np.round(cls_score, 4).tolist())
        tmp_side = outputs.enter_context(atomic_output(side_path))
        with open(tmp_side, 'w') as f:
            json.dump(side, f)
        hist = np.bincount(cls_index.ravel().astype(np.int64), minlength=len(cls_names))
        summary['counts']['cls'] = {cls_names[i]: int(c) for i, c in enumerate(hist) if c}
        files['cls'] = osp.abspath(cls_path)
        files['cls_meta'] = osp.abspath(side_path)
    timings['write'] += time.perf_counter() - t0
    return summary


def _merge_and_format_det(parts: List[Dict[str, np.ndarray]], class_names: Sequence[str],
                          transform, georef: bool, src, nms_iou: float,
                          cover_thr: Optional[float], grid: TileGrid
                          ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    if parts:
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        cat = dict(boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                   labels=np.zeros(0, np.int64), cut=np.zeros(0, bool),
                   tiles=np.zeros(0, np.int64))
    keep = merge_tile_detections(cat['boxes'], cat['scores'], cat['labels'], cat['tiles'],
                                 cat['cut'], nms_iou, cover_thr)
    features = []
    per_class: Dict[str, int] = {}
    for i in keep:
        box = [round(float(v), 2) for v in cat['boxes'][i]]
        label = int(cat['labels'][i])
        name = class_names[label]
        per_class[name] = per_class.get(name, 0) + 1
        tile_index = int(cat['tiles'][i])
        features.append({
            'type': 'Feature',
            'geometry': {'type': 'Polygon', 'coordinates': [box_polygon(box, transform)]},
            'properties': {'label': name, 'label_index': label,
                           'score': round(float(cat['scores'][i]), 5), 'bbox_px': box,
                           'tile': [tile_index // grid.cols, tile_index % grid.cols]}})
    crs = _crs_info(src) if georef else {'crs': None, 'epsg': None, 'crs_wkt': None}
    geojson: Dict[str, Any] = {'type': 'FeatureCollection',
                               'name': osp.splitext(osp.basename(src.name))[0] + '_det'}
    if crs['epsg'] is not None:
        geojson['crs'] = {'type': 'name',
                          'properties': {'name': f'urn:ogc:def:crs:EPSG::{crs["epsg"]}'}}
    geojson['rscotr'] = {'coordinates': 'map' if georef else 'pixel', 'crs': crs['crs'],
                         'crs_wkt': crs['crs_wkt'], 'classes': list(class_names)}
    geojson['features'] = features
    counts = {'after_score_thr': int(len(cat['scores'])),
              'cut_by_tile_edges': int(cat['cut'].sum()), 'kept': int(len(keep)),
              'per_class': dict(sorted(per_class.items(), key=lambda kv: -kv[1]))}
    return geojson, counts


# ---------------------------------------------------------------------- preview
def render_scene_preview(summary: Dict[str, Any], out_png: PathLike, max_side: int = 640,
                         max_boxes: int = 50, colors: Optional[int] = None) -> np.ndarray:
    """A PNG of the outputs of :func:`inference_scene`, read back from its files.

    Panels, side by side, each at most ``max_side`` pixels a side: the scene
    with the boxes (the best ``max_boxes``), the segmentation colours over the
    scene, and the coarse class map over the scene (each cell on its
    footprint; the most frequent classes named). Memory: the subsampled scene
    and label map only.

    Args:
        summary: Returned by :func:`inference_scene`.
        out_png: PNG path (written atomically).
        max_side: Panel size limit.
        max_boxes: Boxes drawn, best first.
        colors: Quantise the PNG to this many colours (Pillow's adaptive
            palette; much smaller files), None for full colour.

    Returns:
        np.ndarray: The (H, W, 3) uint8 RGB picture (also written to ``out_png``).
    """
    import cv2
    from rasterio.enums import Resampling

    from ..core.visualization import (draw_det_boxes, draw_text_box, label_map_to_color,
                                      overlay_seg)
    files = summary['files']
    opts = summary['options']
    bands = opts.get('bands') or {}
    task_bands = {t: bands.get(t) for t in opts['tasks']}
    scaling = opts.get('scaling') or {}
    reader = SceneReader(summary['scene']['path'], task_bands, scaling.get('scale', 'auto'))
    try:
        rgb, factor = reader.read_overview(max_side)
    finally:
        reader.close()
    h, w = rgb.shape[:2]
    panels = []
    if 'det' in files:
        with open(files['det']) as f:
            geojson = json.load(f)
        dets = [{'bbox': [v / factor for v in ft['properties']['bbox_px']],
                 'label': ft['properties']['label'], 'score': ft['properties']['score']}
                for ft in geojson['features'][:max_boxes]]
        drawn = draw_det_boxes(rgb, dets, geojson['rscotr']['classes'], thickness=1,
                               font_scale=0.35)
        shown = f' (best {len(dets)} shown)' if len(dets) < len(geojson['features']) else ''
        panels.append((drawn, f'det: {len(geojson["features"])} boxes{shown}'))
    else:
        panels.append((rgb, 'scene'))
    if 'seg' in files:
        with _open_raster(files['seg']) as seg:
            labels = seg.read(1, out_shape=(h, w), resampling=Resampling.nearest)
            cmap = seg.colormap(1)
        palette = np.array([cmap[i][:3] for i in range(max(cmap) + 1)], dtype=np.uint8)
        panels.append((overlay_seg(rgb, labels, palette, alpha=0.6), 'seg'))
    if 'cls' in files:
        with open(files['cls_meta']) as f:
            meta = json.load(f)
        with _open_raster(files['cls']) as cls_src:
            cells = cls_src.read(1)
        palette = np.asarray(meta['palette'], np.uint8)
        colours = label_map_to_color(cells, palette)
        g = meta['grid']
        half = g['overlap'] / 2.0
        # each cell on its footprint: the central step x step square of its tile
        rects = {(r, c): tuple(int(round((v * g['step'] + half) / factor))
                               for v in (c, r, c + 1, r + 1))
                 for r in range(g['rows']) for c in range(g['cols'])}
        canvas = rgb.copy()
        for (r, c), (x1, y1, x2, y2) in rects.items():
            cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1),
                          tuple(int(v) for v in colours[r, c]), -1)
        canvas = cv2.addWeighted(rgb, 0.4, canvas, 0.6, 0.0)
        for x1, y1, x2, y2 in rects.values():
            cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 0), 1)
        top = sorted(summary['counts'].get('cls', {}).items(), key=lambda kv: -kv[1])[:3]
        for i, (name, _) in enumerate(top):
            draw_text_box(canvas, name, (2, h - (3 - i) * 14 - 2),
                          palette[meta['classes'].index(name)], 0.35, 1)
        panels.append((canvas, f'cls: {g["rows"]}x{g["cols"]} tiles'))
    gap = 4
    out = np.full((h + 18, len(panels) * (w + gap) - gap, 3), 255, np.uint8)
    for i, (panel, title) in enumerate(panels):
        x = i * (w + gap)
        out[18:, x:x + w] = panel
        cv2.putText(out, title, (x + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    if colors is None:
        data = encode_png(out, compression=9)
    else:
        import io

        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(out).quantize(colors=int(colors)).save(buf, format='PNG', optimize=True)
        data = buf.getvalue()
    atomic_write_bytes(out_png, data)
    return out
