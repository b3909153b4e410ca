"""Helpers shared by the data-set converters.

* :class:`ConversionError`: the one exception a converter raises on bad input;
  it names the offending file and the problem. The command-line tools print
  it and exit with status 2.
* :func:`atomic_output_dir`: converters write into a temporary sibling folder
  and rename it to the final location only once everything succeeded, so a
  failed conversion never leaves partial output that looks complete and never
  destroys a previous good output.
* :class:`ConversionSummary`: what a converter wrote (counts per split and
  per class, plus notes); the CLIs print :meth:`ConversionSummary.format`.
"""
import contextlib
import logging
import os
import os.path as osp
import shutil
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ...utils.io import PathLike, truncated_image_problem

logger = logging.getLogger(__name__)


class ConversionError(Exception):
    """Bad input found while converting a data set.

    Args:
        path (str): The file or folder at fault.
        problem (str): What is wrong with it.
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')


@dataclass
class ConversionSummary:
    """What a converter wrote.

    Attributes:
        dataset (str): Data-set name, e.g. ``'DIOR'``.
        out_dir (str): Final output folder.
        counts (dict): ``{split: {class_name: count}}`` (ordered); the unit
            (images, boxes, patches) is given by ``unit``.
        unit (str): What ``counts`` counts.
        totals (dict): ``{split: number of images / patches written}``.
        total_unit (str): What ``totals`` counts.
        files (list[str]): Main output files (relative to ``out_dir``).
        notes (list[str]): Warnings and skipped inputs worth telling a user.
    """

    dataset: str
    out_dir: str
    unit: str = 'images'
    total_unit: str = 'images'
    counts: Dict[str, Dict[str, int]] = field(default_factory=OrderedDict)
    totals: Dict[str, int] = field(default_factory=OrderedDict)
    files: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def format(self) -> str:
        """Human-readable multi-line summary."""
        lines = [f'{self.dataset} -> {self.out_dir}']
        for split, total in self.totals.items():
            lines.append(f'  {split}: {total} {self.total_unit}')
        splits = list(self.counts)
        if splits:
            names: List[str] = []
            for split in splits:
                for name in self.counts[split]:
                    if name not in names:
                        names.append(name)
            width = max([len(n) for n in names] + [5])
            lines.append(f'  {self.unit} per class:')
            lines.append('    ' + 'class'.ljust(width) + ''.join(
                f'{s:>10}' for s in splits))
            for name in names:
                lines.append('    ' + name.ljust(width) + ''.join(
                    f'{self.counts[s].get(name, 0):>10}' for s in splits))
        for f in self.files:
            lines.append(f'  wrote {f}')
        for note in self.notes:
            lines.append(f'  note: {note}')
        return '\n'.join(lines)


@contextlib.contextmanager
def atomic_output_dir(out_dir: PathLike,
                      overwrite: bool = False) -> Iterator[str]:
    """Write a folder atomically.

    Yields a temporary folder ``<out_dir>.tmp-<pid>`` next to ``out_dir``.
    When the ``with`` block finishes without error the temporary folder is
    renamed to ``out_dir`` (an existing ``out_dir`` is replaced only at that
    moment, and only if ``overwrite``); on any error it is removed and
    ``out_dir`` is left untouched.

    Args:
        out_dir (str): Final output folder.
        overwrite (bool): Replace an existing ``out_dir`` at the end.

    Raises:
        ConversionError: ``out_dir`` exists and ``overwrite`` is False (raised
            before anything is written).
    """
    out_dir = osp.abspath(os.fspath(out_dir))
    if osp.lexists(out_dir) and not overwrite:
        raise ConversionError(
            out_dir, 'output already exists (pass --overwrite to replace '
            'it once the new conversion has succeeded)')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = f'{out_dir}.tmp-{os.getpid()}'
    if osp.lexists(tmp_dir):
        shutil.rmtree(tmp_dir)
    os.makedirs(tmp_dir)
    try:
        yield tmp_dir
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    old_dir = None
    if osp.lexists(out_dir):
        old_dir = f'{out_dir}.old-{os.getpid()}'
        os.rename(out_dir, old_dir)
    try:
        os.rename(tmp_dir, out_dir)
    except BaseException:
        if old_dir is not None:
            os.rename(old_dir, out_dir)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if old_dir is not None:
        if osp.isdir(old_dir) and not osp.islink(old_dir):
            shutil.rmtree(old_dir)
        else:
            os.remove(old_dir)


def progress(iterable: Iterable,
             desc: str,
             enabled: bool = True,
             total: Optional[int] = None,
             unit: str = 'file') -> Iterable:
    """Wrap ``iterable`` in a tqdm progress bar (on stderr) if ``enabled``."""
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False)


def is_hidden(name: str) -> bool:
    """Files a converter silently ignores (dot files, ``Thumbs.db``)."""
    return name.startswith('.') or name.lower() in ('thumbs.db',
                                                    'desktop.ini')


def decode_image(data: bytes, path: PathLike,
                 flags: Optional[int] = None) -> np.ndarray:
    """Decode an encoded image fully, rejecting corrupt or truncated files.

    Args:
        data (bytes): File content.
        path (str): File name, for the error message.
        flags (int, optional): ``cv2.imread`` flags; default colour.

    Returns:
        np.ndarray: The decoded image, (H, W, C) BGR uint8 by default.

    TIFFs are decoded by OpenCV's libtiff (uncompressed, LZW, Deflate,
    PackBits, JPEG; striped or tiled), as the training pipelines read them.

    Raises:
        ConversionError: empty, not decodable, a truncated PNG or JPEG
            (:func:`~rscotr.utils.io.truncated_image_problem`), or a TIFF
            compression OpenCV lacks.
    """
    import cv2
    if not data:
        raise ConversionError(path, 'empty file')
    problem = truncated_image_problem(data)
    if problem:
        raise ConversionError(path, problem)
    img = cv2.imdecode(
        np.frombuffer(data, np.uint8),
        cv2.IMREAD_COLOR if flags is None else flags)
    if img is None:
        from ...utils.raster import RasterReadError, is_tiff, read_raster
        if is_tiff(data):
            try:
                read_raster(data)
            except RasterReadError as e:
                raise ConversionError(path, f'not a readable TIFF (corrupt file?): {e}')
            # GDAL reads it: a compression OpenCV's libtiff lacks (ZSTD,
            # WebP, LERC), which the OpenCV-based training pipelines could
            # not read either
            raise ConversionError(
                path, 'TIFF with a compression OpenCV cannot decode (the '
                'training pipelines read images with OpenCV): save it '
                'uncompressed or with LZW, Deflate or JPEG compression, or as '
                'PNG')
        raise ConversionError(path, 'not a readable image (corrupt file?)')
    return img


def read_image_checked(path: PathLike) -> np.ndarray:
    """Read and fully decode an image file; see :func:`decode_image`."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise ConversionError(path, f'cannot read file: {e}') from e
    return decode_image(data, path)


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) of an image from its header (no full decode).

    Raises:
        ConversionError: the file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError
    if not osp.isfile(path):
        raise ConversionError(path, 'image file not found')
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as e:
        raise ConversionError(path,
                              f'not a readable image (corrupt file?): {e}')


