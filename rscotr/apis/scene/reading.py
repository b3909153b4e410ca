"""Reading a scene window by window, scaled alike everywhere.

:func:`open_scene` opens any raster GDAL reads (GeoTIFFs striped or tiled,
uncompressed or LZW / Deflate / JPEG / ZSTD compressed) with every failure an
:class:`~rscotr.apis.image_io.ImageReadError`; :class:`SceneScaler` scales
windows to uint8 with statistics of the whole scene; :class:`SceneReader`
gives each task's bands of a window.
"""
import math
import os
import os.path as osp
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ...utils.io import PathLike, first_line
from ..image_io import (BandsArg, ImageReadError, nodata_mask, parse_scale,
                        scale_to_uint8, select_bands, stretch_limits, stretch_to_uint8)

__all__ = ['STATS_SAMPLES', 'open_scene', 'is_georeferenced', 'SceneScaler', 'SceneReader']

#: Pixels sampled from the scene for the scaling statistics.
STATS_SAMPLES = 1 << 20


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
                             f'({first_line(e)})') from None
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

    Same modes and formulas as :func:`~rscotr.apis.image_io.scale_to_uint8`
    (its :func:`~rscotr.apis.image_io.stretch_limits` and
    :func:`~rscotr.apis.image_io.stretch_to_uint8`);
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
        valid = nodata_mask(sample, src.nodata, axis=0)
        limits = {}
        for i, band in enumerate(bands):
            values = sample[i] if valid is None else sample[i][valid]
            limits[band] = stretch_limits(values.astype(np.float64).ravel(), mode, params)
        return cls(scale, 'stretch', limits)

    def __call__(self, data: np.ndarray, bands: Sequence[int]) -> np.ndarray:
        """(h, w, k) data of file bands ``bands`` -> (h, w, k) uint8."""
        if self.mode == 'identity':
            return data if data.dtype == np.uint8 else scale_to_uint8(data, 'none')
        if self.mode == 'pointwise':
            return scale_to_uint8(data, self.scale)
        out = np.empty(data.shape, dtype=np.uint8)
        for c, band in enumerate(bands):
            out[..., c] = stretch_to_uint8(data[..., c], *self.limits[int(band)])
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
                                 f'({first_line(e)})') from None
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
