"""Checks of a training config, run when a run starts (before loaders are built).

Each mistake found here would otherwise surface minutes or hours into a run
(the first step of a task, the first evaluation) or never (a head with the
wrong number of classes trains on shifted labels). :func:`check_config`
collects every problem and raises one :class:`ConfigError` that says what to
change.
"""
from typing import Dict, List, Optional

from torch import nn

from ..datasets.builder import ITERATION_STRATEGIES, TASKS
from ..datasets.multitask_loader import parse_loader_cfgs

__all__ = ['ConfigError', 'check_config']


class ConfigError(ValueError):
    """A training config that cannot work; the message lists what to change."""


def _dataset_registry(task: str):
    from ..datasets.builder import _upstream_builders
    _upstream_builders()  # registers our datasets in the upstream registries
    if task == 'cls':
        from mmcls.datasets import DATASETS
    elif task == 'det':
        from mmdet.datasets import DATASETS
    else:
        from mmseg.datasets import DATASETS
    return DATASETS


def _num_dataset_classes(ds_cfg: Dict, task: str) -> Optional[int]:
    """Classes of a dataset config: its ``classes`` override, else the dataset class's
    ``classes_of_config(cfg)`` (e.g. the Potsdam ``protocol``) or ``CLASSES``."""
    while 'dataset' in ds_cfg and 'classes' not in ds_cfg:  # RepeatDataset & co.
        ds_cfg = ds_cfg['dataset']
    classes = ds_cfg.get('classes')
    if isinstance(classes, (list, tuple)):
        return len(classes)
    if classes is not None:  # a file name: read by the dataset
        return None
    cls = _dataset_registry(task).get(ds_cfg.get('type', ''))
    classes_of = getattr(cls, 'classes_of_config', None)  # classes set by an option
    names = classes_of(ds_cfg)[0] if classes_of is not None else getattr(cls, 'CLASSES', None)
    return len(names) if names is not None else None


def _head_classes(cfg, model: Optional[nn.Module]) -> Dict[str, Optional[int]]:
    """``{task: num_classes}`` of the model's heads (built model, else ``cfg.model``)."""
    cfg_heads = (cfg.get('model') or {}).get('heads') or {}
    from_cfg = {task: (head or {}).get('num_classes') for task, head in cfg_heads.items()
                if head is not None}
    if model is None:
        return from_cfg
    model = getattr(model, 'module', model)
    return {task: getattr(head, 'num_classes', None) or from_cfg.get(task)
            for task, head in getattr(model, 'heads', {}).items()}


def check_config(cfg, model: Optional[nn.Module] = None) -> None:
    """Check the parts of a training config that only fail late.

    Checked: the iteration strategy exists; every dataset of ``data.train`` /
    ``data.val`` has a known task that the model has a head for; the
    ``weighted_random`` weights match the training loaders; each head's
    ``num_classes`` equals the classes of the datasets of its task.

    Args:
        cfg: The config (``mmcv.Config``).
        model: The built model (its heads are checked); None: ``cfg.model``.

    Raises:
        ConfigError: Listing every problem found and what to change.
    """
    problems: List[str] = []
    heads = _head_classes(cfg, model)

    strategy = dict(cfg.get('iteration_strategy') or dict(type='round_robin'))
    kind = strategy.get('type')
    if kind not in ITERATION_STRATEGIES.module_dict:
        problems.append(f'iteration_strategy.type={kind!r} is not a strategy; use one of '
                        f'{sorted(ITERATION_STRATEGIES.module_dict)}')

    data = cfg.get('data') or {}
    train_names: List[str] = []
    for split in ('train', 'val'):
        if not data.get(split):
            if split == 'train':
                problems.append('data.train is empty: configure at least one dataset')
            continue
        try:
            entries = parse_loader_cfgs(data[split])
        except (KeyError, ValueError) as err:
            problems.append(f'data.{split}: {err.args[0] if err.args else err}')
            continue
        for entry in entries:
            name, task = entry['name'], entry['task']
            if split == 'train':
                train_names.append(name)
            where = f'data.{split}.{name}'
            if task not in TASKS:
                problems.append(f'{where}.task={task!r} is not a task; use one of {list(TASKS)}')
                continue
            if task not in heads:
                problems.append(f'{where} has task {task!r} but the model has no {task!r} '
                                f'head (heads: {sorted(heads)}): add model.heads.{task} or '
                                f'remove the dataset with data=dict({split}=dict({name}=None))')
                continue
            n_data = _num_dataset_classes(dict(entry['dataset']), task)
            n_head = heads[task]
            if n_data is not None and n_head is not None and n_data != n_head:
                problems.append(f'{where}: the dataset has {n_data} classes but the {task!r} '
                                f'head has num_classes={n_head}: set '
                                f'model.heads.{task}.num_classes={n_data} (or the dataset\'s '
                                'classes)')

    if kind == 'weighted_random' and train_names:
        p = strategy.get('p')
        if isinstance(p, dict):
            unknown = [k for k in p if isinstance(k, str) and k not in train_names]
            bad_idx = [k for k in p if isinstance(k, int) and not 0 <= k < len(train_names)]
            if unknown or bad_idx:
                problems.append(f'iteration_strategy.p names {unknown + bad_idx}, which are '
                                f'not training loaders; the loaders are {train_names}')
        elif p is not None and len(p) != len(train_names):
            problems.append(f'iteration_strategy.p has {len(p)} weights for '
                            f'{len(train_names)} training loaders {train_names}: give one '
                            'weight per loader, in this order, or a {name: weight} dict')

    if problems:
        raise ConfigError('the config cannot train:\n  - ' + '\n  - '.join(problems))
