"""Checks of a training config, in one pass when a run starts (before anything is built).

Each mistake found here would otherwise surface minutes or hours into a run
(the first step of a task, the first evaluation), as a traceback from inside
an upstream constructor (a negative learning rate reaches torch's optimiser;
a missing annotation file reaches mmdet's COCO reader; a loader name in a
strategy reaches the strategy), or never (a head with the wrong number of
classes trains on shifted labels; an lr step after ``max_iters`` never
happens). :func:`check_config` collects every problem and raises one
:class:`ConfigError` listing them all, one line each (the key or file, what
is wrong, what to change); when there is none it returns the
:class:`RunSettings` that :func:`~rscotr.apis.train_model` runs with, so that
every setting is read and checked here, once.
"""
import dataclasses
import functools
import json
import math
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence

from torch import nn

from ..core.mixed_precision import MixedPrecision, parse_mixed_precision
from ..datasets.builder import ITERATION_STRATEGIES
from ..datasets.tasks import TASKS, dataset_classes, inner_dataset_cfg
from ..datasets.checks import check_dataset_files
from ..datasets.multitask_loader import parse_loader_cfgs
from ..utils.config import ConfigError

__all__ = ['ConfigError', 'RunSettings', 'check_config', 'optimizer_hook_cfg']


@dataclasses.dataclass
class RunSettings:
    """The settings of a training run, checked (returned by :func:`check_config`).

    Attributes:
        precision: The parsed ``mixed_precision``.
        optimizer_config: The optimizer hook config (:func:`optimizer_hook_cfg`).
        evaluation: Keyword arguments of the evaluation hook (``cfg.evaluation``
            checked); None when the run does not evaluate.
        max_consecutive_nonfinite: ``nonfinite_loss.max_consecutive`` (default 5).
    """
    precision: MixedPrecision
    optimizer_config: Dict
    evaluation: Optional[Dict]
    max_consecutive_nonfinite: int


def _dataset_class_names(ds_cfg: Dict, task: str) -> Optional[Sequence[str]]:
    """Classes of a dataset config (:func:`rscotr.datasets.tasks.dataset_classes`);
    None when its ``classes`` file does not exist (checked with the data files)."""
    classes = inner_dataset_cfg(ds_cfg).get('classes')
    if isinstance(classes, str) and not osp.isfile(classes):
        return None
    from ..datasets.checks import DataError
    try:
        names, _ = dataset_classes(task, ds_cfg)
    except (DataError, OSError):  # e.g. a class-folder root that is missing: the file
        return None               # checks report it
    return [str(c) for c in names] if names is not None else None


def _head_classes(cfg, model: Optional[nn.Module]) -> Dict[str, tuple]:
    """``{head name: (task, num_classes)}`` of the model's heads (built model, else
    ``cfg.model``; a task or class count that cannot be told is None)."""
    from ..models.multitask.rscotr import head_tasks_of_config, resolve_head_cfgs
    heads_cfg = dict((cfg.get('model') or {}).get('heads') or {})
    try:
        cfg_heads = resolve_head_cfgs(heads_cfg)
    except KeyError as err:
        raise ConfigError(f'the config cannot train:\n  - {err.args[0]}') from err
    if model is not None:
        model = getattr(model, 'module', model)
        return {name: (getattr(head, 'task', None),
                       getattr(head, 'num_classes', None)
                       or (cfg_heads.get(name) or {}).get('num_classes'))
                for name, head in getattr(model, 'heads', {}).items()}
    tasks = head_tasks_of_config(heads_cfg)
    return {name: (tasks[name], head.get('num_classes') if isinstance(head, dict) else None)
            for name, head in cfg_heads.items()}


#: Runners the co-training accepts (``train_model`` turns both into ``CoTrainRunner``).
RUNNER_TYPES = ('IterBasedRunner', 'CoTrainRunner')
#: Warmup kinds of mmcv's lr updater hooks.
WARMUP_TYPES = (None, 'constant', 'linear', 'exp')


