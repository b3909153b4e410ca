"""Data-parallel wrappers for training and testing on CPU or GPU.

mmcv 1.x's :class:`~mmcv.parallel.MMDistributedDataParallel` predates the
DDP internals of current torch: its ``train_step`` bypasses
``DistributedDataParallel.forward`` (so the reducer is never prepared for the
forward pass) and its ``forward`` reads attributes torch no longer has; on CPU
it does not unwrap :class:`~mmcv.parallel.DataContainer` inputs at all.
:class:`RSCoTrDistributedDataParallel` scatters the inputs with mmcv's
scatter (CPU or the rank's GPU) and then runs the module's ``train_step`` /
``val_step`` / ``forward`` *through* torch's own ``DistributedDataParallel.forward``,
which does the bucket rebuilding, buffer syncing and unused-parameter
detection of the installed torch.
"""
from contextlib import contextmanager

import torch
from mmcv.parallel import MMDataParallel, MMDistributedDataParallel
from mmcv.parallel.scatter_gather import scatter_kwargs
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ['RSCoTrDistributedDataParallel', 'wrap_model']


class RSCoTrDistributedDataParallel(MMDistributedDataParallel):
    """DDP wrapper for RSCoTr with mmcv's ``train_step``/``val_step`` contract.

    Use ``device_ids=[local GPU]`` on GPU and ``device_ids=None`` on CPU.
    """

    def _scatter(self, inputs, kwargs):
        target = [self.device_ids[0]] if self.device_ids else [-1]
        inputs, kwargs = scatter_kwargs(inputs, kwargs, target, dim=self.dim)
        return inputs[0], kwargs[0]

    @contextmanager
    def _module_forward_as(self, method: str):
        """Let ``DistributedDataParallel.forward`` call ``module.<method>`` once.

        The replacement removes itself on its call, so calls of ``module(...)``
        inside the step (``train_step`` runs ``self(**data)``) reach the
        module's own ``forward``.
        """
        module = self.module
        step = getattr(module, method)

        def call_once(*args, **kwargs):
            module.__dict__.pop('forward', None)
            return step(*args, **kwargs)

        module.forward = call_once
        try:
            yield
        finally:
            module.__dict__.pop('forward', None)

    def train_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        with self._module_forward_as('train_step'):
            return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def val_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        with self._module_forward_as('val_step'):
            return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def forward(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def _run_ddp_forward(self, *inputs, **kwargs):
        # torch's own implementation (mmcv's override reads removed attributes)
        return DistributedDataParallel._run_ddp_forward(self, *inputs, **kwargs)


def wrap_model(model: nn.Module, device: str = 'cuda', distributed: bool = False,
               find_unused_parameters: bool = True, broadcast_buffers: bool = False) -> nn.Module:
    """Move ``model`` to ``device`` and wrap it for the mmcv runner.

    Args:
        model: The model.
        device: ``'cuda'`` or ``'cpu'``.
        distributed: DDP (one process per GPU, or CPU processes with gloo)
            instead of single-process :class:`~mmcv.parallel.MMDataParallel`.
        find_unused_parameters: Let DDP skip parameters without gradient
            (needed: only the active task's head trains in a step).
        broadcast_buffers: Broadcast rank 0's buffers at every forward.
    """
    if device.startswith('cuda'):
        model = model.cuda()
        if distributed:
            return RSCoTrDistributedDataParallel(
                model, device_ids=[torch.cuda.current_device()],
                broadcast_buffers=broadcast_buffers,
                find_unused_parameters=find_unused_parameters)
        return MMDataParallel(model, device_ids=[torch.cuda.current_device()])
    if device != 'cpu':
        raise ValueError(f'unsupported device {device!r}: use cuda or cpu')
    model = model.cpu()
    if distributed:
        return RSCoTrDistributedDataParallel(model, device_ids=None,
                                             broadcast_buffers=broadcast_buffers,
                                             find_unused_parameters=find_unused_parameters)
    wrapped = MMDataParallel(model)
    # DataParallel takes every visible GPU when given none; CPU training uses none
    wrapped.device_ids = []
    return wrapped
