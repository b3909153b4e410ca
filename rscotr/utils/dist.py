"""Distributed helpers that work with NCCL (GPU) and gloo (CPU) alike."""
import os
import re
import shutil
import subprocess
import zlib
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv.runner import get_dist_info

__all__ = ['LAUNCHERS', 'init_dist', 'first_slurm_host', 'is_distributed', 'default_backend',
           'comm_device', 'broadcast_int', 'get_dist_info', 'all_ranks_any', 'mean_over_ranks']


def is_distributed() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def default_backend(device: str) -> str:
    """``'nccl'`` for CUDA training, ``'gloo'`` otherwise."""
    return 'nccl' if device.startswith('cuda') else 'gloo'


LAUNCHERS = ('none', 'pytorch', 'slurm')


def first_slurm_host(nodelist: str) -> str:
    """The first host name of a Slurm host list (``SLURM_NODELIST``).

    ``scontrol show hostnames`` answers when it is installed; otherwise the
    list is expanded here: ``'gpu[07-09,12],cpu1'`` -> ``'gpu07'``,
    ``'rack[1-2]-n[3-4]'`` -> ``'rack1-n3'``.

    Raises:
        ValueError: An empty list.
    """
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError('SLURM_NODELIST is empty')
    if shutil.which('scontrol'):
        try:
            out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            if out.split():
                return out.split()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    depth, end = 0, len(nodelist)
    for i, char in enumerate(nodelist):
        depth += char == '['
        depth -= char == ']'
        if char == ',' and depth == 0:
            end = i
            break
    first = nodelist[:end]
    return re.sub(r'\[([^\]]*)\]', lambda m: m.group(1).split(',')[0].split('-')[0], first)


def _slurm_env(port: Optional[int] = None) -> None:
    """Set torch's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_*`` from Slurm's."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm needs the environment variables {missing}, which '
                           'srun sets: start the job with srun (tools/slurm_train.sh)')
    rank = int(os.environ['SLURM_PROCID'])
    world_size = int(os.environ['SLURM_NTASKS'])
    if 'SLURM_LOCALID' in os.environ:
        local_rank = int(os.environ['SLURM_LOCALID'])
    else:
        local_rank = rank % max(1, torch.cuda.device_count())
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')  # torch's default port
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = first_slurm_host(os.environ['SLURM_NODELIST'])
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank))


def init_dist(launcher: str, device: str = 'cuda', backend: Optional[str] = None,
              port: Optional[int] = None, **kwargs) -> None:
    """Start the default process group under ``torchrun`` or Slurm's ``srun``.

    mmcv's ``init_dist`` always sets a CUDA device; this one only does so for
    CUDA training, so CPU runs (gloo) work too, and it picks each process's
    GPU by its local rank.

    Args:
        launcher: ``'pytorch'`` (``torchrun`` / ``torch.distributed.run``:
            ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
            ``MASTER_PORT``) or ``'slurm'`` (one task per GPU started by
            ``srun``: ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``,
            ``SLURM_NODELIST``; the first node is the master unless
            ``MASTER_ADDR`` is set; port ``port``, else ``MASTER_PORT``, else 29500).
        device: ``'cuda'`` or ``'cpu'``.
        backend: Process-group backend; None picks :func:`default_backend`.
        port: Master port of a Slurm job (``dist_params.port``).
        **kwargs: Passed to :func:`torch.distributed.init_process_group`.

    Raises:
        ValueError: An unknown launcher.
        RuntimeError: ``slurm`` outside a Slurm job step.
    """
    if launcher == 'slurm':
        _slurm_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f'unsupported launcher {launcher!r}: use pytorch (torchrun, '
                         'tools/dist_train.sh) or slurm (srun, tools/slurm_train.sh)')
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


def all_ranks_any(flag: bool) -> List[int]:
    """The ranks whose ``flag`` is set, the same list on every rank.

    One all-reduce of a (world_size,) tensor: every rank calls it at the same
    point whatever its own ``flag``, so a decision taken from the result (skip
    a step, stop a run) is taken by every rank together.

    Returns:
        Sorted ranks with ``flag`` set (``[0]`` or ``[]`` when not distributed).
    """
    if not is_distributed():
        return [0] if flag else []
    rank, world_size = dist.get_rank(), dist.get_world_size()
    flags = torch.zeros(world_size, dtype=torch.int32, device=comm_device())
    flags[rank] = int(bool(flag))
    dist.all_reduce(flags)
    return [r for r, f in enumerate(flags.tolist()) if f]


def mean_over_ranks(values: Dict[str, torch.Tensor]) -> 'OrderedDict[str, float]':
    """Scalar values averaged over the ranks that hold them, as floats.

    Every rank issues the same collectives whatever keys it holds (a key may
    be absent on some ranks: a detection batch without boxes, a classification
    batch with soft Mixup labels and so without accuracy): the ranks first
    compare their key lists with one fixed-size all-gather of (number of keys,
    CRC of the names). When they agree (every ordinary step) one all-reduce of
    the packed values follows; otherwise the key lists are gathered and one
    all-reduce of (value, present) pairs over the union of the keys gives each
    key the mean over the ranks that hold it.

    Args:
        values: ``{name: scalar tensor or number}``, in logging order.

    Returns:
        ``{name: mean}`` over the union of the ranks' keys: this rank's keys in
        their order, then the keys only other ranks hold (in rank order).
        Without a process group, this rank's values.
    """
    names = list(values)
    local = [float(v.detach().float().mean()) if isinstance(v, torch.Tensor) else float(v)
             for v in values.values()]
    if not is_distributed():
        return OrderedDict(zip(names, local))
    device = comm_device()
    world_size = dist.get_world_size()
    signature = torch.tensor([len(names), zlib.crc32('\0'.join(names).encode())],
                             dtype=torch.int64, device=device)
    signatures = [torch.empty_like(signature) for _ in range(world_size)]
    dist.all_gather(signatures, signature)
    if all(torch.equal(s, signature) for s in signatures):
        packed = torch.tensor(local, dtype=torch.float64, device=device)
        dist.all_reduce(packed)
        return OrderedDict(zip(names, (packed / world_size).tolist()))
    all_names: List[Optional[List[str]]] = [None] * world_size
    dist.all_gather_object(all_names, names)
    # the same union, in the same order, on every rank
    union = list(OrderedDict.fromkeys(n for ns in all_names for n in ns))
    own = dict(zip(names, local))
    packed = torch.zeros(2, len(union), dtype=torch.float64)
    for i, name in enumerate(union):
        if name in own:
            packed[0, i], packed[1, i] = own[name], 1.0
    packed = packed.to(device)
    dist.all_reduce(packed)
    means = dict(zip(union, (packed[0] / packed[1]).tolist()))
    return OrderedDict((name, means[name])
                       for name in OrderedDict.fromkeys(names + union))
