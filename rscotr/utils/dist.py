"""Distributed helpers that work with NCCL (GPU) and gloo (CPU) alike."""
import os
from typing import Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv.runner import get_dist_info

__all__ = ['init_dist', 'is_distributed', 'default_backend', 'comm_device',
           'broadcast_int', 'get_dist_info']


def is_distributed() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def default_backend(device: str) -> str:
    """``'nccl'`` for CUDA training, ``'gloo'`` otherwise."""
    return 'nccl' if device.startswith('cuda') else 'gloo'


def init_dist(launcher: str, device: str = 'cuda', backend: Optional[str] = None,
              **kwargs) -> None:
    """Start the default process group from a ``torchrun`` environment.

    mmcv's ``init_dist('pytorch')`` always sets a CUDA device; this one only
    does so for CUDA training, so CPU runs (gloo) work too.

    Args:
        launcher: Only ``'pytorch'`` (``torchrun`` / ``torch.distributed.run``
            environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
            ``MASTER_ADDR``, ``MASTER_PORT``).
        device: ``'cuda'`` or ``'cpu'``.
        backend: Process-group backend; None picks :func:`default_backend`.
        **kwargs: Passed to :func:`torch.distributed.init_process_group`.
    """
    if launcher != 'pytorch':
        raise ValueError(f'unsupported launcher {launcher!r}: use torchrun (--launcher pytorch)')
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    backend = backend or default_backend(device)
    if device.startswith('cuda'):
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ['RANK']))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


def comm_device() -> torch.device:
    """Device of tensors used for collectives of the current backend."""
    if dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def broadcast_int(value: int, src: int = 0) -> int:
    """``value`` of rank ``src`` on every rank (identity when not distributed)."""
    if not is_distributed():
        return int(value)
    tensor = torch.tensor([int(value)], dtype=torch.long, device=comm_device())
    dist.broadcast(tensor, src)
    return int(tensor.item())
