"""Prepare NWPU-RESISC45 for training: per-class train/val/test split.

Input (the official release): ``RAW_DIR/<class>/<class>_<nnn>.jpg`` for the 45
classes of :data:`rscotr.datasets.meta.RESISC45_CLASSES` (``RAW_DIR`` may also
be the folder that contains ``NWPU-RESISC45/``).

Output::

    OUT/train/<class>/<file>      (copies, or hard links with ``link=True``)
    OUT/val/<class>/<file>
    OUT/test/<class>/<file>
    OUT/meta/train.txt            "<class>/<file> <label_idx>" per line
    OUT/meta/val.txt
    OUT/meta/test.txt
    OUT/meta/classes.txt          the 45 class names, label index = line no.

The annotation lists are in the mmcls ``ImageNet``/``CustomDataset`` format:
use ``data_prefix=OUT/<split>`` and ``ann_file=OUT/meta/<split>.txt``.

Split rule: per class, the sorted file list is permuted with
``np.random.default_rng([seed, class_index])``; the first
``floor(n * train_ratio + 0.5)`` files go to train, the next
``floor(n * val_ratio + 0.5)`` to val and the rest to test (700 images,
0.2 / 0.1 -> 140 / 70 / 490).

Subsets: every one of the 45 class folders must be there, unless
``allow_missing_classes`` (``--allow-missing-classes``): then the class
folders present are converted (at least one), each with its official label
index (line number of ``classes.txt``, which still lists all 45) and the same
split as in a full conversion; the summary names the missing classes.
"""
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy as np

from ...utils.io import PathLike
from ..meta import RESISC45_CLASSES, RESISC45_IMG_SIZE
from .common import (ConversionError, ConversionSummary, atomic_output_dir, is_hidden,
                     place_file, progress, read_image_checked, write_text_lines)

SPLITS = ('train', 'val', 'test')


def _find_root(raw_dir: str) -> str:
    """Accept the class-folder root or its parent holding NWPU-RESISC45/."""
    if not osp.isdir(raw_dir):
        raise ConversionError(raw_dir, 'input folder not found')
    if any(osp.isdir(osp.join(raw_dir, name)) for name in RESISC45_CLASSES):
        return raw_dir
    nested = osp.join(raw_dir, 'NWPU-RESISC45')
    if osp.isdir(nested):
        return nested
    return raw_dir


def split_counts(n: int, train_ratio: float,
                 val_ratio: float) -> Tuple[int, int, int]:
    """Number of (train, val, test) images for a class of ``n`` images."""
    n_train = min(n, int(math.floor(n * train_ratio + 0.5)))
    n_val = min(n - n_train, int(math.floor(n * val_ratio + 0.5)))
    return n_train, n_val, n - n_train - n_val


def scan_resisc45(raw_dir: PathLike, allow_missing_classes: bool = False
                  ) -> Tuple[str, Dict[str, List[str]]]:
    """List the images of a raw RESISC45 folder and check its class folders.

    Args:
        raw_dir (str): Folder holding the 45 class folders (or its parent).
        allow_missing_classes (bool): Accept a subset of the 45 class
            folders (at least one).

    Returns:
        tuple: ``(root, {class_name: sorted file names})``, classes in
        label order (the present ones only).

    Raises:
        ConversionError: a class folder is missing (unless
            ``allow_missing_classes``), unknown or empty; no class folder.
    """
    root = _find_root(os.fspath(raw_dir))
    entries = sorted(e for e in os.listdir(root) if not is_hidden(e))
    folders = [e for e in entries if osp.isdir(osp.join(root, e))]
    unknown = [f for f in folders if f not in RESISC45_CLASSES]
    if unknown:
        raise ConversionError(
            osp.join(root, unknown[0]),
            f'unknown class folder {unknown[0]!r} (not one of the 45 '
            f'RESISC45 classes; all unknown: {unknown})')
    missing = [c for c in RESISC45_CLASSES if c not in folders]
    if len(missing) == len(RESISC45_CLASSES):
        raise ConversionError(
            root, 'no RESISC45 class folder (expected folders named like '
            f'{RESISC45_CLASSES[0]!r}, {RESISC45_CLASSES[1]!r}, ...)')
    if missing and not allow_missing_classes:
        raise ConversionError(
            osp.join(root, missing[0]),
            f'missing class folder {missing[0]!r} (all missing: {missing}; '
            '--allow-missing-classes converts the classes present)')
    files: Dict[str, List[str]] = OrderedDict()
    for name in RESISC45_CLASSES:
        if name in missing:
            continue
        class_dir = osp.join(root, name)
        names = sorted(e for e in os.listdir(class_dir) if not is_hidden(e))
        subdirs = [e for e in names if osp.isdir(osp.join(class_dir, e))]
        if subdirs:
            raise ConversionError(
                osp.join(class_dir, subdirs[0]),
                'unexpected sub-folder inside a class folder')
        if not names:
            raise ConversionError(class_dir, 'class folder has no images')
        files[name] = names
    return root, files