def _number(value: Any) -> Optional[float]:
    """``value`` as a finite float, None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check_optimizer(cfg, problems: List[str]) -> None:
    """``optimizer`` (type, lr, weight decay, momentum, eps, betas, paramwise
    multipliers) and ``optimizer_config.grad_clip``."""
    from mmcv.runner.optimizer import OPTIMIZER_BUILDERS, OPTIMIZERS
    optimizer = cfg.get('optimizer')
    if not isinstance(optimizer, dict):
        problems.append('optimizer is missing: add e.g. optimizer=dict(type=\'AdamW\', '
                        'lr=5e-5, weight_decay=1e-4)')
        return
    kind = optimizer.get('type')
    if kind not in OPTIMIZERS.module_dict:
        problems.append(f'optimizer.type={kind!r} is not an optimiser; use one of torch\'s '
                        "(e.g. 'AdamW', 'SGD', 'Adam')")
    constructor = optimizer.get('constructor')
    if constructor is not None and constructor not in OPTIMIZER_BUILDERS.module_dict:
        problems.append(f'optimizer.constructor={constructor!r} is not an optimiser '
                        f'constructor; use one of {sorted(OPTIMIZER_BUILDERS.module_dict)}')
    if 'lr' in optimizer:
        lr = _number(optimizer['lr'])
        if lr is None or lr <= 0:
            problems.append(f'optimizer.lr={optimizer["lr"]!r}: the learning rate must be a '
                            'positive number (the reference uses 5e-5)')
    hints = {'weight_decay': '0 for none; the reference uses 1e-4',
             'momentum': '0 for none', 'eps': "torch's default is 1e-8"}
    for key, hint in hints.items():
        if optimizer.get(key) is not None:
            value = _number(optimizer[key])
            if value is None or value < 0:
                problems.append(f'optimizer.{key}={optimizer[key]!r}: must be a number >= 0 '
                                f'({hint})')
    if 'betas' in optimizer:
        betas = optimizer['betas']
        values = [_number(b) for b in betas] if isinstance(betas, (list, tuple)) else []
        if len(values) != 2 or any(b is None or not 0 <= b < 1 for b in values):
            problems.append(f'optimizer.betas={betas!r}: must be two numbers in [0, 1), '
                            'e.g. (0.9, 0.999)')
    custom = (optimizer.get('paramwise_cfg') or {}).get('custom_keys') or {}
    for name, mults in custom.items():
        for mult in ('lr_mult', 'decay_mult'):
            if mult in (mults or {}):
                value = _number(mults[mult])
                if value is None or value < 0:
                    problems.append(f'optimizer.paramwise_cfg.custom_keys[{name!r}].{mult}='
                                    f'{mults[mult]!r}: must be a number >= 0')
    grad_clip = (cfg.get('optimizer_config') or {}).get('grad_clip')
    if grad_clip is not None:
        max_norm = _number(grad_clip.get('max_norm'))
        if max_norm is None or max_norm <= 0:
            problems.append(f'optimizer_config.grad_clip.max_norm={grad_clip.get("max_norm")!r}:'
                            ' must be a positive number (the reference clips at 0.1), or set '
                            'optimizer_config.grad_clip=None for no clipping')
        norm_type = grad_clip.get('norm_type', 2)
        if norm_type not in ('inf', float('inf')) and not ((_number(norm_type) or 0) > 0):
            problems.append(f'optimizer_config.grad_clip.norm_type={norm_type!r}: must be a '
                            "positive number or 'inf' (2 for the L2 norm)")


def _check_schedule(cfg, problems: List[str]) -> None:
    """``runner`` (type, ``max_iters``) and ``lr_config`` (policy, steps, warmup)."""
    from mmcv.runner import HOOKS
    runner = cfg.get('runner')
    max_iters = None
    if not isinstance(runner, dict):
        problems.append('runner is missing: add runner=dict(type=\'IterBasedRunner\', '
                        'max_iters=N)')
    else:
        if runner.get('type') not in RUNNER_TYPES:
            problems.append(f'runner.type={runner.get("type")!r}: co-training is iteration '
                            f'based; use one of {list(RUNNER_TYPES)} with max_iters')
        value = runner.get('max_iters')
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f'runner.max_iters={value!r}: must be a positive whole number of '
                            'iterations')
        else:
            max_iters = value
    lr_config = cfg.get('lr_config')
    if lr_config is None:
        return
    policy = lr_config.get('policy')
    if not isinstance(policy, str):
        problems.append(f'lr_config.policy={policy!r}: name an lr policy, e.g. \'step\'')
        return
    hook = (policy.title() if policy == policy.lower() else policy) + 'LrUpdaterHook'
    if HOOKS.get(hook) is None:
        known = sorted(k[:-len('LrUpdaterHook')].lower() for k in HOOKS.module_dict
                       if k.endswith('LrUpdaterHook') and k != 'LrUpdaterHook')
        problems.append(f'lr_config.policy={policy!r} is not an lr policy; use one of {known}')
    if lr_config.get('by_epoch', True):
        problems.append('lr_config.by_epoch is True (mmcv\'s default): co-training counts '
                        'iterations; set lr_config.by_epoch=False')
    if policy == 'step':
        _check_steps(lr_config, max_iters, problems)
    warmup = lr_config.get('warmup')
    if warmup not in WARMUP_TYPES:
        problems.append(f'lr_config.warmup={warmup!r}: use one of {list(WARMUP_TYPES)}')
    elif warmup is not None:
        iters = lr_config.get('warmup_iters', 0)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters <= 0:
            problems.append(f'lr_config.warmup_iters={iters!r}: a warmup needs a positive '
                            'whole number of iterations')
        elif max_iters is not None and iters >= max_iters:
            problems.append(f'lr_config.warmup_iters={iters} is not below runner.max_iters='
                            f'{max_iters}: the run would end during warmup')
        ratio = _number(lr_config.get('warmup_ratio', 0.1))
        if ratio is None or not 0 < ratio <= 1:
            problems.append(f'lr_config.warmup_ratio={lr_config.get("warmup_ratio")!r}: must '
                            'be in (0, 1] (the warmup starts at lr x warmup_ratio)')


def _check_steps(lr_config: Dict, max_iters: Optional[int], problems: List[str]) -> None:
    step = lr_config.get('step')
    where = f'lr_config.step={step!r}'
    if isinstance(step, (list, tuple)):
        if not step or any(isinstance(s, bool) or not isinstance(s, int) for s in step):
            problems.append(f'{where}: give the iterations where the lr drops as whole '
                            'numbers, e.g. step=[240000, 285000]')
            return
        if any(s <= 0 for s in step):
            problems.append(f'{where}: lr steps are iterations, none can be negative or 0')
        if any(b <= a for a, b in zip(step, step[1:])):
            problems.append(f'{where}: lr steps must be strictly increasing, e.g. '
                            f'step={sorted(set(step))}')
        late = [s for s in step if max_iters is not None and s >= max_iters]
        if late:
            problems.append(f'{where}: step(s) {late} are not below runner.max_iters='
                            f'{max_iters}, so the lr never drops there; lower them or raise '
                            'max_iters')
    elif isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        problems.append(f'{where}: give a positive period or a list of iterations, e.g. '
                        'step=[240000, 285000]')
    gamma = lr_config.get('gamma', 0.1)
    if (_number(gamma) or 0) <= 0:
        problems.append(f'lr_config.gamma={gamma!r}: the lr factor at each step must be '
                        'positive (0.1 divides the lr by 10)')
    min_lr = lr_config.get('min_lr')
    if min_lr is not None and (_number(min_lr) is None or min_lr < 0):
        problems.append(f'lr_config.min_lr={min_lr!r}: must be a number >= 0')


#: Keys of ``cfg.evaluation`` (the evaluation hook's arguments; anything else is an error).
EVAL_KEYS = ('interval', 'start', 'save_best', 'skip_tasks', 'pre_eval', 'out_dir',
             'dump_metrics', 'log_per_class', 'tmpdir', 'gpu_collect', 'broadcast_bn_buffer')
#: Metric names of a task's evaluation (``<dataset>.<metric>`` keys of ``save_best``); per-class
#: values add ``.<class>``. Detection metrics depend on the evaluation protocol: not listed.
TASK_METRICS = {
    'cls': ('accuracy_top-1', 'accuracy_top-5', 'precision', 'recall', 'f1_score', 'support'),
    'seg': ('aAcc', 'mIoU', 'mAcc', 'mDice', 'mFscore', 'mPrecision', 'mRecall', 'IoU', 'Acc',
            'Dice', 'Fscore', 'Precision', 'Recall'),
}


def optimizer_hook_cfg(cfg) -> Dict:
    """The optimizer hook config of a training config.

    ``cfg.optimizer_config`` as an :class:`~rscotr.core.optimizer.RSCoTrOptimizerHook`
    (also when it names mmcv's ``OptimizerHook``, whose gradient zeroing is
    torch 2's), with the top-level ``mixed_precision`` setting.

    Raises:
        ConfigError: ``mixed_precision`` or ``optimizer_config.grads_to_none``
            is not valid, or mixed precision is asked of another hook type.
    """
    problems: List[str] = []
    hook = _optimizer_hook(cfg, problems)
    if problems:
        raise ConfigError('the config cannot train: ' + '; '.join(problems))
    return hook


def _optimizer_hook(cfg, problems: List[str]) -> Dict:
    hook = dict(cfg.get('optimizer_config') or dict(grad_clip=None))
    try:
        precision = parse_mixed_precision(cfg.get('mixed_precision'))
    except ValueError as err:
        problems.append(str(err))
        precision = MixedPrecision()
    if 'mixed_precision' in hook:
        problems.append('optimizer_config.mixed_precision is set by the run; use the top-level '
                        'mixed_precision key instead')
    if hook.get('type', 'OptimizerHook') == 'OptimizerHook':
        hook['type'] = 'RSCoTrOptimizerHook'
    if hook['type'] == 'RSCoTrOptimizerHook':
        if not isinstance(hook.get('grads_to_none', False), bool):
            problems.append(f'optimizer_config.grads_to_none={hook["grads_to_none"]!r} must be '
                            'False (the release: gradients zeroed) or True (torch 2: gradients '
                            'set to None)')
        hook['mixed_precision'] = precision
    elif precision.dtype is not None:
        problems.append(f'mixed_precision={precision.name!r} needs '
                        f"optimizer_config.type='RSCoTrOptimizerHook', not {hook['type']!r}")
    return hook


def _check_model(cfg, names: Sequence[str], problems: List[str]) -> None:
    """``model.task_weights`` name a head, a dataset (``names``) or a task, and are
    numbers >= 0 (weights of names without a head or dataset are ignored: single-task
    configs keep the base's weights)."""
    weights = (cfg.get('model') or {}).get('task_weights') or {}
    if not isinstance(weights, dict):
        problems.append(f'model.task_weights={weights!r}: give {{head or dataset: weight}}, '
                        'e.g. dict(seg=0.1)')
        return
    for task, weight in weights.items():
        if task not in TASKS and task not in names:
            problems.append(f'model.task_weights.{task}: {task!r} is not a task, head or '
                            f'dataset; use one of {sorted(set(TASKS) | set(names))}')
        value = _number(weight)
        if value is None or value < 0:
            problems.append(f'model.task_weights.{task}={weight!r}: must be a number >= 0')


def _pretrained_files(node: Any, where: str) -> List[tuple]:
    """``[(key, path)]`` of the ``init_cfg`` checkpoints (``type='Pretrained'``) of a model
    config."""
    found = []
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            found.append((f'{where}.checkpoint', node['checkpoint']))
        for key, value in node.items():
            found += _pretrained_files(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += _pretrained_files(value, f'{where}.{i}')
    return found


def _check_weight_files(cfg, task_pretrain: Optional[str], problems: List[str]) -> None:
    """Checkpoint files the run reads (``load_from``, ``resume_from``, task pretraining,
    ``init_cfg`` weights of the model) exist and are PyTorch files (read later, once)."""
    from .checkpoint import CheckpointError, check_checkpoint_file
    files = [('load_from', cfg.get('load_from')), ('resume_from', cfg.get('resume_from')),
             ('--load-task-pretrain', task_pretrain)]
    files += _pretrained_files(cfg.get('model'), 'model')
    for key, path in files:
        if not path or '://' in str(path):
            continue
        try:
            check_checkpoint_file(path)
        except CheckpointError as err:
            problems.append(f'{key}: {err}')


def _check_data(cfg, heads: Dict[str, Optional[int]], splits: Sequence[str], files: bool,
                problems: List[str]) -> Dict[str, List[Dict]]:
    """Datasets of ``data.train`` / ``data.val``: task, head, classes and, for ``splits``,
    their files. Returns ``{split: loader entries}``."""
    data = cfg.get('data') or {}
    found: Dict[str, List[Dict]] = {}
    for split in ('train', 'val'):
        if not data.get(split):
            if split == 'train':
                problems.append('data.train is empty: configure at least one dataset')
            continue
        try:
            entries = parse_loader_cfgs(data[split])
        except (KeyError, ValueError, TypeError) as err:
            problems.append(f'data.{split}: {err.args[0] if err.args else err}')
            continue
        found[split] = entries
        for entry in entries:
            name, task = entry['name'], entry['task']
            where = f'data.{split}.{name}'
            if task not in TASKS:
                problems.append(f'{where}.task={task!r} is not a task; use one of {list(TASKS)}')
                continue
            head = entry.get('head', task)
            if head not in heads:
                problems.append(f'{where} feeds the head {head!r} but the model has no such '
                                f'head (heads: {sorted(heads)}): add model.heads.{head}, set '
                                f'{where}.head or remove the dataset with '
                                f'data=dict({split}=dict({name}=None))')
                continue
            head_task, n_head = heads[head]
            if head_task is not None and head_task != task:
                problems.append(f'{where} is a {task!r} dataset but model.heads.{head} is a '
                                f'{head_task!r} head: set {where}.head to a {task!r} head')
                continue
            ds_cfg = dict(entry['dataset'])
            file_problems = (check_dataset_files(ds_cfg, task, f'{where}.dataset')
                             if files and split in splits else [])
            problems += file_problems
            names = _dataset_class_names(ds_cfg, task)
            if names is not None and n_head is not None and len(names) != n_head:
                problems.append(f'{where}: the dataset has {len(names)} classes but the head '
                                f'{head!r} has num_classes={n_head}: set '
                                f'model.heads.{head}.num_classes={len(names)} (or the '
                                "dataset's classes)")
            elif names is not None and files and split in splits and not file_problems:
                _check_annotation_classes(ds_cfg, task, names, f'{where}.dataset', problems)
    return found


#: Annotation files larger than this are not read by the checks (their classes are
#: checked when the dataset is built).
_MAX_ANN_BYTES = 64 << 20


@functools.lru_cache(maxsize=16)
def _coco_categories(path: str, mtime_ns: int, size: int) -> Any:
    """The ``categories`` of a COCO json, read once per file version and process
    (``tools/train.py`` and ``train_model`` both check; a DIOR-size json takes 0.5 s)."""
    with open(path, encoding='utf-8') as f:
        return json.load(f).get('categories')


def _check_annotation_classes(ds_cfg: Dict, task: str, names: Sequence[str], where: str,
                              problems: List[str]) -> None:
    """The classes of an annotation file agree with the dataset's: COCO json
    ``categories`` hold every class (mmdet drops the others' boxes); the labels of
    an mmcls list file (``<file> <label>`` lines) are class indices."""
    while ds_cfg.get('dataset') is not None and ds_cfg.get('ann_file') is None:
        ds_cfg = ds_cfg['dataset']
    ann = ds_cfg.get('ann_file')
    if not isinstance(ann, str):
        return
    root = ds_cfg.get('data_root') if task != 'cls' else None
    path = osp.join(root, ann) if root and not osp.isabs(ann) else ann
    if not osp.isfile(path) or os.path.getsize(path) > _MAX_ANN_BYTES:
        return
    if path.endswith('.json') and task == 'det':
        try:
            stat = os.stat(path)
            categories = _coco_categories(path, stat.st_mtime_ns, stat.st_size)
        except (ValueError, OSError, AttributeError) as err:
            problems.append(f'{where}.ann_file: {path}: not a COCO annotation file '
                            f'({type(err).__name__}: {str(err).splitlines()[0]}); convert the '
                            'data again (README: Preparing the real datasets)')
            return
        have = {str(c.get('name')) for c in categories or [] if isinstance(c, dict)}
        missing = [c for c in names if c not in have]
        if missing:
            problems.append(f'{where}.ann_file: {path}: no categories {missing[:5]}'
                            f'{" ..." if len(missing) > 5 else ""} of the dataset\'s '
                            f'{len(names)} classes (it has {sorted(have)[:5]}...); convert the '
                            "data again or set the dataset's classes")
    elif task == 'cls' and not path.endswith('.json'):
        with open(path, encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                parts = line.rsplit(None, 1)
                if len(parts) == 2 and parts[1].lstrip('-').isdigit() and not (
                        0 <= int(parts[1]) < len(names)):
                    problems.append(f'{where}.ann_file: {path}:{number}: label {parts[1]} is '
                                    f'not a class index (0..{len(names) - 1}); convert the '
                                    "data again or set the dataset's classes")
                    break


def _check_strategy(cfg, train_names: List[str], problems: List[str]) -> None:
    """The iteration strategy exists and every loader it names is a training loader."""
    strategy = dict(cfg.get('iteration_strategy') or dict(type='round_robin'))
    kind = strategy.get('type')
    if kind not in ITERATION_STRATEGIES.module_dict:
        problems.append(f'iteration_strategy.type={kind!r} is not a strategy; use one of '
                        f'{sorted(ITERATION_STRATEGIES.module_dict)}')
        return
    if not train_names:
        return
    if kind == 'weighted_random':
        p = strategy.get('p')
        if isinstance(p, dict):
            unknown = [k for k in p if isinstance(k, str) and k not in train_names]
            bad_idx = [k for k in p if isinstance(k, int) and not 0 <= k < len(train_names)]
            if unknown or bad_idx:
                problems.append(f'iteration_strategy.p names {unknown + bad_idx}, which are '
                                f'not training loaders; the loaders are {train_names}')
                return
        elif p is not None and len(p) != len(train_names):
            problems.append(f'iteration_strategy.p has {len(p)} weights for '
                            f'{len(train_names)} training loaders {train_names}: give one '
                            'weight per loader, in this order, or a {name: weight} dict')
            return
    # the strategy checks its own arguments (sequence, idx, p): built on stand-in sizes
    from ..datasets.builder import build_iteration_strategy
    n = len(train_names)
    try:
        build_iteration_strategy(strategy, default_args=dict(
            num_loaders=n, names=train_names, dataset_sizes=[1] * n, epoch_lengths=[1] * n))
    except (KeyError, ValueError, TypeError, IndexError) as err:
        # mmcv's builder prefixes the class name; a KeyError's text is quoted
        text = str(err.args[0] if err.args else err)
        text = re.sub(r'^\w+IterationStrategy: ', '', text).strip('"\'')
        problems.append(f'iteration_strategy ({kind}): {text}'
                        + ('' if 'loaders are' in text else
                           f'; the training loaders are {train_names}'))


def _check_evaluation(cfg, val_entries: Optional[List[Dict]], validate: bool,
                      problems: List[str]) -> Optional[Dict]:
    """``evaluation`` (the hook's arguments) and its ``save_best`` keys; None: no evaluation."""
    if not validate or not val_entries:
        return None
    from ..core.evaluation.metrics import parse_score_weights
    evaluation = dict(cfg.get('evaluation') or {})
    unknown = sorted(set(evaluation) - set(EVAL_KEYS))
    if unknown:
        problems.append(f'evaluation has unknown keys {unknown}: co-training evaluates every '
                        f'evaluation.interval iterations; the keys are {list(EVAL_KEYS)}')
    interval = evaluation.get('interval', 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
        problems.append(f'evaluation.interval={interval!r}: must be a positive whole number '
                        'of iterations')
    start = evaluation.get('start')
    if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                              or start < 0):
        problems.append(f'evaluation.start={start!r}: must be None or an iteration >= 0')
    skip = evaluation.get('skip_tasks') or ()
    tasks = {e['name']: e['task'] for e in val_entries}
    bad = [t for t in skip if t not in TASKS and t not in tasks]
    if bad:
        problems.append(f'evaluation.skip_tasks names {bad}, which are neither tasks nor '
                        f'validation datasets; use {list(TASKS)} or {list(tasks)}')
    try:
        weights = parse_score_weights(evaluation.get('save_best'))
    except (TypeError, ValueError) as err:
        problems.append(f'evaluation.save_best: {err}')
        weights = None
    for key in weights or {}:
        dataset, _, metric = key.partition('.')
        if dataset not in tasks:
            problems.append(f'evaluation.save_best key {key!r}: no validation dataset '
                            f'{dataset!r}; keys are <dataset>.<metric> with a dataset of '
                            f'data.val {list(tasks)}')
            continue
        known = TASK_METRICS.get(tasks[dataset])
        if known is not None and metric.split('.')[0] not in known:
            problems.append(f'evaluation.save_best key {key!r}: {tasks[dataset]} evaluation '
                            f'gives no metric {metric!r}; use one of {list(known)[:7]}')
    if weights and all(tasks.get(k.split('.')[0]) in skip or k.split('.')[0] in skip
                       for k in weights):
        problems.append(f'evaluation.save_best keys {list(weights)} all belong to tasks of '
                        f'evaluation.skip_tasks {list(skip)}')
    return evaluation


def _check_nonfinite(cfg, problems: List[str]) -> int:
    nonfinite = dict(cfg.get('nonfinite_loss') or {})
    unknown = sorted(set(nonfinite) - {'max_consecutive'})
    if unknown:
        problems.append(f'nonfinite_loss has unknown keys {unknown}; the only key is '
                        'max_consecutive')
    value = nonfinite.get('max_consecutive', 5)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f'nonfinite_loss.max_consecutive={value!r}: must be a whole number >= 1 '
                        '(bad steps in a row before the run stops)')
        return 5
    return value


def check_config(cfg, model: Optional[nn.Module] = None, validate: bool = True,
                 files: bool = True, task_pretrain: Optional[str] = None) -> RunSettings:
    """Check a training config in one pass and return the settings the run uses.

    Checked, every problem collected:

    - datasets: each dataset of ``data.train`` / ``data.val`` has a known task
      that the model has a head for; each head's ``num_classes`` equals the
      classes of the datasets of its task; with ``files``, the folders and
      annotation files of the training datasets (and of the validation
      datasets when the run evaluates) exist, can be read and are not empty,
      and the classes of COCO / list annotation files agree with the dataset's;
    - the iteration strategy exists and every loader it names (``sequence``,
      ``idx``, ``p``) is a training loader;
    - ``model.task_weights`` name heads; with ``files``, ``load_from``,
      ``resume_from``, ``task_pretrain`` and local ``init_cfg`` checkpoints
      exist and are PyTorch files (whether their weights fit is checked when
      they are read, before the loaders are built);
    - the optimiser (type, lr > 0, weight decay >= 0, betas, paramwise
      multipliers, grad-clip ``max_norm`` > 0), ``mixed_precision`` and the
      optimizer hook, the schedule (iteration-based runner, ``max_iters`` > 0,
      lr policy, lr steps increasing and below ``max_iters``, warmup);
    - ``evaluation`` (known keys, interval, ``skip_tasks``, ``save_best`` keys
      naming a validation dataset and a metric of its task) and
      ``nonfinite_loss``.

    Args:
        cfg: The config (``mmcv.Config``).
        model: The built model (its heads are checked); None: ``cfg.model``.
        validate: The run evaluates on ``data.val`` (its files are checked and
            :attr:`RunSettings.evaluation` is set).
        files: Check data and checkpoint files (False: the config alone).
        task_pretrain: ``--load-task-pretrain`` checkpoint, if any.

    Returns:
        RunSettings: The checked settings.

    Raises:
        ConfigError: Listing every problem found and what to change, one per line.
    """
    problems: List[str] = []
    heads = _head_classes(cfg, model)
    splits = ('train', 'val') if validate else ('train', )
    entries = _check_data(cfg, heads, splits, files, problems)
    _check_model(cfg, list(heads) + [e['name'] for es in entries.values() for e in es],
                 problems)
    _check_strategy(cfg, [e['name'] for e in entries.get('train', [])], problems)
    _check_optimizer(cfg, problems)
    _check_schedule(cfg, problems)
    optimizer_config = _optimizer_hook(cfg, problems)
    evaluation = _check_evaluation(cfg, entries.get('val'), validate, problems)
    max_nonfinite = _check_nonfinite(cfg, problems)
    if files:
        _check_weight_files(cfg, task_pretrain, problems)
    if problems:
        raise ConfigError('the config cannot train:\n  - ' + '\n  - '.join(problems))
    return RunSettings(precision=optimizer_config.get('mixed_precision') or MixedPrecision(),
                       optimizer_config=optimizer_config, evaluation=evaluation,
                       max_consecutive_nonfinite=max_nonfinite)