def place_file(src: PathLike, dst: PathLike, link: bool = False) -> bool:
    """Copy ``src`` to ``dst``, or hard-link it (falling back to a copy).

    Returns:
        bool: True if a hard link was made.
    """
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError as e:
            logger.warning('hard link %s -> %s failed (%s); copying', src,
                           dst, e)
    shutil.copyfile(src, dst)
    return False


def write_text_lines(path: PathLike, lines: Iterable[str]) -> None:
    """Write ``lines`` one per line (``\\n`` line ends, trailing newline)."""
    with open(path, 'w', newline='\n') as f:
        for line in lines:
            f.write(f'{line}\n')



def converter_parser(description: str, raw_help: str) -> 'argparse.ArgumentParser':
    """Argument parser with the options every converter CLI shares.

    ``RAW_DIR``, ``-o/--out-dir``, ``--overwrite`` and ``--no-progress``; the
    caller adds the converter's own options.
    """
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('raw_dir', metavar='RAW_DIR', help=raw_help)
    parser.add_argument('-o', '--out-dir', required=True, metavar='OUT')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT once done')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def run_converter_cli(convert, args, **options) -> int:
    """Run ``convert(raw_dir, out_dir, overwrite=..., show_progress=..., **options)``.

    Prints the summary and returns 0, or prints ``error: <file>: <problem>`` to
    stderr and returns 2 on a :class:`ConversionError`.
    """
    import sys
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        summary = convert(args.raw_dir, args.out_dir, overwrite=args.overwrite,
                          show_progress=not args.no_progress, **options)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(summary.format())
    return 0
