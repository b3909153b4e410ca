"""Pointing the datasets of a config at data prepared by this project's converters.

The configs name their data where the README puts it (``data/resisc45``,
``data/DIOR``, ...). Tests, the benchmark and the demo run the same configs
on data somewhere else (a temporary folder of demo data): :func:`point_data_at`
rewrites every dataset of ``data.train`` / ``data.val`` / ``data.test`` in
place, keeping each dataset's split, to::

    RESISC45Dataset      data_prefix=<prepared>/resisc45/<split>,
                         ann_file=<prepared>/resisc45/meta/<split>.txt
    DIORDataset          ann_file=<prepared>/dior/annotations/dior_<split>.json,
                         img_prefix=<raw>/DIOR/
    PotsdamIndexDataset  data_root=<prepared>/potsdam

(the layouts written by :mod:`rscotr.datasets.converters`; DIOR images are
read from the raw release), and the datasets in the standard formats
(:mod:`rscotr.datasets.standard`) to the extra demo data that
``make_demo_data(..., extra=True)`` writes next to the raw releases, and to
the prepared Potsdam, whose layout is that of image and mask folders::

    ClassFolderDataset   data_prefix=<raw>/extra_cls/images,
                         ann_file=<raw>/extra_cls/meta/<split>.txt
    CocoJsonDataset      ann_file=<raw>/extra_det/annotations/<split>.json,
                         img_prefix=<raw>/extra_det/images/
    MaskFolderDataset    data_root=<prepared>/potsdam (img_dir, ann_dir kept)

Upstream wrappers (``RepeatDataset``, ...) are looked through.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

from .demo_data import DATASET_DIRS

__all__ = ['split_of', 'point_dataset_at', 'point_data_at']

#: Split names recognised at the end of a file or folder name, longest first.
SPLITS = ('trainval', 'train', 'val', 'test')


def split_of(path: str) -> str:
    """The split a dataset path names: ``meta/val.txt`` -> ``'val'``,
    ``dior_trainval.json`` -> ``'trainval'``.

    Raises:
        ValueError: The name ends in no split.
    """
    name = osp.splitext(osp.basename(path.rstrip('/')))[0]
    for split in SPLITS:
        if name == split or name.endswith('_' + split):
            return split
    raise ValueError(f'cannot tell the split of {path}')


def point_dataset_at(dataset: Dict, raw: str, prepared: str) -> None:
    """Point one dataset config at the data under ``raw`` / ``prepared`` (in place).

    Args:
        dataset: A ``RESISC45Dataset``, ``DIORDataset``,
            ``PotsdamIndexDataset``, ``ClassFolderDataset``,
            ``CocoJsonDataset`` or ``MaskFolderDataset`` config, or a wrapper
            holding one in ``dataset``.
        raw: Folder of the raw releases (``DIOR/`` is read from there) and
            of the extra demo data (``extra_cls/``, ``extra_det/``).
        prepared: Folder of the converters' outputs (``resisc45/``,
            ``dior/``, ``potsdam/``).

    Raises:
        KeyError: Another dataset type.
    """
    kind = dataset['type']
    if kind == 'RESISC45Dataset':
        split, root = split_of(dataset['ann_file']), osp.join(prepared, 'resisc45')
        dataset['data_prefix'] = osp.join(root, split)
        dataset['ann_file'] = osp.join(root, 'meta', f'{split}.txt')
    elif kind == 'DIORDataset':
        split = split_of(dataset['ann_file'])
        dataset['ann_file'] = osp.join(prepared, 'dior', 'annotations', f'dior_{split}.json')
        dataset['img_prefix'] = osp.join(raw, 'DIOR') + '/'
    elif kind in ('PotsdamIndexDataset', 'MaskFolderDataset'):
        dataset['data_root'] = osp.join(prepared, 'potsdam')
    elif kind == 'ClassFolderDataset':
        root = osp.join(raw, DATASET_DIRS['extra_cls'])
        dataset['data_prefix'] = osp.join(root, 'images')
        if dataset.get('ann_file'):
            dataset['ann_file'] = osp.join(root, 'meta', f'{split_of(dataset["ann_file"])}.txt')
    elif kind == 'CocoJsonDataset':
        root = osp.join(raw, DATASET_DIRS['extra_det'])
        split = split_of(dataset['ann_file'])
        dataset['ann_file'] = osp.join(root, 'annotations', f'{split}.json')
        dataset['img_prefix'] = osp.join(root, 'images') + '/'
    elif 'dataset' in dataset:  # upstream wrappers (RepeatDataset, ...)
        point_dataset_at(dataset['dataset'], raw, prepared)
    else:
        raise KeyError(f'do not know where the data of a {kind} lives')


def point_data_at(data: Dict, raw: str, prepared: str,
                  splits: Sequence[str] = ('train', 'val', 'test'),
                  workers: Optional[int] = None) -> Dict:
    """Point every dataset of a config's ``data`` section at ``raw`` / ``prepared``.

    Args:
        data: ``cfg.data`` (``{split: {loader name: entry or None}}``), changed in place.
        raw: Folder of the raw releases.
        prepared: Folder of the converters' outputs.
        splits: The splits of ``data`` to change.
        workers: Also set every entry's ``workers_per_gpu`` (None: unchanged).

    Returns:
        dict: ``data``.
    """
    for split in splits:
        for entry in (data.get(split) or {}).values():
            if entry is None:
                continue
            point_dataset_at(entry['dataset'], raw, prepared)
            if workers is not None:
                entry['workers_per_gpu'] = workers
    return data
