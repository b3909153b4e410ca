"""The co-training runner: mmcv's IterBasedRunner made safe for runs of days.

- checkpoints and ``latest.pth`` are written atomically (temporary file or
  link, then ``os.replace``): a kill at any moment leaves the previous good
  checkpoint and link intact;
- SIGINT / SIGTERM let the step in progress finish, then save a checkpoint of
  that iteration, log it and stop the run (``interrupted_by`` holds the
  signal number; ``tools/train.py`` exits with ``128 + signal``: 130 for
  SIGINT, 143 for SIGTERM); a second signal stops at once (KeyboardInterrupt).
  Under DDP the ranks agree after every step (one all-reduce of a flag), so
  a signal to any rank stops all of them at the same iteration;
- a step whose loss is not finite (NaN/Inf) is skipped before the optimizer
  hook runs (no backward, no step: the weights and the optimizer state are
  unchanged); under DDP the ranks agree (one all-reduce of a flag per step),
  so a NaN on one rank skips the step on every rank, counted once; logged
  with its task, dataset, iteration, ranks and the offending loss terms;
  after ``max_consecutive`` such steps in a row the run stops with
  :class:`NonFiniteLossError`, without saving, so the last good checkpoint
  stays the latest;
- mixed precision: the training forward pass (``model.train_step``) runs
  under ``torch.autocast`` with the dtype of ``mixed_precision`` (see
  :mod:`rscotr.core.mixed_precision`); backward and the optimizer step
  (:class:`~rscotr.core.optimizer.RSCoTrOptimizerHook`) run outside it.
"""
import math
import os.path as osp
import signal
import threading
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
from mmcv.runner import RUNNERS, IterBasedRunner, OptimizerHook, save_checkpoint

from ..core.mixed_precision import autocast, parse_mixed_precision
from ..utils.dist import all_ranks_any, comm_device
from ..utils.io import atomic_save_checkpoint, atomic_symlink

__all__ = ['CoTrainRunner', 'NonFiniteLossError']


class NonFiniteLossError(RuntimeError):
    """Too many consecutive training steps with a NaN or infinite loss."""


