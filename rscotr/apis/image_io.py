"""Reading remote-sensing images for inference, and writing result files atomically.

:func:`read_image` turns a JPEG / PNG / TIFF / GeoTIFF (3 or 4 bands, 8 or
16 bit) into the 3-band uint8 array the models take:

1. decode: TIFF files (recognised by their magic bytes, not the name) through
   rasterio (GDAL: striped or tiled, uncompressed or LZW / Deflate / JPEG /
   ZSTD compressed; :func:`~rscotr.utils.raster.read_raster`), everything
   else through Pillow (which detects truncated files) and OpenCV (which
   keeps 16-bit PNGs);
2. select bands: 1-based band numbers as in GDAL (``bands=(4, 1, 2)`` makes
   IR-R-G from an RGBIR tile); by default the first 3 bands, which are R, G,
   B for RGB, RGBA and RGBIR files (a single-band image is repeated 3 times);
3. scale to uint8 (:func:`scale_to_uint8`): ``auto`` keeps 8-bit data and
   stretches anything else (16-bit) per band between its 2nd and 98th
   percentile; ``none``, ``minmax``, ``percentile[:LOW,HIGH]`` and
   ``divide:N`` choose explicitly.

The returned array is (H, W, 3) uint8 in the order of the selected bands
(R, G, B by default), not OpenCV's BGR. Every failure to read is an
:class:`ImageReadError` naming the file and the problem.
"""
import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.io import (PathLike, atomic_write_bytes, first_line, read_file_head,  # noqa: F401
                        truncated_image_problem)
from ..utils.raster import RasterReadError, is_tiff, read_raster

__all__ = [
    'ImageReadError', 'read_image', 'read_raw_image', 'parse_bands', 'parse_scale',
    'select_bands', 'scale_to_uint8', 'stretch_limits', 'stretch_to_uint8', 'nodata_mask',
    'prepare_image', 'atomic_write_bytes',
    'encode_png', 'write_png_atomic'
]

BandsArg = Union[None, str, Sequence[int]]

#: Pixels used to estimate percentiles (a regular subsample of larger images).
_STATS_SAMPLES = 1 << 22


class ImageReadError(Exception):
    """An image file that cannot be used: missing, unreadable, corrupt or not an image.

    Attributes:
        path: The file.
        reason: What is wrong with it.
    """

    def __init__(self, path: PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f'{self.path}: {reason}')


# ---------------------------------------------------------------------- options
def parse_bands(bands: BandsArg) -> Optional[Tuple[int, ...]]:
    """1-based band numbers from ``'1,2,3'`` / ``(1, 2, 3)``; None stays None.

    Raises:
        ValueError: Not 3 positive integers.
    """
    if bands is None:
        return None
    if isinstance(bands, str):
        try:
            values = tuple(int(v) for v in bands.replace(' ', '').split(',') if v != '')
        except ValueError:
            raise ValueError(f'bands must be comma-separated integers like 1,2,3, got {bands!r}')
    else:
        values = tuple(int(v) for v in bands)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f'bands must be 3 band numbers counted from 1 (as in GDAL), '
                         f'got {bands!r}')
    return values


def parse_scale(scale: str) -> Tuple[str, Tuple[float, ...]]:
    """``(mode, params)`` of a scaling option.

    Accepted: ``auto``, ``none``, ``minmax``, ``percentile`` (2-98),
    ``percentile:LOW,HIGH`` and ``divide:N``.

    Raises:
        ValueError: Any other string.
    """
    text = str(scale).strip().lower()
    mode, _, arg = text.partition(':')
    try:
        if mode in ('auto', 'none', 'minmax') and not arg:
            return mode, ()
        if mode == 'percentile':
            low, high = (float(v) for v in arg.split(',')) if arg else (2.0, 98.0)
            if 0 <= low < high <= 100:
                return mode, (low, high)
        elif mode == 'divide' and arg:
            divisor = float(arg)
            if divisor > 0:
                return mode, (divisor, )
    except ValueError:
        pass
    raise ValueError(f'unknown scale {scale!r}: use auto, none, minmax, percentile, '
                     'percentile:LOW,HIGH or divide:N (N > 0)')


# ---------------------------------------------------------------------- decoding
def _read_tiff(path: str) -> Tuple[np.ndarray, Optional[float]]:
    try:
        return read_raster(path)
    except RasterReadError as e:
        raise ImageReadError(path, f'unreadable or corrupt TIFF ({e})') from None


