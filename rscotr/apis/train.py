"""Co-training with mmcv's iteration-based runner."""
import logging
from typing import Dict, Optional

import torch
from mmcv.runner import CheckpointLoader, build_optimizer, build_runner, get_dist_info

from ..core.evaluation import MultiTaskDistEvalHook, MultiTaskEvalHook
from ..core.hooks import LogWindowHook, MultiTaskLoaderStateHook
from ..core.mixed_precision import parse_mixed_precision
from ..core.optimizer import RSCoTrOptimizerHook  # noqa: F401  (registers the hook)
from ..datasets import build_multitask_loader, build_task_loaders
from ..utils.logger import get_root_logger
from ..compat.parallel import wrap_model
from .checks import ConfigError, check_config
from .lr_scaling import scaled_optimizer_cfg
from .runner import CoTrainRunner, NonFiniteLossError  # noqa: F401  (registers the runner)

__all__ = ['train_model', 'default_device', 'optimizer_hook_cfg']

#: Keys of ``cfg.evaluation`` that configure the hook (everything else is an error).
_EVAL_KEYS = {'interval', 'start', 'save_best', 'skip_tasks', 'pre_eval', 'out_dir',
              'dump_metrics', 'log_per_class', 'tmpdir', 'gpu_collect', 'broadcast_bn_buffer',
              'by_epoch'}


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def optimizer_hook_cfg(cfg) -> Dict:
    """The optimizer hook config of a training config.

    ``cfg.optimizer_config`` as an :class:`~rscotr.core.optimizer.RSCoTrOptimizerHook`
    (also when it names mmcv's ``OptimizerHook``, whose gradient zeroing is
    torch 2's), with the top-level ``mixed_precision`` setting.

    Raises:
        ConfigError: ``mixed_precision`` or ``optimizer_config.grads_to_none``
            is not valid, or mixed precision is asked of another hook type.
    """
    hook = dict(cfg.get('optimizer_config') or dict(grad_clip=None))
    try:
        precision = parse_mixed_precision(cfg.get('mixed_precision'))
    except ValueError as err:
        raise ConfigError(f'the config cannot train: {err}') from err
    if 'mixed_precision' in hook:
        raise ConfigError('the config cannot train: optimizer_config.mixed_precision is set '
                          'by the run; use the top-level mixed_precision key instead')
    if hook.get('type', 'OptimizerHook') == 'OptimizerHook':
        hook['type'] = 'RSCoTrOptimizerHook'
    if hook['type'] == 'RSCoTrOptimizerHook':
        if not isinstance(hook.get('grads_to_none', False), bool):
            raise ConfigError(f'the config cannot train: optimizer_config.grads_to_none='
                              f'{hook["grads_to_none"]!r} must be False (the release: '
                              'gradients zeroed) or True (torch 2: gradients set to None)')
        hook['mixed_precision'] = precision
    elif precision.dtype is not None:
        raise ConfigError(f'the config cannot train: mixed_precision={precision.name!r} needs '
                          f"optimizer_config.type='RSCoTrOptimizerHook', not {hook['type']!r}")
    return hook


