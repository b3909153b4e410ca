"""The effective batch of a co-training run, and the lr scaled by it (``auto_scale_lr``).

Every step trains one dataset's batch on every process, so the effective batch
of dataset ``d`` is ``data.train.<d>.samples_per_gpu x processes``. The
release trained on one GPU (its configs are ``1x1``): 16 RESISC45, 1 DIOR and
2 Potsdam images per step. The same config on 8 GPUs keeps the per-GPU batches
and the lr, i.e. 8x the effective batch at the same lr. :func:`train_model
<rscotr.apis.train_model>` logs the effective batch of every dataset when a
run starts.

``auto_scale_lr`` (mmdet 2.x's option; off by default) scales the lr
linearly with the total batch::

    auto_scale_lr = dict(enable=False, base_batch_size=dict(resisc=16, dior=1, potsdam=2))

- the **total batch** of a co-training run is the sum over its training
  datasets of their effective batches (one step of each dataset: 19 x
  processes in the reference);
- ``base_batch_size`` is the total batch the config's lr was set for: an int,
  or ``{dataset name: batch}`` summed over the datasets the run trains (a
  derived config that drops a dataset drops its share: the single-task DIOR
  config's base is then 1);
- with ``enable=True`` (or ``tools/train.py --auto-scale-lr``) the optimizer
  is built with ``lr x total / base_batch_size`` (every parameter group's lr
  multipliers apply on top); the config itself is not changed.

The factor is one number for all tasks: when only one dataset's batch
changes, the others' steps get the same factor.
"""
import copy
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

from ..datasets.multitask_loader import parse_loader_cfgs
from ..utils.logger import get_root_logger
from .checks import ConfigError

__all__ = ['effective_batches', 'check_auto_scale_lr', 'scaled_optimizer_cfg']

_KEYS = {'enable', 'base_batch_size'}


def effective_batches(train_data: Mapping, world_size: int) -> 'OrderedDict[str, Tuple[int, int]]':
    """``{dataset name: (samples per process, effective batch)}`` of ``data.train``.

    Args:
        train_data: ``cfg.data.train`` (``{name: entry}``; None entries skipped).
        world_size: Processes (GPUs) of the run.
    """
    batches = OrderedDict()
    for entry in parse_loader_cfgs(train_data):
        per_gpu = int(entry.get('samples_per_gpu', 1))
        batches[entry['name']] = (per_gpu, per_gpu * int(world_size))
    return batches


def _base_batch(base, names) -> Optional[int]:
    """The base total batch of the training datasets ``names`` (None: not set).

    Raises:
        ConfigError: ``base`` is not a positive int or a ``{name: positive int}``
            dict covering every training dataset.
    """
    if base is None:
        return None
    if isinstance(base, Mapping):
        missing = [n for n in names if n not in base]
        if missing:
            raise ConfigError(f'auto_scale_lr.base_batch_size has no batch for the training '
                              f'dataset(s) {missing}; give {{name: batch}} for every dataset '
                              f'of data.train ({list(names)}) or one int')
        values = [base[n] for n in names]
    else:
        values = [base]
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise ConfigError(f'auto_scale_lr.base_batch_size={base!r}: batches must be positive '
                          'ints (an int, or {dataset name: int})')
    return sum(values)


def check_auto_scale_lr(cfg) -> Tuple[bool, Optional[int]]:
    """Check ``cfg.auto_scale_lr``.

    Returns:
        tuple: (enabled, base total batch of the training datasets or None).

    Raises:
        ConfigError: Unknown keys, ``enable`` not a bool, a bad
            ``base_batch_size``, or ``enable=True`` without ``base_batch_size``.
    """
    opts = cfg.get('auto_scale_lr')
    if opts is None:
        return False, None
    if not isinstance(opts, Mapping):
        raise ConfigError(f'auto_scale_lr={opts!r} must be a dict: '
                          'dict(enable=False, base_batch_size=...)')
    unknown = sorted(set(opts) - _KEYS)
    if unknown:
        raise ConfigError(f'unknown auto_scale_lr keys {unknown}; allowed: {sorted(_KEYS)}')
    enable = opts.get('enable', False)
    if not isinstance(enable, bool):
        raise ConfigError(f'auto_scale_lr.enable={enable!r} must be True or False')
    names = [e['name'] for e in parse_loader_cfgs(cfg.data.train)]
    base = _base_batch(opts.get('base_batch_size'), names)
    if enable and base is None:
        raise ConfigError('auto_scale_lr.enable=True needs auto_scale_lr.base_batch_size (the '
                          'total batch the lr was set for; README: GPUs)')
    return enable, base


def scaled_optimizer_cfg(cfg, world_size: int, logger=None) -> Dict:
    """``cfg.optimizer``, its lr scaled when ``auto_scale_lr.enable``; logs the effective batches.

    Args:
        cfg: The training config (not changed).
        world_size: Processes (GPUs) of the run.
        logger: Logger (default: the root logger).

    Raises:
        ConfigError: See :func:`check_auto_scale_lr`.
    """
    logger = logger or get_root_logger()
    enable, base = check_auto_scale_lr(cfg)
    batches = effective_batches(cfg.data.train, world_size)
    total = sum(b for _, b in batches.values())
    logger.info(f'effective batch per step (samples_per_gpu x {world_size} process(es)): '
                + ', '.join(f'{name} {per_gpu} x {world_size} = {b}'
                            for name, (per_gpu, b) in batches.items())
                + f'; total batch {total}')
    optimizer = copy.deepcopy(dict(cfg.optimizer))
    lr = optimizer.get('lr')
    if base is None:
        logger.info(f'lr {lr}: not scaled by the batch (no auto_scale_lr.base_batch_size)')
    elif enable:
        optimizer['lr'] = lr * total / base
        logger.info(f'auto_scale_lr: lr {lr} x total batch {total} / base_batch_size {base} '
                    f'= {optimizer["lr"]:g}')
    else:
        logger.info(f'lr {lr}: not scaled by the batch (auto_scale_lr.enable=False; enabled, '
                    f'it would be x {total}/{base})')
    return optimizer