def _read_other(path: str) -> np.ndarray:
    import cv2
    from PIL import Image, UnidentifiedImageError

    # Pillow identifies the format and fails on truncated data (OpenCV would
    # silently return a partly grey image for a truncated JPEG)
    try:
        with Image.open(path) as im:
            im.load()
            mode, fmt = im.mode, im.format
            pil_array = None
            if mode not in ('RGB', 'RGBA', 'L', 'LA', 'I;16', 'I;16B', 'I;16L', 'I', 'F'):
                pil_array = np.asarray(im.convert('RGBA' if 'A' in im.getbands() else 'RGB'))
    except UnidentifiedImageError:
        raise ImageReadError(path, 'not an image (unrecognised file format)') from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(path, f'image too large to decode safely ({e})') from None
    except Exception as e:  # Pillow raises OSError, SyntaxError, EOFError, ... on bad data
        raise ImageReadError(path, f'unreadable or corrupt image ({first_line(e)})') from None
    if pil_array is not None:  # palette, CMYK, ...: Pillow's conversion
        return pil_array
    # OpenCV keeps 16-bit PNG / JPEG-2000 data that Pillow reduces to 8 bits; a
    # JPEG is decoded as mmcv's LoadImageFromFile does (EXIF orientation applied)
    buf = np.fromfile(path, dtype=np.uint8)
    flag = cv2.IMREAD_COLOR if fmt == 'JPEG' and mode != 'L' else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(buf, flag)
    if img is None:
        with Image.open(path) as im:
            return np.asarray(im)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def read_raw_image(path: PathLike) -> Tuple[np.ndarray, Optional[float]]:
    """Decode an image file without band selection or scaling.

    Args:
        path: JPEG, PNG, BMP, ... or (Geo)TIFF file.

    Returns:
        tuple: ``(array, nodata)``: (H, W, bands) or (H, W) array in the file's
        data type and band order, and the GeoTIFF nodata value (or None).

    Raises:
        ImageReadError: Missing file, a folder, an empty file, an unknown
            format or corrupt / truncated data.
    """
    path = os.fspath(path)
    head = read_file_head(path, 16, ImageReadError, 'an image file')
    if is_tiff(head):
        return _read_tiff(path)
    problem = truncated_image_problem(path)
    if problem:
        raise ImageReadError(path, problem)
    return _read_other(path), None


# ---------------------------------------------------------------------- bands and scaling
def select_bands(img: np.ndarray, bands: BandsArg = None,
                 name: PathLike = '<array>') -> np.ndarray:
    """Three bands of ``img`` (H, W[, C]), chosen by 1-based band numbers.

    By default the first 3 bands (R, G, B of RGB, RGBA and RGBIR data); a
    single band (or grey + alpha) is repeated 3 times.

    Raises:
        ImageReadError: A requested band the image does not have, or an
            image with 2 bands and no ``bands``.
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageReadError(name, f'not an image array (shape {tuple(img.shape)})')
    num = img.shape[2]
    wanted = parse_bands(bands)
    if wanted is None:
        if num >= 3:
            wanted = (1, 2, 3)
        elif num == 1 or num == 2:  # grey, grey + alpha
            wanted = (1, 1, 1)
    if max(wanted) > num:
        raise ImageReadError(name, f'has {num} band(s); bands {",".join(map(str, wanted))} '
                             f'were requested (band numbers start at 1)')
    if num == 3 and wanted == (1, 2, 3):
        return np.ascontiguousarray(img)
    return np.ascontiguousarray(img[..., [b - 1 for b in wanted]])


def _band_stats_sample(band: np.ndarray, valid: Optional[np.ndarray]) -> np.ndarray:
    values = band if valid is None else band[valid]
    values = values.ravel()
    if values.size > _STATS_SAMPLES:
        values = values[::values.size // _STATS_SAMPLES + 1]
    return values


def scale_to_uint8(img: np.ndarray, scale: str = 'auto',
                   nodata: Optional[float] = None) -> np.ndarray:
    """Scale (H, W, C) data to uint8.

    Args:
        img: Image of any numeric type.
        scale: ``auto`` (uint8 unchanged; any other type stretched per band
            between its 2nd and 98th percentile), ``none`` (values clipped to
            0..255 without scaling), ``minmax`` (per band min..max ->
            0..255), ``percentile`` / ``percentile:LOW,HIGH`` (per band
            percentile stretch, 2-98 by default) or ``divide:N`` (values / N,
            clipped, e.g. ``divide:256`` maps 16 bits to 8).
        nodata: Value excluded from the statistics of the stretches.

    Returns:
        np.ndarray: (H, W, C) uint8.
    """
    mode, params = parse_scale(scale)
    if mode == 'auto':
        if img.dtype == np.uint8:
            return img
        mode, params = 'percentile', (2.0, 98.0)
    if mode == 'none':
        if img.dtype == np.uint8:
            return img
        return np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    if mode == 'divide':
        return np.clip(np.nan_to_num(img.astype(np.float32) / params[0]), 0,
                       255).astype(np.uint8)
    out = np.empty(img.shape, dtype=np.uint8)
    valid = nodata_mask(img, nodata, axis=-1)
    for c in range(img.shape[-1]):
        band = img[..., c].astype(np.float32)
        low, high = stretch_limits(_band_stats_sample(band, valid), mode, params)
        out[..., c] = stretch_to_uint8(band, low, high)
    return out


def nodata_mask(img: np.ndarray, nodata: Optional[float], axis: int = -1) -> Optional[np.ndarray]:
    """Pixels where not every band equals ``nodata`` (None: no such value, or
    no pixel would be left)."""
    if nodata is None or np.isnan(nodata):
        return None
    valid = ~np.all(img == nodata, axis=axis)
    return valid if valid.any() else None


def stretch_limits(values: np.ndarray, mode: str,
                   params: Sequence[float] = (2.0, 98.0)) -> Tuple[float, float]:
    """``(low, high)`` of a band's stretch from a sample of its values.

    Args:
        values: Sample of the band (any shape); non-finite values are ignored.
        mode: ``minmax`` or ``percentile``.
        params: ``(LOW, HIGH)`` percentiles of ``percentile``.

    Returns:
        tuple: ``(0.0, 0.0)`` when no value is finite.
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 0.0
    if mode == 'minmax':
        return float(values.min()), float(values.max())
    low, high = np.percentile(values, params)
    return float(low), float(high)