def train_model(model: torch.nn.Module,
                cfg,
                distributed: bool = False,
                validate: bool = True,
                timestamp: Optional[str] = None,
                meta: Optional[Dict] = None) -> Optional[int]:
    """Co-train ``model`` on the datasets of ``cfg.data.train``.

    Builds the co-training loader (``cfg.data.train`` with
    ``cfg.iteration_strategy``), wraps the model (MMDataParallel, or DDP with
    ``find_unused_parameters`` since only the active head trains in a step),
    builds the optimizer (``cfg.optimizer`` with its ``paramwise_cfg``; its lr
    scaled by the total batch with ``cfg.auto_scale_lr.enable``, see
    :mod:`rscotr.apis.lr_scaling`) and an
    ``IterBasedRunner`` with the lr, optimizer (:class:`~rscotr.core.optimizer.
    RSCoTrOptimizerHook`: gradient zeroing as released, grad clipping, loss
    scaling; ``cfg.mixed_precision`` switches autocast on), checkpoint,
    timer and logger hooks, the multi-dataset evaluation hook
    (``cfg.evaluation`` on ``cfg.data.val``) and runs ``cfg.runner.max_iters``
    iterations.

    Args:
        model: The (unwrapped) model.
        cfg: The config (``mmcv.Config``) with ``work_dir`` set.
        distributed: One process per device under ``torch.distributed``.
        validate: Register the evaluation hook.
        timestamp: Timestamp of the log file, shared with the runner's json log.
        meta: Run meta (env info, seed, config text) saved in checkpoints.

    Returns:
        The number of the signal (SIGINT, SIGTERM) that stopped the run early
        after saving a checkpoint, or None when it ran to ``max_iters``.

    Raises:
        ConfigError: The config cannot train (see :func:`~rscotr.apis.checks.check_config`
            and :func:`optimizer_hook_cfg`).
        NonFiniteLossError: ``cfg.nonfinite_loss.max_consecutive`` (default 5)
            consecutive steps had a NaN/Inf loss (each was skipped).
    """
    logger = get_root_logger(log_level=getattr(logging, str(cfg.get('log_level', 'INFO'))))
    device = cfg.get('device') or default_device()
    seed = cfg.get('seed')
    check_config(cfg, model)  # fail now, not hours into the run
    optimizer_config = optimizer_hook_cfg(cfg)

    train_loader = build_multitask_loader(cfg.data.train, cfg.get('iteration_strategy'),
                                          dist=distributed, seed=seed)

    precision = parse_mixed_precision(cfg.get('mixed_precision'))
    if precision.dtype is not None:
        logger.info(f'mixed precision {precision.name}: autocast in the training forward '
                    'pass; deformable attention and the head losses in float32'
                    + (', dynamic loss scaling' if precision.loss_scale is not None else ''))
    model = wrap_model(model, device, distributed,
                       find_unused_parameters=cfg.get('find_unused_parameters', True))
    _, world_size = get_dist_info()
    # logs the effective batch of every dataset; lr x total / base with auto_scale_lr.enable
    optimizer = build_optimizer(model, scaled_optimizer_cfg(cfg, world_size, logger))

    runner_cfg = dict(cfg.runner)
    if runner_cfg['type'] not in ('IterBasedRunner', 'CoTrainRunner'):
        raise ValueError(f'co-training is iteration based; runner {runner_cfg["type"]} '
                         'is not supported')
    # mmcv's IterBasedRunner plus atomic checkpoints, signal stops and NaN guards
    runner_cfg['type'] = 'CoTrainRunner'
    nonfinite = dict(cfg.get('nonfinite_loss') or {})
    unknown = set(nonfinite) - {'max_consecutive'}
    if unknown:
        raise KeyError(f'unknown nonfinite_loss keys {sorted(unknown)}; allowed: '
                       "['max_consecutive']")
    runner_cfg['max_consecutive_nonfinite'] = int(nonfinite.get('max_consecutive', 5))
    runner_cfg['mixed_precision'] = precision
    runner = build_runner(runner_cfg, default_args=dict(
        model=model, optimizer=optimizer, work_dir=cfg.work_dir, logger=logger, meta=meta))
    runner.timestamp = timestamp

    log_config = cfg.log_config
    runner.register_training_hooks(
        cfg.lr_config,
        optimizer_config,
        cfg.get('checkpoint_config'),
        log_config,
        cfg.get('momentum_config'),
        custom_hooks_config=cfg.get('custom_hooks'))
    state_hook = MultiTaskLoaderStateHook(train_loader)
    runner.register_hook(state_hook, priority='ABOVE_NORMAL')
    runner.register_hook(LogWindowHook(log_config['interval']), priority='LOWEST')

    if validate and cfg.data.get('val'):
        eval_cfg = dict(cfg.get('evaluation') or {})
        unknown = set(eval_cfg) - _EVAL_KEYS
        if unknown:
            raise KeyError(f'unknown evaluation keys {sorted(unknown)}; '
                           f'allowed {sorted(_EVAL_KEYS)}')
        val_loaders = build_task_loaders(cfg.data.val, train=False, dist=distributed, seed=seed)
        if distributed:
            hook = MultiTaskDistEvalHook(val_loaders, **eval_cfg)
        else:
            for key in ('tmpdir', 'gpu_collect', 'broadcast_bn_buffer'):
                eval_cfg.pop(key, None)
            hook = MultiTaskEvalHook(val_loaders, **eval_cfg)
        # mmcv registers its EvalHook with priority LOW: after the checkpoint hook,
        # before the logger hooks
        runner.register_hook(hook, priority='LOW')

    if cfg.get('resume_from'):
        map_location = 'default' if device.startswith('cuda') else 'cpu'
        runner.resume(cfg.resume_from, map_location=map_location)
        # the runner keeps only the checkpoint's hook_msgs: read the loader state too
        resumed_meta = CheckpointLoader.load_checkpoint(cfg.resume_from,
                                                        map_location='cpu').get('meta', {})
        state_hook.resume_state = resumed_meta.get('multitask_loader')
        state_hook.resume_rng = resumed_meta.get('rng_state')
        if state_hook.resume_state is not None:
            # mmcv's IterBasedRunner saves from after_train_iter hooks, before it
            # counts the iteration, so meta['iter'] is one short and a resumed run
            # would repeat an iteration; the loader state counts completed steps.
            done = sum(state_hook.resume_state['steps'].values())
            if done == runner.iter + 1:
                runner._iter = runner._inner_iter = done
                logger.info(f'resuming after iteration {done}')
    elif cfg.get('load_from'):
        runner.load_checkpoint(cfg.load_from, map_location='cpu')

    logger.info(f'co-training on {device} ({world_size} process(es)), '
                f'{runner.max_iters} iterations, work_dir {cfg.work_dir}')
    runner.run([train_loader], cfg.get('workflow', [('train', 1)]))
    return runner.interrupted_by
