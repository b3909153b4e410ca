"""Datasets of the three tasks, their loaders and the co-training loader.

The submodules are imported on first use (PEP 562), so that light modules of
this package (``meta``, ``demo_data``, ``converters``) do not pay for
importing mmcls, mmdet and mmseg. :func:`build_task_dataset` (``tasks``) registers
:class:`RESISC45Dataset` (mmcls), :class:`DIORDataset` (mmdet) and
:class:`PotsdamIndexDataset` (mmseg), and the standard formats of ``standard``
(:class:`ClassFolderDataset`, :class:`CocoJsonDataset`, :class:`MaskFolderDataset`),
in the upstream registries; import ``rscotr.datasets.dior`` (etc.) to use them
with an upstream builder directly.
"""
import importlib

_EXPORTS = {
    'ITERATION_STRATEGIES': 'builder',
    'build_iteration_strategy': 'builder',
    'build_task_dataset': 'tasks',
    'TASKS': 'tasks',
    'build_task_dataloader': 'builder',
    'RESISC45Dataset': 'resisc45',
    'DIORDataset': 'dior',
    'PotsdamIndexDataset': 'potsdam',
    'ClassFolderDataset': 'standard',
    'CocoJsonDataset': 'standard',
    'MaskFolderDataset': 'standard',
    'BaseIterationStrategy': 'iteration_strategies',
    'ConstantIterationStrategy': 'iteration_strategies',
    'RoundRobinIterationStrategy': 'iteration_strategies',
    'RepeatedSequenceIterationStrategy': 'iteration_strategies',
    'RandomIterationStrategy': 'iteration_strategies',
    'WeightedRandomIterationStrategy': 'iteration_strategies',
    'SizeProportionalIterationStrategy': 'iteration_strategies',
    'TaskLoader': 'multitask_loader',
    'MultiTaskLoader': 'multitask_loader',
    'build_task_loaders': 'multitask_loader',
    'build_multitask_loader': 'multitask_loader',
    'parse_loader_cfgs': 'multitask_loader',
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f'.{_EXPORTS[name]}', __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(list(globals()) + __all__)
