"""Reading whole rasters (GeoTIFFs and anything else GDAL reads) through rasterio.

Every TIFF reader of the project goes through GDAL (rasterio), which decodes
the compressions GeoTIFFs are published with (LZW, Deflate, JPEG-in-TIFF,
PackBits, ZSTD, LERC, WebP) in striped and tiled layouts, with pixel- or
band-interleaved data, without optional codec packages. The scene reader
(:mod:`rscotr.apis.scene.reading`) reads windows of the same rasterio
datasets.
"""
import warnings
from typing import Optional, Tuple, Union

import numpy as np

from .io import first_line

__all__ = ['RasterReadError', 'read_raster', 'TIFF_MAGIC', 'is_tiff']

#: First four bytes of a TIFF (little / big endian) or a BigTIFF.
TIFF_MAGIC = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')


class RasterReadError(Exception):
    """GDAL cannot open or decode a raster; the message is GDAL's first line."""


def is_tiff(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a TIFF (or BigTIFF)."""
    return head[:4] in TIFF_MAGIC


def read_raster(source: Union[str, bytes]) -> Tuple[np.ndarray, Optional[float]]:
    """Decode every band of a raster.

    Args:
        source: A file name, or the bytes of a file (e.g. a member of a zip).

    Returns:
        tuple: ``(array, nodata)``: (H, W, bands) in the file's data type and
        band order, and the nodata value of the first band (or None).

    Raises:
        RasterReadError: Not a raster GDAL reads, or corrupt / truncated data.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.io import MemoryFile
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            if isinstance(source, (bytes, bytearray, memoryview)):
                with MemoryFile(bytes(source)) as mem, mem.open() as src:
                    data, nodata = src.read(), src.nodata
            else:
                with rasterio.open(source) as src:
                    data, nodata = src.read(), src.nodata  # (bands, H, W)
    except (RasterioError, OSError, ValueError) as err:
        # GDAL's own message (e.g. 'TIFFReadEncodedStrip() failed') is the cause
        raise RasterReadError(first_line(err.__cause__ or err)) from None
    return np.ascontiguousarray(data.transpose(1, 2, 0)), nodata