def stretch_to_uint8(band: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low..high`` of a band to 0..255 (rounded, clipped; NaN -> 0).

    A band without range (``high <= low``) is all 0 when ``high <= 0``,
    else its values clipped to 0..255.
    """
    band = band.astype(np.float32, copy=False)
    if high <= low:
        if high <= 0:
            return np.zeros(band.shape, np.uint8)
        return np.clip(np.nan_to_num(band), 0, 255).astype(np.uint8)
    stretched = (np.nan_to_num(band, nan=low) - low) * (255.0 / (high - low))
    return np.clip(stretched + 0.5, 0, 255).astype(np.uint8)


def prepare_image(img: np.ndarray, bands: BandsArg = None, scale: str = 'auto',
                  nodata: Optional[float] = None, name: PathLike = '<array>') -> np.ndarray:
    """Band selection and scaling of an already decoded image.

    Args:
        img: (H, W), (H, W, 3) or (H, W, 4) array (uint8, uint16, ...), bands
            in file order (R, G, B[, IR / alpha]).
        bands: 1-based band numbers (``'1,2,3'``); default the first 3.
        scale: See :func:`scale_to_uint8`.
        nodata: Value excluded from the stretch statistics.
        name: Name used in error messages.

    Returns:
        np.ndarray: (H, W, 3) uint8 in the selected band order.
    """
    img = np.asarray(img)
    if img.dtype == bool or not (np.issubdtype(img.dtype, np.integer)
                                 or np.issubdtype(img.dtype, np.floating)):
        raise ImageReadError(name, f'unsupported pixel type {img.dtype}')
    return scale_to_uint8(select_bands(img, bands, name), scale, nodata)


def read_image(path: PathLike, bands: BandsArg = None, scale: str = 'auto') -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 in band order (RGB by default).

    Args:
        path: JPEG / PNG / TIFF / GeoTIFF (3 or 4 bands, 8 or 16 bit; 1-band
            files are repeated to 3 bands).
        bands: 1-based band numbers as in GDAL, e.g. ``'4,1,2'`` or
            ``(4, 1, 2)``; default the first 3 bands (RGB of an RGBIR tile).
        scale: ``auto`` | ``none`` | ``minmax`` | ``percentile[:LOW,HIGH]`` |
            ``divide:N`` (see :func:`scale_to_uint8`); ``auto`` keeps 8-bit
            data and stretches 16-bit data per band between its 2nd and 98th
            percentile.

    Returns:
        np.ndarray: (H, W, 3) uint8.

    Raises:
        ImageReadError: Missing file, unreadable / corrupt file, not an
            image, or a requested band it does not have.
        ValueError: A malformed ``bands`` or ``scale`` option.
    """
    parse_bands(bands)  # option errors before any file access
    parse_scale(scale)
    img, nodata = read_raw_image(path)
    return prepare_image(img, bands, scale, nodata, name=path)


# ---------------------------------------------------------------------- atomic output
def encode_png(img: np.ndarray, rgb: bool = True, compression: int = 1) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) uint8 image.

    Args:
        img: Image; 3-channel images are taken as RGB when ``rgb``.
        rgb: Channel order of 3-channel images (OpenCV writes BGR).
        compression: zlib level 0-9 (1: fast, files a little larger).
    """
    import cv2
    if img.ndim == 3 and img.shape[2] == 3 and rgb:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise ValueError(f'cannot encode an image of shape {img.shape} and type {img.dtype}')
    return buf.tobytes()


def write_png_atomic(path: PathLike, img: np.ndarray, rgb: bool = True) -> None:
    """Encode ``img`` (see :func:`encode_png`) and write it atomically."""
    atomic_write_bytes(path, encode_png(img, rgb=rgb))
