"""The test loop over several task loaders (single process and distributed).

Each dataset is run through the head it feeds
(``model(return_loss=False, rescale=True, head=..., **data)``); results stay
per dataset, in the format of that dataset's ``evaluate``. Segmentation
results are reduced per image with the dataset's ``pre_eval`` (as mmseg does)
unless ``pre_eval=False``.
"""
import os
import os.path as osp
import pickle
import shutil
import tempfile
import time
from collections import OrderedDict
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist

from ..datasets.multitask_loader import TaskLoader
from ..utils.dist import get_dist_info
from ..utils.logger import get_root_logger

__all__ = ['loader_test', 'multitask_single_gpu_test', 'multitask_multi_gpu_test',
           'collect_results']


def _uses_pre_eval(loader: TaskLoader, pre_eval: bool) -> bool:
    return pre_eval and loader.task == 'seg' and hasattr(loader.dataset, 'pre_eval')


def loader_test(model, loader: TaskLoader, pre_eval: bool = True) -> list:
    """Results of one loader on this process (its part of the data when distributed).

    Args:
        model: The (data-parallel wrapped) model in eval mode.
        loader: A test loader.
        pre_eval: Reduce segmentation maps with ``dataset.pre_eval``.

    Returns:
        list: One result per image, in sampler order.
    """
    use_pre_eval = _uses_pre_eval(loader, pre_eval)
    results = []
    dataloader = loader.dataloader
    for batch_indices, data in zip(dataloader.batch_sampler, dataloader):
        with torch.no_grad():
            result = model(return_loss=False, rescale=True, head=loader.head, **data)
        if use_pre_eval:
            result = loader.dataset.pre_eval(result, indices=list(batch_indices))
        results.extend(result)
    return results


def multitask_single_gpu_test(model, loaders: Sequence[TaskLoader],
                              pre_eval: bool = True) -> 'OrderedDict[str, list]':
    """Results of every loader, ``{dataset name: per-image results}``."""
    model.eval()
    logger = get_root_logger()
    outputs = OrderedDict()
    for loader in loaders:
        start = time.perf_counter()
        outputs[loader.name] = loader_test(model, loader, pre_eval)
        logger.info(f'tested {loader.name} ({loader.task}): {len(outputs[loader.name])} '
                    f'images in {time.perf_counter() - start:.1f} s')
    return outputs


def multitask_multi_gpu_test(model, loaders: Sequence[TaskLoader], tmpdir: Optional[str] = None,
                             gpu_collect: bool = False,
                             pre_eval: bool = True) -> Optional['OrderedDict[str, list]']:
    """Distributed version of :func:`multitask_single_gpu_test`.

    Every rank tests its part of each dataset (distributed, non-shuffling,
    padded samplers); the parts are gathered on rank 0 in dataset order.

    Args:
        model: The distributed model.
        loaders: Test loaders built with ``dist=True``.
        tmpdir: Folder for collecting through the file system (created and
            removed here when None); ignored with ``gpu_collect``.
        gpu_collect: Collect with ``all_gather_object`` over the process
            group (NCCL or gloo) instead of the file system.
        pre_eval: Reduce segmentation maps with ``dataset.pre_eval``.

    Returns:
        ``{dataset name: results}`` on rank 0, None on the other ranks.
    """
    model.eval()
    rank, _ = get_dist_info()
    logger = get_root_logger()
    outputs = OrderedDict()
    for loader in loaders:
        start = time.perf_counter()
        part = loader_test(model, loader, pre_eval)
        outputs[loader.name] = collect_results(part, len(loader.dataset), tmpdir=tmpdir,
                                               gpu_collect=gpu_collect)
        if rank == 0:
            logger.info(f'tested {loader.name} ({loader.task}): {len(loader.dataset)} '
                        f'images in {time.perf_counter() - start:.1f} s')
    return outputs if rank == 0 else None


def collect_results(result_part: list, size: int, tmpdir: Optional[str] = None,
                    gpu_collect: bool = False) -> Optional[list]:
    """Gather the per-rank result parts on rank 0 in dataset order.

    The parts come from non-shuffling distributed samplers (rank ``r`` holds
    samples ``r, r + w, r + 2w, ...``, padded to equal length): they are
    interleaved and the padding is dropped.

    Returns:
        The ``size`` results on rank 0, None elsewhere.
    """
    rank, world_size = get_dist_info()
    if world_size == 1:
        return list(result_part)[:size]
    if gpu_collect:
        parts: List = [None] * world_size
        dist.all_gather_object(parts, list(result_part))
    else:
        parts = _collect_parts_in_dir(list(result_part), tmpdir, rank, world_size)
    if rank != 0:
        return None
    ordered = [res for group in zip(*parts) for res in group]
    return ordered[:size]


def _collect_parts_in_dir(part: list, tmpdir: Optional[str], rank: int,
                          world_size: int) -> Optional[List[list]]:
    own_dir = tmpdir is None
    holder = [None]
    if rank == 0:
        if own_dir:
            tmpdir = tempfile.mkdtemp(prefix='rscotr_collect_')
        else:
            os.makedirs(tmpdir, exist_ok=True)
        holder = [tmpdir]
    dist.broadcast_object_list(holder, src=0)
    tmpdir = holder[0]
    with open(osp.join(tmpdir, f'part_{rank}.pkl'), 'wb') as f:
        pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
    dist.barrier()
    parts = None
    if rank == 0:
        parts = []
        for i in range(world_size):
            with open(osp.join(tmpdir, f'part_{i}.pkl'), 'rb') as f:
                parts.append(pickle.load(f))
        if own_dir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        else:
            for i in range(world_size):
                os.remove(osp.join(tmpdir, f'part_{i}.pkl'))
    # keep the other ranks from reusing tmpdir before rank 0 has read it
    dist.barrier()
    return parts

