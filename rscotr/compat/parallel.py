"""Model wrappers for training and testing on one device or under DDP, CPU or GPU.

mmcv 1.7's :class:`~mmcv.parallel.MMDataParallel` and
:class:`~mmcv.parallel.MMDistributedDataParallel` move batches with mmcv's
``scatter``, which hands an int device to torch's ``_get_stream``; current
torch wants a :class:`torch.device` there, so the first CUDA step fails
(``AttributeError: 'int' object has no attribute 'type'``). mmcv's DDP wrapper
also predates the DDP internals of current torch. Here:

* :func:`batch_to_device` is the one function that moves a collated batch to
  a device (any device: CPU, ``cuda:N``): it unwraps mmcv's
  :class:`~mmcv.parallel.DataContainer` objects as mmcv's scatter does for a
  single device and moves every tensor with ``Tensor.to``;
* :class:`RSCoTrDataParallel` runs the model in one process on one device;
* :class:`RSCoTrDistributedDataParallel` moves the batch with the same
  function and runs ``train_step`` / ``val_step`` / ``forward`` *through*
  torch's own ``DistributedDataParallel.forward`` (bucket rebuilding, buffer
  syncing and unused-parameter detection of the installed torch).

Both are registered in mmcv's ``MODULE_WRAPPERS``, so the runner, checkpoint
saving and loading unwrap them (``model.module``).
"""
from contextlib import contextmanager
from typing import Any, Dict, Tuple, Union

import torch
from mmcv.parallel import MODULE_WRAPPERS, DataContainer, MMDistributedDataParallel
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..utils.nested import map_nested

__all__ = ['batch_to_device', 'resolve_device', 'RSCoTrDataParallel',
           'RSCoTrDistributedDataParallel', 'wrap_model']

DeviceLike = Union[str, torch.device]


