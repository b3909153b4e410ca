"""Cut ISPRS Potsdam tiles into patches with index labels.

Input (``RAW_DIR``): the official folders, unpacked or as their zips::

    2_Ortho_RGB/top_potsdam_<A>_<B>_RGB.tif          (or 2_Ortho_RGB.zip)
    3_Ortho_IRRG/top_potsdam_<A>_<B>_IRRG.tif        (or 3_Ortho_IRRG.zip)
    4_Ortho_RGBIR/top_potsdam_<A>_<B>_RGBIR.tif      (or 4_Ortho_RGBIR.zip)
    5_Labels_all/top_potsdam_<A>_<B>_label.tif       (or 5_Labels_all.zip)
    5_Labels_all_noBoundary/top_potsdam_<A>_<B>_label_noBoundary.tif
        (or 5_Labels_all_noBoundary.zip)

Only the image folder of the chosen ``bands`` and the chosen label variant
are read. Inside a folder or zip, files are matched by their exact official
name at any depth.

Output::

    OUT/img_dir/{train,val}/<A>_<B>_<row>_<col>.png
    OUT/ann_dir/{train,val}/<A>_<B>_<row>_<col>.png

* Image PNGs keep the band order of the source file as the PNG's channel
  order: IRRG -> PNG (R, G, B) = (IR, R, G); RGB -> (R, G, B); RGBIR -> a
  4-channel PNG (R, G, B, A) = (R, G, B, IR). (Read them back with
  ``cv2.IMREAD_UNCHANGED`` / mmcv ``color_type='unchanged'`` for RGBIR.)
* Label PNGs are single-channel uint8: index of
  :data:`~rscotr.datasets.meta.POTSDAM_CLASSES` (impervious_surface 0,
  building 1, low_vegetation 2, tree 3, car 4, clutter 5), black (0, 0, 0)
  -> 255 (ignored). Any other colour is an error.
* Patches are ``clip_size`` squares every ``stride`` pixels; the last row
  and column are shifted back so they end at the tile border (6000 px, 512 /
  512 -> 12 x 12 patches per tile, 3,456 train patches).
* Split by :data:`~rscotr.datasets.meta.POTSDAM_TRAIN_TILES` /
  :data:`~rscotr.datasets.meta.POTSDAM_VAL_TILES`; other tiles are skipped
  with a note.
"""
import logging
import math
import os
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...utils.io import PathLike
from ..meta import (POTSDAM_BOUNDARY_COLOR, POTSDAM_CLASSES,
                    POTSDAM_IGNORE_INDEX, POTSDAM_IMAGE_SOURCES,
                    POTSDAM_LABEL_SOURCES, POTSDAM_PALETTE,
                    POTSDAM_TRAIN_TILES, POTSDAM_VAL_TILES, potsdam_split_of)
from .common import ConversionError, ConversionSummary, atomic_output_dir, progress

logger = logging.getLogger(__name__)

SPLITS = ('train', 'val')
_INVALID = 254  # LUT marker for colours outside the palette


class _TileFile:
    """A tile stored as a file in a folder or as a member of a zip."""

    def __init__(self, path: str, member: str = '') -> None:
        self.path = path
        self.member = member

    def __str__(self) -> str:
        return f'{self.path}::{self.member}' if self.member else self.path

    def read(self) -> np.ndarray:
        """Decode the TIFF to (H, W, bands) without changes.

        Read by GDAL (:func:`~rscotr.utils.raster.read_raster`): striped or
        tiled, uncompressed or LZW / Deflate / JPEG / ZSTD compressed.
        """
        from ...utils.raster import RasterReadError, read_raster
        try:
            if self.member:
                with zipfile.ZipFile(self.path) as zf:
                    source = zf.read(self.member)
            else:
                source = self.path
            arr, _ = read_raster(source)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise ConversionError(str(self), f'cannot read file: {e}') from e
        except RasterReadError as e:
            raise ConversionError(str(self), f'cannot read TIFF: {e}') from None
        return arr


