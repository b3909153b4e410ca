"""Co-training with mmcv's iteration-based runner."""
import copy
import logging
from typing import Dict, Optional

import torch
from mmcv.runner import build_optimizer, build_runner, get_dist_info

from ..core.evaluation import MultiTaskDistEvalHook, MultiTaskEvalHook
from ..core.hooks import LogWindowHook, MultiTaskLoaderStateHook
from ..core.optimizer import RSCoTrOptimizerHook  # noqa: F401  (registers the hook)
from ..datasets import build_multitask_loader, build_task_loaders
from ..utils.logger import get_root_logger
from ..compat.parallel import wrap_model
from .checkpoint import (check_resume_checkpoint, load_model_checkpoint,
                         load_state_of_checkpoint, read_checkpoint)
from .checks import ConfigError, check_config, optimizer_hook_cfg  # noqa: F401
from .lr_scaling import scaled_optimizer_cfg
from .runner import CoTrainRunner, NonFiniteLossError  # noqa: F401  (registers the runner)

__all__ = ['train_model', 'default_device', 'optimizer_hook_cfg']

def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


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
        ConfigError: The config cannot train (see :func:`~rscotr.apis.checks.check_config`).
        CheckpointError: ``resume_from`` or ``load_from`` cannot be read or holds
            the weights of another model (raised before any loader is built).
        NonFiniteLossError: ``cfg.nonfinite_loss.max_consecutive`` (default 5)
            consecutive steps had a NaN/Inf loss (each was skipped).
    """
    logger = get_root_logger(log_level=getattr(logging, str(cfg.get('log_level', 'INFO'))))
    device = cfg.get('device') or default_device()
    seed = cfg.get('seed')
    # every setting is checked (and data files looked at) before anything is built
    settings = check_config(cfg, model, validate=validate)
    # weights are read (once) and fitted to the model before the loaders are built
    resume = None
    if cfg.get('resume_from'):
        resume = check_resume_checkpoint(model, read_checkpoint(cfg.resume_from), logger,
                                         path=cfg.resume_from)
        load_state_of_checkpoint(model, resume, cfg.resume_from, logger)
    elif cfg.get('load_from'):
        load_model_checkpoint(model, cfg.load_from, logger=logger)

    train_loader = build_multitask_loader(cfg.data.train, cfg.get('iteration_strategy'),
                                          dist=distributed, seed=seed)

    precision = settings.precision
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
    # mmcv's IterBasedRunner plus atomic checkpoints, signal stops and NaN guards
    runner_cfg['type'] = 'CoTrainRunner'
    runner_cfg['max_consecutive_nonfinite'] = settings.max_consecutive_nonfinite
    runner_cfg['mixed_precision'] = precision
    runner = build_runner(runner_cfg, default_args=dict(
        model=model, optimizer=optimizer, work_dir=cfg.work_dir, logger=logger, meta=meta))
    runner.timestamp = timestamp

    log_config = cfg.log_config
    # copies: mmcv's hook registration pops keys of the configs it is given
    runner.register_training_hooks(
        copy.deepcopy(cfg.lr_config),
        settings.optimizer_config,
        copy.deepcopy(cfg.get('checkpoint_config')),
        log_config,
        copy.deepcopy(cfg.get('momentum_config')),
        custom_hooks_config=copy.deepcopy(cfg.get('custom_hooks')))
    state_hook = MultiTaskLoaderStateHook(train_loader)
    runner.register_hook(state_hook, priority='ABOVE_NORMAL')
    runner.register_hook(LogWindowHook(log_config['interval']), priority='LOWEST')

    if settings.evaluation is not None:
        eval_cfg = dict(settings.evaluation)
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

    if resume is not None:
        _resume(runner, resume, cfg.resume_from, state_hook, logger)

    logger.info(f'co-training on {device} ({world_size} process(es)), '
                f'{runner.max_iters} iterations, work_dir {cfg.work_dir}')
    runner.run([train_loader], cfg.get('workflow', [('train', 1)]))
    return runner.interrupted_by


def _resume(runner, ckpt: Dict, path: str, state_hook: MultiTaskLoaderStateHook,
            logger) -> None:
    """Continue from a checkpoint read (and its weights loaded) by :func:`train_model`.

    Sets the runner's iteration and epoch, the optimizer state, the hook
    messages (best checkpoint, loss scaler) and the loader and RNG states the
    :class:`~rscotr.core.hooks.MultiTaskLoaderStateHook` restores when the run starts.
    """
    meta = ckpt['meta']
    runner._epoch = meta['epoch']
    runner._iter = runner._inner_iter = meta['iter']
    if 'optimizer' in ckpt:
        runner.optimizer.load_state_dict(ckpt['optimizer'])
    if runner.meta is None:
        runner.meta = {}
    runner.meta.setdefault('hook_msgs', {}).update(meta.get('hook_msgs') or {})
    logger.info(f'resumed from {path}: iteration {runner.iter}')
    state_hook.resume_state = meta.get('multitask_loader')
    state_hook.resume_rng = meta.get('rng_state')
    if state_hook.resume_state is not None:
        # mmcv's IterBasedRunner saves from after_train_iter hooks, before it
        # counts the iteration, so meta['iter'] is one short and a resumed run
        # would repeat an iteration; the loader state counts completed steps.
        done = sum(state_hook.resume_state['steps'].values())
        if done == runner.iter + 1:
            runner._iter = runner._inner_iter = done
            logger.info(f'resuming after iteration {done}')
