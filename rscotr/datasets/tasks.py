"""The tasks of RSCoTr and what each task means for datasets: one place.

A *task* is the kind of output a head produces and a dataset is labelled
for: ``'cls'`` (scene classification), ``'det'`` (horizontal-box object
detection), ``'seg'`` (semantic segmentation). Each task's datasets live in
one upstream library (mmcls, mmdet, mmseg): their registry, their builder and
their pipelines. This module holds

- :data:`TASKS` and :func:`check_task`;
- :data:`TASK_LIBRARIES` and :func:`dataset_registry` / :func:`build_task_dataset`
  (the upstream registry and builder of a task, with our datasets registered);
- :data:`PAPER_DATASETS` (the paper's dataset of each task);
- :data:`DATASET_WRAPPERS` and :func:`unwrap_dataset_cfg` (the dataset
  configs inside ``RepeatDataset``, ``ConcatDataset``, ...);
- :func:`dataset_classes` (the class names and palette a dataset config
  gives: its ``classes`` option, else its dataset type's option-dependent
  classes, else the type's ``CLASSES``).

It imports the upstream libraries only when a function needs them.
"""
import importlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ['TASKS', 'TASK_LIBRARIES', 'PAPER_DATASETS', 'DATASET_WRAPPERS', 'check_task',
           'dataset_registry', 'build_task_dataset', 'unwrap_dataset_cfg', 'inner_dataset_cfg', 'dataset_classes']

#: The task types, in the order the tools list them.
TASKS: Tuple[str, ...] = ('cls', 'det', 'seg')

#: The upstream library of each task's datasets and pipelines.
TASK_LIBRARIES: Dict[str, str] = {'cls': 'mmcls', 'det': 'mmdet', 'seg': 'mmseg'}

#: The datasets of the paper, per task (dataset configs without files), whose
#: classes name a head's outputs when nothing else does; Potsdam under the
#: 5-class protocol, then the released one (clutter as a 6th class).
PAPER_DATASETS: Dict[str, Tuple[Dict, ...]] = {
    'cls': (dict(type='RESISC45Dataset'), ),
    'det': (dict(type='DIORDataset'), ),
    'seg': (dict(type='PotsdamIndexDataset', protocol='5class'),
            dict(type='PotsdamIndexDataset', protocol='release')),
}

#: Upstream dataset wrappers: their classes and files are those of the wrapped
#: config (``dataset``) or configs (``datasets``).
DATASET_WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset', 'ConcatDataset',
                    'MultiImageMixDataset')


def check_task(task: str, where: str = 'task') -> str:
    """``task`` if it is one of :data:`TASKS`.

    Raises:
        KeyError: Another name; the message names ``where`` and the tasks.
    """
    if task not in TASKS:
        raise KeyError(f'{where}: unknown task {task!r}; tasks are {list(TASKS)}')
    return task


def _library(task: str):
    check_task(task)
    from . import dior, potsdam, resisc45, standard  # noqa: F401  (register our datasets upstream)
    return importlib.import_module(f'{TASK_LIBRARIES[task]}.datasets')


def dataset_registry(task: str):
    """The upstream ``DATASETS`` registry of ``task`` (ours registered in it)."""
    return _library(task).DATASETS


def build_task_dataset(cfg: Dict, task: str, default_args: Optional[Dict] = None):
    """Build a dataset config with the upstream builder of ``task``.

    Args:
        cfg: Dataset config in the upstream convention (its ``type`` is looked
            up in mmcls', mmdet's or mmseg's ``DATASETS``, its pipeline in that
            library's ``PIPELINES``).
        task: One of :data:`TASKS`.
        default_args: Passed to the upstream builder.
    """
    return _library(task).build_dataset(cfg, default_args)


def unwrap_dataset_cfg(cfg: Dict, where: str = 'dataset') -> List[Tuple[Dict, str]]:
    """The dataset configs inside upstream wrappers, each with its config key.

    ``RepeatDataset(dataset=A)`` gives ``[(A, '<where>.dataset')]``,
    ``ConcatDataset(datasets=[A, B])`` gives A and B; any other config is
    returned as it is.
    """
    if cfg.get('type') in DATASET_WRAPPERS:
        inner = cfg.get('datasets')
        if isinstance(inner, (list, tuple)):
            return [item for i, d in enumerate(inner) if isinstance(d, dict)
                    for item in unwrap_dataset_cfg(d, f'{where}.datasets.{i}')]
        if isinstance(cfg.get('dataset'), dict):
            return unwrap_dataset_cfg(cfg['dataset'], f'{where}.dataset')
    return [(cfg, where)]


def inner_dataset_cfg(cfg: Dict) -> Dict:
    """The first dataset config inside upstream wrappers (``cfg`` itself if none)."""
    inner = unwrap_dataset_cfg(cfg)
    return inner[0][0] if inner else cfg


def dataset_classes(task: str, cfg: Dict) -> Tuple[Optional[Sequence[str]], Any]:
    """The class names and palette a dataset config gives, without building it.

    In order: the config's ``classes`` (a list, or a file of one name per
    line), else the dataset type's ``classes_of_config(cfg)`` (classes set by
    an option, e.g. the Potsdam ``protocol``), else the type's ``CLASSES``.
    The palette: the config's ``palette``, else the one of
    ``classes_of_config`` (also when the config gives the classes), else the
    type's ``PALETTE``. Wrappers are looked
    through (the first wrapped config).

    Returns:
        tuple: ``(names or None, palette or None)``.
    """
    cfg = inner_dataset_cfg(cfg)
    dataset_type = dataset_registry(task).get(cfg.get('type', ''))
    classes = cfg.get('classes')
    if isinstance(classes, str):
        import mmcv
        classes = mmcv.list_from_file(classes)
    palette = cfg.get('palette')
    classes_of = getattr(dataset_type, 'classes_of_config', None)
    if (classes is None or palette is None) and classes_of is not None:
        option_classes, option_palette = classes_of(cfg)
        classes = option_classes if classes is None else classes
        palette = option_palette if palette is None else palette
    if classes is None and dataset_type is not None:
        classes = getattr(dataset_type, 'CLASSES', None)
    if palette is None and dataset_type is not None:
        palette = getattr(dataset_type, 'PALETTE', None)
    return classes, palette