def index_tiles(raw_dir: str, stem: str, suffix: str) -> Dict[str, _TileFile]:
    """Find the tiles of one source (folder ``stem`` or ``stem.zip``).

    Args:
        raw_dir (str): Potsdam root.
        stem (str): e.g. ``'3_Ortho_IRRG'``.
        suffix (str): File-name suffix, e.g. ``'IRRG'``.

    Returns:
        dict: ``{tile_id: _TileFile}`` ordered by tile id.

    Raises:
        ConversionError: neither the folder nor the zip exists, or it holds
            no tile.
    """
    pattern = re.compile(rf'^top_potsdam_(\d+_\d+)_{re.escape(suffix)}\.tif$')
    found: Dict[str, _TileFile] = {}
    folder = osp.join(raw_dir, stem)
    zip_path = folder + '.zip'
    if osp.isdir(folder):
        where = folder
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for fname in sorted(filenames):
                m = pattern.match(fname)
                if m and m.group(1) not in found:
                    found[m.group(1)] = _TileFile(osp.join(dirpath, fname))
    elif osp.isfile(zip_path):
        where = zip_path
        try:
            with zipfile.ZipFile(zip_path) as zf:
                names = sorted(zf.namelist())
        except (OSError, zipfile.BadZipFile) as e:
            raise ConversionError(zip_path, f'cannot open zip: {e}') from e
        for name in names:
            m = pattern.match(name.rsplit('/', 1)[-1])
            if m and m.group(1) not in found:
                found[m.group(1)] = _TileFile(zip_path, name)
    else:
        raise ConversionError(folder, f'neither {stem}/ nor {stem}.zip found')
    if not found:
        raise ConversionError(
            where, f'no top_potsdam_<A>_<B>_{suffix}.tif tile inside')

    def key(tile: str) -> Tuple[int, int]:
        a, b = tile.split('_')
        return int(a), int(b)

    return OrderedDict((t, found[t]) for t in sorted(found, key=key))


def _build_lut() -> np.ndarray:
    lut = np.full(1 << 24, _INVALID, np.uint8)
    for idx, (r, g, b) in enumerate(POTSDAM_PALETTE):
        lut[(r << 16) | (g << 8) | b] = idx
    r, g, b = POTSDAM_BOUNDARY_COLOR
    lut[(r << 16) | (g << 8) | b] = POTSDAM_IGNORE_INDEX
    return lut


def rgb_to_index(label: np.ndarray,
                 source: str,
                 lut: Optional[np.ndarray] = None) -> np.ndarray:
    """Map an RGB colour label to class indices.

    Args:
        label (np.ndarray): (H, W, 3) uint8 RGB label tile.
        source (str): Its file name, for error messages.
        lut (np.ndarray, optional): Cached lookup table.

    Returns:
        np.ndarray: (H, W) uint8, values in 0..5 and 255.

    Raises:
        ConversionError: a colour outside the palette (names the colour,
            the first pixel that has it, and how many pixels are bad).
    """
    if label.ndim != 3 or label.shape[2] < 3 or label.dtype != np.uint8:
        raise ConversionError(
            source, f'label must be an RGB uint8 image, got shape '
            f'{label.shape} dtype {label.dtype}')
    if lut is None:
        lut = _build_lut()
    packed = label[..., 0].astype(np.uint32) << 16
    packed |= label[..., 1].astype(np.uint32) << 8
    packed |= label[..., 2]
    index = lut[packed]
    bad = index == _INVALID
    if bad.any():
        ys, xs = np.nonzero(bad)
        y, x = int(ys[0]), int(xs[0])
        colour = tuple(int(v) for v in label[y, x, :3])
        raise ConversionError(
            source, f'label colour {colour} at (row {y}, col {x}) is not in '
            f'the Potsdam palette ({int(bad.sum())} such pixels; expected '
            f'{list(POTSDAM_PALETTE)} or black {POTSDAM_BOUNDARY_COLOR})')
    return index


def patch_starts(size: int, clip_size: int, stride: int) -> List[int]:
    """Window starts along one axis; the last one ends at ``size``."""
    n = int(math.ceil(max(size - clip_size, 0) / stride)) + 1
    return [min(i * stride, size - clip_size) for i in range(n)]


def _to_png_order(img: np.ndarray) -> np.ndarray:
    """Band order -> OpenCV's BGR(A) so the PNG stores bands in order."""
    if img.shape[2] == 3:
        return np.ascontiguousarray(img[..., ::-1])
    return np.ascontiguousarray(img[..., [2, 1, 0, 3]])


