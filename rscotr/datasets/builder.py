"""Builders of the data loaders and the iteration strategies.

Datasets stay in their upstream registries (a classification dataset is an
mmcls dataset with mmcls pipelines, and so on) and are built by
:func:`rscotr.datasets.tasks.build_task_dataset`. Every loader is made by the
one :func:`build_task_dataloader`, with mmcv's ``collate`` and the same
sampler logic for all tasks.
"""
import random
from functools import partial
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmcv.parallel import collate
from mmcv.utils import Registry, build_from_cfg
from torch.utils.data import DataLoader, Dataset, DistributedSampler, SequentialSampler

from ..utils.dist import get_dist_info

ITERATION_STRATEGIES = Registry('iteration strategy')


def build_iteration_strategy(cfg: Dict, default_args: Optional[Dict] = None):
    """Build an iteration strategy (``dict(type='round_robin', ...)``)."""
    return build_from_cfg(cfg, ITERATION_STRATEGIES, default_args)


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    """Seed numpy, random and torch in a loader worker (distinct per rank and worker)."""
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)


class ResumableDistributedSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` that can start an epoch late.

    ``set_start(n)`` drops the first ``n`` indices of the current epoch's order
    (a function of ``(seed, epoch)``), so a resumed run continues an epoch
    exactly where the checkpoint left it. ``len`` stays the full epoch.

    Each index comes with the seed of its sample's random augmentation, a
    function of ``(seed, epoch, rank, position in the epoch)`` (see
    :class:`SeededSamples`): a sample
    is augmented alike whichever loader worker loads it and whatever that
    worker loaded before, so a run resumed mid-epoch with loader workers
    gets the batches of the uninterrupted run.
    """

    start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self):
        indices = list(super().__iter__())
        seeds = [int(s) for s in np.random.SeedSequence(
            [self.seed, self.epoch, self.rank]).generate_state(len(indices))]
        return iter(list(zip(indices, seeds))[self.start:])


class SeededSamples(Dataset):
    """A training dataset read with ``(index, seed)`` keys of a
    :class:`ResumableDistributedSampler`: the python, numpy and torch random
    states are seeded with ``seed`` while the sample is loaded and augmented,
    and restored afterwards (the caller's random streams are left as they
    were).

    Args:
        dataset: The dataset (``self.dataset``).
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[int, int]):
        idx, seed = key
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            return self.dataset[idx]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def build_task_dataloader(dataset: Dataset,
                          samples_per_gpu: int,
                          workers_per_gpu: int,
                          dist: bool = False,
                          shuffle: bool = True,
                          seed: Optional[int] = None,
                          persistent_workers: bool = True,
                          pin_memory: bool = False,
                          drop_last: bool = False) -> DataLoader:
    """A data loader of one dataset (training or test), the same for every task.

    Training loaders (``shuffle=True``) always use a
    :class:`~torch.utils.data.DistributedSampler` (with one replica when not
    distributed): the order is a function of ``(seed, epoch)`` and
    ``sampler.set_epoch`` reshuffles on restart, and each sample's random
    augmentation is seeded by ``(seed, epoch, rank, position in the epoch)``
    (the loader's dataset is then a :class:`SeededSamples`). Test loaders use
    a sequential sampler, or a non-shuffling distributed sampler (padded to equal parts,
    as the result collection expects).

    Args:
        dataset: The dataset.
        samples_per_gpu: Batch size per process.
        workers_per_gpu: Loader worker processes per process.
        dist: Distributed (one part of the data per rank).
        shuffle: Shuffle (training).
        seed: Seed of the shuffling and of the workers.
        persistent_workers: Keep workers alive across restarts of the loader.
        pin_memory: Pin host memory.
        drop_last: Drop the last incomplete batch.
    """
    rank, world_size = get_dist_info()
    seed = 0 if seed is None else int(seed)
    if shuffle:
        sampler = ResumableDistributedSampler(dataset, num_replicas=world_size if dist else 1,
                                              rank=rank if dist else 0, shuffle=True,
                                              seed=seed)
    elif dist:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
    else:
        sampler = SequentialSampler(dataset)
    init_fn = partial(worker_init_fn, num_workers=workers_per_gpu, rank=rank,
                      seed=seed) if workers_per_gpu > 0 else None
    return DataLoader(
        SeededSamples(dataset) if shuffle else dataset,
        batch_size=samples_per_gpu,
        sampler=sampler,
        num_workers=workers_per_gpu,
        collate_fn=partial(collate, samples_per_gpu=samples_per_gpu),
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=init_fn,
        persistent_workers=persistent_workers and workers_per_gpu > 0)


from . import iteration_strategies  # noqa: E402,F401  (registers the strategies)