@RUNNERS.register_module()
class CoTrainRunner(IterBasedRunner):
    """Iteration-based runner with atomic checkpoints, signal stops and NaN guards.

    Args:
        *args: As :class:`mmcv.runner.IterBasedRunner`.
        max_consecutive_nonfinite: Stop after this many consecutive steps with a
            non-finite loss (``cfg.nonfinite_loss.max_consecutive``).
        stop_signals: Signals that stop the run with a checkpoint.
        mixed_precision: The ``mixed_precision`` setting: autocast dtype of
            the training forward pass (None: float32).
        **kwargs: As :class:`mmcv.runner.IterBasedRunner`.
    """

    def __init__(self, *args, max_consecutive_nonfinite: int = 5,
                 stop_signals=(signal.SIGINT, signal.SIGTERM), mixed_precision=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.mixed_precision = parse_mixed_precision(mixed_precision)
        if max_consecutive_nonfinite < 1:
            raise ValueError('nonfinite_loss.max_consecutive must be at least 1, '
                             f'got {max_consecutive_nonfinite}')
        self.max_consecutive_nonfinite = int(max_consecutive_nonfinite)
        self.stop_signals = tuple(stop_signals)
        self.consecutive_nonfinite = 0
        self.skipped_steps = 0
        self.interrupted_by: Optional[int] = None
        self._pending_signal: Optional[int] = None

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, out_dir: str, filename_tmpl: str = 'iter_{}.pth',
                        meta: Optional[Dict] = None, save_optimizer: bool = True,
                        create_symlink: bool = True) -> None:
        """As mmcv's, but the file and the ``latest.pth`` link are replaced atomically."""
        meta = {} if meta is None else dict(meta)
        if self.meta is not None:
            meta.update(self.meta)
        meta.update(epoch=self.epoch + 1, iter=self.iter)
        filename = filename_tmpl.format(self.iter + 1)
        filepath = osp.join(out_dir, filename)
        optimizer = self.optimizer if save_optimizer else None
        atomic_save_checkpoint(
            lambda tmp: save_checkpoint(self.model, tmp, optimizer=optimizer, meta=meta),
            filepath)
        if create_symlink:
            atomic_symlink(filename, osp.join(out_dir, 'latest.pth'))

    # ------------------------------------------------------------ signals
    def _on_signal(self, signum, frame) -> None:
        if self._pending_signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt(f'signal {signum} received twice')
        self._pending_signal = signum
        self.logger.warning(f'received {signal.Signals(signum).name}: finishing iteration '
                            f'{self.iter + 1}, then saving a checkpoint and stopping '
                            '(send it again to stop at once)')

    def run(self, data_loaders: List, workflow: List, max_iters: Optional[int] = None,
            **kwargs) -> None:
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.stop_signals:
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            super().run(data_loaders, workflow, max_iters, **kwargs)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    def _agreed_signal(self) -> Optional[int]:
        """The pending signal of any rank (every rank stops at the same iteration)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self._pending_signal
        flag = torch.tensor([self._pending_signal or 0], dtype=torch.int64,
                            device=comm_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self._pending_signal = int(flag.item()) or None
        return self._pending_signal

    def _stop_on_signal(self) -> None:
        signum, self._pending_signal = self._pending_signal, None
        self.interrupted_by = signum
        # saved like the checkpoint hook saves (before the counters move on),
        # so iter_<n>.pth holds n completed iterations; rank 0 writes it
        if self.rank == 0:
            self.save_checkpoint(self.work_dir)
        self.logger.warning(f'stopped by {signal.Signals(signum).name} after iteration '
                            f'{self.iter + 1}: saved iter_{self.iter + 1}.pth; resume with '
                            f'--resume-from {osp.join(self.work_dir, "latest.pth")}')
        self._max_iters = self.iter + 1  # ends the runner's loop after this iteration

    # ------------------------------------------------------------ one step
    def train(self, data_loader, **kwargs) -> None:
        self.model.train()
        self.mode = 'train'
        self.data_loader = data_loader
        self._epoch = data_loader.epoch
        data_batch = next(data_loader)
        self.data_batch = data_batch
        self.call_hook('before_train_iter')
        with autocast(self._device_type(), self.mixed_precision.dtype):
            outputs = self.model.train_step(data_batch, self.optimizer, **kwargs)
        if not isinstance(outputs, dict):
            raise TypeError('model.train_step() must return a dict')
        bad = self._nonfinite_terms(outputs)
        self.outputs = outputs
        # agreed by every rank: a step skipped on one rank only would leave the
        # others waiting in the gradient all-reduce of its backward pass
        bad_ranks = all_ranks_any(bool(bad))
        if bad_ranks:
            self._skip_step(outputs, bad, bad_ranks)
        else:
            self.consecutive_nonfinite = 0
            if 'log_vars' in outputs:
                self.log_buffer.update(outputs['log_vars'], outputs['num_samples'])
            self.call_hook('after_train_iter')
        if self._agreed_signal() is not None:
            self._stop_on_signal()
        del self.data_batch
        self._inner_iter += 1
        self._iter += 1

    def _device_type(self) -> str:
        param = next(self.model.parameters(), None)
        return param.device.type if param is not None else 'cpu'

    @staticmethod
    def _nonfinite_terms(outputs: Dict) -> Dict[str, float]:
        """Loss terms of this rank's step that are NaN or infinite (the logged
        values are means over the ranks; the loss is this rank's)."""
        log_vars = outputs.get('log_vars') or {}
        bad = {k: v for k, v in log_vars.items()
               if 'loss' in k and isinstance(v, float) and not math.isfinite(v)}
        loss = outputs.get('loss')
        if not bad and loss is not None and not bool(loss.detach().isfinite().all()):
            bad = {'loss': float(loss.detach().sum())}
        return bad

    def _skip_step(self, outputs: Dict, bad: Dict[str, float], ranks: List[int]) -> None:
        self.consecutive_nonfinite += 1
        self.skipped_steps += 1
        task, dataset = outputs.get('task'), outputs.get('dataset')
        terms = ', '.join(f'{k}={v}' for k, v in bad.items()) or 'on another rank'
        where = f' on rank(s) {ranks}' if self.world_size > 1 else ''
        self.logger.error(
            f'non-finite loss at iteration {self.iter + 1}{where} (task {task}, dataset '
            f'{dataset}): {terms}; step skipped on every rank, weights unchanged '
            f'({self.consecutive_nonfinite}/{self.max_consecutive_nonfinite} in a row)')
        if self.consecutive_nonfinite >= self.max_consecutive_nonfinite:
            raise NonFiniteLossError(
                f'{self.consecutive_nonfinite} consecutive training steps with a non-finite '
                f'loss (last: iteration {self.iter + 1}, task {task}, dataset {dataset}: '
                f'{terms}); stopped without saving, the last good checkpoint is '
                f'{osp.join(self.work_dir, "latest.pth")}. Lower the learning rate, '
                'enable optimizer_config.grad_clip or check the data of this dataset')
        # every hook but the optimizer's: lr schedule, loader state, timers,
        # checkpoints and evaluation keep their iteration counts
        for hook in self._hooks:
            if not isinstance(hook, OptimizerHook):
                hook.after_train_iter(self)