def convert_potsdam(raw_dir: PathLike,
                    out_dir: PathLike,
                    bands: str = 'IRRG',
                    clip_size: int = 512,
                    stride: int = 512,
                    no_boundary: bool = False,
                    overwrite: bool = False,
                    show_progress: bool = True) -> ConversionSummary:
    """Cut the Potsdam tiles into image / index-label PNG patches.

    Args:
        raw_dir (str): Potsdam root (folders or zips, see module docstring).
        out_dir (str): Output folder, written atomically.
        bands (str): ``'IRRG'`` (reference), ``'RGB'`` or ``'RGBIR'``.
        clip_size (int): Patch side in pixels.
        stride (int): Step between patches in pixels.
        no_boundary (bool): Use ``5_Labels_all_noBoundary`` (eroded
            boundaries -> 255) instead of ``5_Labels_all``.
        overwrite (bool): Replace an existing ``out_dir`` on success.
        show_progress (bool): Show a tqdm progress bar.

    Returns:
        ConversionSummary: patches per split, pixels per class and split.

    Raises:
        ConversionError: missing sources, a tile without label, wrong band
            count / dtype, image and label of different size, a label colour
            outside the palette, a tile smaller than ``clip_size``, or an
            existing ``out_dir``.
    """
    import cv2
    root = os.fspath(raw_dir)
    if bands not in POTSDAM_IMAGE_SOURCES:
        raise ConversionError(
            root, f'unknown bands {bands!r}, expected one of '
            f'{list(POTSDAM_IMAGE_SOURCES)}')
    if clip_size <= 0 or stride <= 0:
        raise ConversionError(root, 'clip size and stride must be positive')
    if not osp.isdir(root):
        raise ConversionError(root, 'input folder not found')
    img_stem, img_suffix, n_bands = POTSDAM_IMAGE_SOURCES[bands]
    lab_stem, lab_suffix = POTSDAM_LABEL_SOURCES[
        'noBoundary' if no_boundary else 'full']
    images = index_tiles(root, img_stem, img_suffix)
    labels = index_tiles(root, lab_stem, lab_suffix)

    summary = ConversionSummary(
        dataset='ISPRS Potsdam',
        out_dir=osp.abspath(os.fspath(out_dir)),
        unit='pixels',
        total_unit='patches')
    tiles: List[Tuple[str, str]] = []
    skipped = []
    for tile in images:
        split = potsdam_split_of(tile)
        if not split:
            logger.info('Potsdam: tile %s is in neither split list, skipped',
                        tile)
            skipped.append(tile)
            continue
        if tile not in labels:
            raise ConversionError(
                str(images[tile]), f'tile {tile} has no label file '
                f'top_potsdam_{tile}_{lab_suffix}.tif in {lab_stem}')
        tiles.append((tile, split))
    if not tiles:
        raise ConversionError(
            osp.join(root, img_stem), 'no tile of the train/val split lists')

    names = list(POTSDAM_CLASSES) + ['ignore (255)']
    pixel_counts = {s: np.zeros(256, np.int64) for s in SPLITS}
    totals = OrderedDict((s, 0) for s in SPLITS)
    lut = _build_lut()
    with atomic_output_dir(out_dir, overwrite) as tmp:
        for sub in ('img_dir', 'ann_dir'):
            for split in SPLITS:
                os.makedirs(osp.join(tmp, sub, split))
        for tile, split in progress(
                tiles, 'Potsdam', show_progress, unit='tile'):
            img = images[tile].read()
            if img.ndim != 3 or img.shape[2] != n_bands:
                raise ConversionError(
                    str(images[tile]), f'expected {n_bands} bands for '
                    f'{bands}, got array of shape {img.shape}')
            if img.dtype != np.uint8:
                raise ConversionError(
                    str(images[tile]), f'expected uint8, got {img.dtype}')
            label = rgb_to_index(labels[tile].read(), str(labels[tile]), lut)
            if label.shape != img.shape[:2]:
                raise ConversionError(
                    str(labels[tile]), f'label is {label.shape[1]}x'
                    f'{label.shape[0]} but the image is {img.shape[1]}x'
                    f'{img.shape[0]}')
            h, w = label.shape
            if h < clip_size or w < clip_size:
                raise ConversionError(
                    str(images[tile]),
                    f'tile {w}x{h} is smaller than clip size {clip_size}')
            for row, y in enumerate(patch_starts(h, clip_size, stride)):
                for col, x in enumerate(patch_starts(w, clip_size, stride)):
                    name = f'{tile}_{row}_{col}.png'
                    ann = label[y:y + clip_size, x:x + clip_size]
                    patch = img[y:y + clip_size, x:x + clip_size]
                    for sub, arr in (('img_dir', _to_png_order(patch)),
                                     ('ann_dir', ann)):
                        path = osp.join(tmp, sub, split, name)
                        if not cv2.imwrite(path, arr):
                            raise ConversionError(path, 'cannot write PNG')
                    pixel_counts[split] += np.bincount(
                        ann.ravel(), minlength=256)
                    totals[split] += 1

    for split in SPLITS:
        counts = pixel_counts[split]
        summary.counts[split] = OrderedDict(
            (name, int(counts[i if i < len(POTSDAM_CLASSES) else
                              POTSDAM_IGNORE_INDEX]))
            for i, name in enumerate(names))
        summary.totals[split] = totals[split]
        used = [t for t, s in tiles if s == split]
        listed = POTSDAM_TRAIN_TILES if split == 'train' else POTSDAM_VAL_TILES
        summary.notes.append(
            f'{split}: {len(used)} of the {len(listed)} listed tiles '
            f'({" ".join(used)})')
    summary.notes.append(
        f'bands {bands} from {img_stem}, labels from {lab_stem}, patches '
        f'{clip_size} px every {stride} px')
    if skipped:
        summary.notes.append(
            f'skipped tiles in neither split list: {" ".join(skipped)}')
    missing = sorted(set(labels) - set(images))
    if missing:
        summary.notes.append(
            f'label tiles without an image (ignored): {" ".join(missing)}')
    return summary