def convert_resisc45(raw_dir: PathLike,
                     out_dir: PathLike,
                     train_ratio: float = 0.2,
                     val_ratio: float = 0.1,
                     seed: int = 0,
                     link: bool = False,
                     overwrite: bool = False,
                     show_progress: bool = True,
                     allow_missing_classes: bool = False) -> ConversionSummary:
    """Split RESISC45 per class into train/val/test folders + mmcls lists.

    Every image is fully decoded once to reject corrupt files.

    Args:
        raw_dir (str): Official release (the 45 class folders).
        out_dir (str): Output folder, written atomically.
        train_ratio (float): Fraction of each class for training.
        val_ratio (float): Fraction of each class for validation.
        seed (int): Seed of the per-class split.
        link (bool): Hard-link instead of copying the images.
        overwrite (bool): Replace an existing ``out_dir`` on success.
        show_progress (bool): Show a tqdm progress bar.
        allow_missing_classes (bool): Convert the class folders present (a
            subset of the 45), keeping the official label indices; the
            summary lists the missing classes.

    Returns:
        ConversionSummary: image counts per split and class.

    Raises:
        ConversionError: missing (unless ``allow_missing_classes``),
            unknown or empty class folder, unreadable image, bad ratios or
            an existing ``out_dir``.
    """
    if not (0 <= train_ratio <= 1 and 0 <= val_ratio <= 1
            and train_ratio + val_ratio <= 1):
        raise ConversionError(
            os.fspath(raw_dir),
            f'bad split ratios train={train_ratio} val={val_ratio} (each in '
            '[0, 1], sum at most 1)')
    root, files = scan_resisc45(raw_dir, allow_missing_classes)
    # the classes present, with their official label indices
    present = [(label, name) for label, name in enumerate(RESISC45_CLASSES) if name in files]

    # Decide the split before touching the output.
    assignment: Dict[str, Dict[str, List[str]]] = {s: {} for s in SPLITS}
    for label, name in present:
        names = files[name]
        order = np.random.default_rng([seed, label]).permutation(len(names))
        shuffled = [names[i] for i in order]
        n_train, n_val, _ = split_counts(len(names), train_ratio, val_ratio)
        parts = (shuffled[:n_train], shuffled[n_train:n_train + n_val],
                 shuffled[n_train + n_val:])
        for split, part in zip(SPLITS, parts):
            assignment[split][name] = sorted(part)

    summary = ConversionSummary(
        dataset='NWPU-RESISC45', out_dir=osp.abspath(os.fspath(out_dir)))
    jobs: List[Tuple[str, str, str]] = [
        (split, name, fname) for split in SPLITS
        for _, name in present for fname in assignment[split][name]
    ]
    odd_sizes = n_linked = 0
    with atomic_output_dir(out_dir, overwrite) as tmp:
        for split in SPLITS:
            for _, name in present:
                os.makedirs(osp.join(tmp, split, name))
        for split, name, fname in progress(
                jobs, 'RESISC45', show_progress, total=len(jobs)):
            src = osp.join(root, name, fname)
            img = read_image_checked(src)
            if img.shape[:2] != (RESISC45_IMG_SIZE, RESISC45_IMG_SIZE):
                odd_sizes += 1
            linked = place_file(src, osp.join(tmp, split, name, fname), link)
            n_linked += linked
            link = link and linked  # after one failure, copy the rest
        os.makedirs(osp.join(tmp, 'meta'))
        for split in SPLITS:
            write_text_lines(
                osp.join(tmp, 'meta', f'{split}.txt'),
                (f'{name}/{fname} {label}'
                 for label, name in present
                 for fname in assignment[split][name]))
        write_text_lines(osp.join(tmp, 'meta', 'classes.txt'),
                         RESISC45_CLASSES)

    for split in SPLITS:
        summary.counts[split] = OrderedDict(
            (name, len(assignment[split][name])) for _, name in present)
        summary.totals[split] = sum(summary.counts[split].values())
    summary.files = [f'meta/{s}.txt' for s in SPLITS] + ['meta/classes.txt']
    summary.notes.append(
        f'split per class with seed={seed}, train_ratio={train_ratio}, '
        f'val_ratio={val_ratio}; {n_linked} of {len(jobs)} images '
        'hard-linked, the others copied')
    missing = [name for name in RESISC45_CLASSES if name not in files]
    if missing:
        summary.notes.append(
            f'subset: {len(present)} of the 45 classes converted, with their '
            f'official label indices; missing ({len(missing)}): '
            f'{" ".join(missing)}')
    if odd_sizes:
        summary.notes.append(
            f'{odd_sizes} images are not {RESISC45_IMG_SIZE}x'
            f'{RESISC45_IMG_SIZE} (kept as they are)')
    return summary


def read_split_list(path: PathLike) -> List[Tuple[str, int]]:
    """Read a ``meta/<split>.txt`` list back as ``[(rel_path, label)]``."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rel, label = line.rsplit(' ', 1)
                out.append((rel, int(label)))
    return out

