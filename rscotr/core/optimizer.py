"""The training optimizer hook: gradient zeroing as released, clipping, loss scaling."""
from typing import Any, Dict, Iterable, Optional, Union

import torch
from mmcv.runner import HOOKS, OptimizerHook
from torch import Tensor

from .mixed_precision import MixedPrecision, parse_mixed_precision

__all__ = ['RSCoTrOptimizerHook']


def _zero_grads_of_stepped_params(optimizer: torch.optim.Optimizer) -> None:
    """Give a zero gradient to every parameter with optimizer state but no gradient."""
    for group in optimizer.param_groups:
        for param in group['params']:
            if param.grad is None and optimizer.state.get(param):
                param.grad = torch.zeros_like(param)


@HOOKS.register_module()
class RSCoTrOptimizerHook(OptimizerHook):
    """mmcv's ``OptimizerHook`` with the release's gradient zeroing and mixed precision.

    One step: zero the gradients, backward (of the loss scaled by the
    GradScaler under float16), unscale, clip the gradient norm (when
    ``grad_clip`` is set; the norm is logged as ``grad_norm``), optimizer step
    (skipped by the GradScaler on inf / NaN gradients), scaler update.

    Heads that did not run in a step: the release ran on torch 1.11, whose
    ``optimizer.zero_grad()`` sets gradients to zero tensors; a parameter that
    had a gradient once keeps a zero gradient, so AdamW keeps moving it
    (momentum and weight decay) in every later step, also in steps of other
    tasks. torch 2 sets them to None, which freezes the heads that did not
    run. ``grads_to_none=False`` (the default) reproduces the release,
    ``grads_to_none=True`` gives torch 2's behaviour. Clipping sees the same
    norm either way (zero gradients add nothing to it). So that a resumed
    run continues exactly as the uninterrupted one, every parameter the
    optimizer has state for (it was stepped with a gradient before) gets a
    zero gradient when it has none (after loading a checkpoint).

    Args:
        grad_clip: ``torch.nn.utils.clip_grad_norm_`` arguments
            (``max_norm``, ``norm_type``), or None.
        grads_to_none: Zero gradients by setting them to None (torch 2)
            instead of to zero tensors (the release, torch 1.11).
        mixed_precision: The ``mixed_precision`` setting (see
            :mod:`rscotr.core.mixed_precision`); float16 adds a
            ``torch.amp.GradScaler`` (its scale is logged as ``loss_scale``).
            The autocast of the forward pass is the runner's.
        detect_anomalous_params: As mmcv's (debugging).
    """

    def __init__(self, grad_clip: Optional[Dict] = None, grads_to_none: bool = False,
                 mixed_precision: Union[None, str, Dict, MixedPrecision] = None,
                 detect_anomalous_params: bool = False):
        super().__init__(grad_clip=grad_clip, detect_anomalous_params=detect_anomalous_params)
        if not isinstance(grads_to_none, bool):
            raise TypeError(f'optimizer_config.grads_to_none must be True or False, got '
                            f'{grads_to_none!r}')
        self.grads_to_none = grads_to_none
        self.mixed_precision = parse_mixed_precision(mixed_precision,
                                                     'optimizer_config.mixed_precision')
        self.scaler: Optional[Any] = None
        self._scaler_state: Optional[Dict] = None

    #: Where the loss scaler's state travels in ``runner.meta['hook_msgs']`` (saved
    #: in every checkpoint and restored by a resume, like mmcv's hook messages).
    SCALER_KEY = 'loss_scaler'

    def _scaler_for(self, loss: Tensor):
        if self.mixed_precision.loss_scale is None:
            return None
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler(loss.device.type,
                                               **self.mixed_precision.loss_scale)
            if self._scaler_state:
                self.scaler.load_state_dict(self._scaler_state)
        return self.scaler

    def before_run(self, runner) -> None:
        """Take the loss scaler's state of a resumed run (float16 only)."""
        msgs = (getattr(runner, 'meta', None) or {}).get('hook_msgs') or {}
        self._scaler_state = msgs.get(self.SCALER_KEY)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer,
             params: Iterable[torch.nn.Parameter]) -> Optional[float]:
        """Zero the gradients, backward ``loss``, clip, step.

        Args:
            loss: The scalar training loss.
            optimizer: The optimizer.
            params: The model's parameters (clipped together).

        Returns:
            The gradient norm before clipping, or None without ``grad_clip``.
        """
        optimizer.zero_grad(set_to_none=self.grads_to_none)
        if not self.grads_to_none:
            _zero_grads_of_stepped_params(optimizer)
        scaler = self._scaler_for(loss)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        grad_norm = None
        if self.grad_clip is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            norm = self.clip_grads(params)
            grad_norm = None if norm is None else float(norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return grad_norm

    def after_train_iter(self, runner) -> None:
        if self.detect_anomalous_params:
            self.detect_anomalous_parameters(runner.outputs['loss'], runner)
        grad_norm = self.step(runner.outputs['loss'], runner.optimizer,
                              runner.model.parameters())
        logs = {}
        if grad_norm is not None:
            logs['grad_norm'] = grad_norm
        if self.scaler is not None:
            logs['loss_scale'] = float(self.scaler.get_scale())
            if runner.meta is None:
                runner.meta = {}
            runner.meta.setdefault('hook_msgs', {})[self.SCALER_KEY] = self.scaler.state_dict()
        if logs:
            runner.log_buffer.update(logs, runner.outputs['num_samples'])
