"""Checks of a training config, run when a run starts (before loaders are built).

Each mistake found here would otherwise surface minutes or hours into a run
(the first step of a task, the first evaluation), as a traceback from inside
an upstream constructor (a negative learning rate reaches torch's optimiser),
or never (a head with the wrong number of classes trains on shifted labels;
an lr step after ``max_iters`` never happens). :func:`check_config` collects
every problem and raises one :class:`ConfigError` that says what to change.
"""
import math
from typing import Any, Dict, List, Optional

from torch import nn

from ..datasets.builder import ITERATION_STRATEGIES
from ..datasets.tasks import TASKS, dataset_registry
from ..datasets.multitask_loader import parse_loader_cfgs

__all__ = ['ConfigError', 'check_config']


class ConfigError(ValueError):
    """A training config that cannot work; the message lists what to change."""


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
    cls = dataset_registry(task).get(ds_cfg.get('type', ''))
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
        if any(s < 0 for s in step):
            problems.append(f'{where}: lr steps are iterations, none can be negative')
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


def check_config(cfg, model: Optional[nn.Module] = None) -> None:
    """Check the parts of a training config that only fail late.

    Checked: the iteration strategy exists; every dataset of ``data.train`` /
    ``data.val`` has a known task that the model has a head for; the
    ``weighted_random`` weights match the training loaders; each head's
    ``num_classes`` equals the classes of the datasets of its task; the
    optimiser settings (type, lr > 0, weight decay >= 0, betas, paramwise
    multipliers, grad-clip ``max_norm`` > 0) and the schedule (iteration-based
    runner, ``max_iters`` > 0, lr policy, lr steps increasing and below
    ``max_iters``, warmup).

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

    _check_optimizer(cfg, problems)
    _check_schedule(cfg, problems)

    if problems:
        raise ConfigError('the config cannot train:\n  - ' + '\n  - '.join(problems))