def resolve_device(device: DeviceLike) -> torch.device:
    """``'cpu'``, ``'cuda'`` (the current GPU) or ``'cuda:N'`` as a :class:`torch.device`.

    Raises:
        ValueError: Any other device.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f'unsupported device {device!r}: use cpu, cuda or cuda:N') from err
    if dev.type == 'cuda':
        return dev if dev.index is not None else torch.device('cuda', torch.cuda.current_device())
    if dev.type != 'cpu':
        raise ValueError(f'unsupported device {device!r}: use cpu, cuda or cuda:N')
    return dev


def _unwrap_container(container: DataContainer) -> Any:
    """The data of a collated :class:`DataContainer` for one device.

    mmcv's ``collate`` stores one chunk of ``samples_per_gpu`` samples per
    device in ``container.data`` (a list); a process of ours runs one device,
    so a batch must hold exactly one chunk.
    """
    data = container.data
    if not isinstance(data, list):  # a sample that was never collated
        return data
    if len(data) != 1:
        raise ValueError(
            f'a DataContainer of the batch holds {len(data)} per-device chunks; one process '
            'runs one device: collate with samples_per_gpu equal to the batch size')
    return data[0]


def batch_to_device(data: Any, device: DeviceLike, non_blocking: bool = True) -> Any:
    """Move a (collated) batch to ``device``: the same code for CPU and CUDA.

    Recurses into lists, tuples (named tuples too), dicts and dataclasses.
    :class:`~mmcv.parallel.DataContainer` objects are replaced by their
    (single) chunk; the chunk of a ``cpu_only`` container (e.g. the
    ``img_metas`` dicts) is returned as it is (the same objects, as mmcv's
    scatter does), every other tensor is moved with ``Tensor.to``.
    Anything else (strings, numbers, arrays, optimizers) is returned as it is.

    Args:
        data: A batch as the data loaders collate it, e.g. ``dict(img=DC(
            [Tensor (B, 3, H, W)], stacked=True), img_metas=DC([[dict, ...]],
            cpu_only=True), gt_bboxes=DC([[Tensor (n_i, 4), ...]]), task='det')``.
        device: Target device (``'cpu'``, ``'cuda'``, ``'cuda:N'`` or a
            :class:`torch.device`).
        non_blocking: Passed to ``Tensor.to`` (asynchronous copies from
            pinned memory).

    Returns:
        The batch with the containers unwrapped and its tensors on ``device``,
        e.g. ``dict(img=Tensor (B, 3, H, W), img_metas=[dict, ...],
        gt_bboxes=[Tensor (n_i, 4), ...], task='det')``.

    Raises:
        ValueError: A container holds several per-device chunks.
    """
    device = torch.device(device)

    def move(obj: Any, walk) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.to(device, non_blocking=non_blocking)
        if isinstance(obj, DataContainer):
            data = _unwrap_container(obj)
            return data if obj.cpu_only else walk(data)
        return obj

    return map_nested(data, move)


def _move_args(inputs: Tuple, kwargs: Dict, device: torch.device) -> Tuple[Tuple, Dict]:
    return batch_to_device(tuple(inputs), device), batch_to_device(dict(kwargs), device)


@MODULE_WRAPPERS.register_module()
class RSCoTrDataParallel(nn.Module):
    """Run the model in this process on one device (mmcv's runner contract).

    ``train_step``, ``val_step`` and ``forward`` move their arguments with
    :func:`batch_to_device` and call the module's method of the same name.

    Args:
        module: The model (moved to ``device`` here).
        device: ``'cpu'``, ``'cuda'`` (the current GPU) or ``'cuda:N'``.
    """

    def __init__(self, module: nn.Module, device: DeviceLike = 'cpu'):
        super().__init__()
        self.device = resolve_device(device)
        self.module = module.to(self.device)
        # read by code written for DataParallel-style wrappers
        self.device_ids = [self.device.index] if self.device.type == 'cuda' else []

    def forward(self, *inputs, **kwargs):
        inputs, kwargs = _move_args(inputs, kwargs, self.device)
        return self.module(*inputs, **kwargs)

    def train_step(self, *inputs, **kwargs):
        inputs, kwargs = _move_args(inputs, kwargs, self.device)
        return self.module.train_step(*inputs, **kwargs)

    def val_step(self, *inputs, **kwargs):
        inputs, kwargs = _move_args(inputs, kwargs, self.device)
        return self.module.val_step(*inputs, **kwargs)


class RSCoTrDistributedDataParallel(MMDistributedDataParallel):
    """DDP wrapper for RSCoTr with mmcv's ``train_step``/``val_step`` contract.

    Use ``device_ids=[local GPU]`` on GPU and ``device_ids=None`` on CPU. The
    batch is moved with :func:`batch_to_device` (not mmcv's scatter).
    """

    @property
    def target_device(self) -> torch.device:
        if self.device_ids:
            return torch.device('cuda', self.device_ids[0])
        return torch.device('cpu')

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
        inputs, kwargs = _move_args(inputs, kwargs, self.target_device)
        with self._module_forward_as('train_step'):
            return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def val_step(self, *inputs, **kwargs):
        inputs, kwargs = _move_args(inputs, kwargs, self.target_device)
        with self._module_forward_as('val_step'):
            return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def forward(self, *inputs, **kwargs):
        inputs, kwargs = _move_args(inputs, kwargs, self.target_device)
        return DistributedDataParallel.forward(self, *inputs, **kwargs)

    def _run_ddp_forward(self, *inputs, **kwargs):
        # torch's own implementation (mmcv's override reads removed attributes)
        return DistributedDataParallel._run_ddp_forward(self, *inputs, **kwargs)


def wrap_model(model: nn.Module, device: DeviceLike = 'cuda', distributed: bool = False,
               find_unused_parameters: bool = True, broadcast_buffers: bool = False) -> nn.Module:
    """Move ``model`` to ``device`` and wrap it for the mmcv runner.

    Args:
        model: The model.
        device: ``'cpu'``, ``'cuda'`` (the current GPU, set by
            :func:`~rscotr.utils.init_dist` under a launcher) or ``'cuda:N'``.
        distributed: DDP (one process per GPU, or CPU processes with gloo)
            instead of :class:`RSCoTrDataParallel`.
        find_unused_parameters: Let DDP skip parameters without gradient
            (needed: only the active task's head trains in a step).
        broadcast_buffers: Broadcast rank 0's buffers at every forward.

    Raises:
        ValueError: An unsupported device.
    """
    dev = resolve_device(device)
    if not distributed:
        return RSCoTrDataParallel(model, dev)
    model = model.to(dev)
    return RSCoTrDistributedDataParallel(
        model, device_ids=[dev.index] if dev.type == 'cuda' else None,
        broadcast_buffers=broadcast_buffers, find_unused_parameters=find_unused_parameters)
