"""One data loader per dataset, and the co-training loader that picks among them.

Config layout (``data`` in a config; see
``configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py``)::

    data = dict(
        train=dict(
            resisc=dict(task='cls', dataset=resisc_train, samples_per_gpu=16,
                        workers_per_gpu=2),
            dior=dict(task='det', dataset=dior_train, samples_per_gpu=1, ...),
            potsdam=dict(task='seg', dataset=potsdam_train, samples_per_gpu=2, ...)),
        val=dict(resisc=dict(task='cls', dataset=resisc_val, eval_cfg=dict(...)), ...),
        test=dict(...))
    iteration_strategy = dict(type='round_robin')

The key of an entry is the dataset's name: it tags every batch (``dataset``)
and prefixes logs and metrics. The entries' order is the loader order that
iteration strategies index. An entry set to ``None`` is skipped, so a derived
config removes a dataset with ``data = dict(train=dict(dior=None))``.

Entry keys: ``task`` ('cls', 'det' or 'seg'), ``head`` (the name of the
model head the dataset feeds; default: the head named like the task, so
``model.heads.det`` for a ``'det'`` entry; several datasets may share a head),
``dataset`` (upstream dataset config), ``samples_per_gpu`` (default 1),
``workers_per_gpu`` (default 2),
``persistent_workers`` and ``shuffle`` (default: True for training loaders,
False otherwise), ``eval_cfg`` (keyword arguments of the dataset's
``evaluate``; val/test only, updating the task defaults of
:data:`rscotr.core.evaluation.TASK_EVAL_DEFAULTS`).
"""
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader

from ..utils.dist import broadcast_int, get_dist_info
from ..utils.logger import get_root_logger
from .builder import SeededSamples, build_iteration_strategy, build_task_dataloader
from .tasks import build_task_dataset, check_task

_ENTRY_KEYS = {'name', 'task', 'head', 'dataset', 'samples_per_gpu', 'workers_per_gpu',
               'persistent_workers', 'shuffle', 'eval_cfg'}


class TaskLoader:
    """The data loader of one dataset, tagged with the dataset's name and task.

    Args:
        name: Dataset name (``'resisc'``), used in batch tags, logs and metric keys.
        task: 'cls', 'det' or 'seg'.
        dataloader: The loader.
        eval_cfg: Keyword arguments of ``dataset.evaluate`` (val/test loaders).
        head: Name of the model head the dataset feeds (default: ``task``).
    """

    def __init__(self, name: str, task: str, dataloader: DataLoader,
                 eval_cfg: Optional[Dict] = None, head: Optional[str] = None):
        check_task(task, f'loader {name!r}')
        self.name = name
        self.task = task
        self.head = head or task
        self.dataloader = dataloader
        self.eval_cfg = dict(eval_cfg or {})
        self.epoch = 0
        #: batches yielded in the current epoch (saved for exact resuming)
        self.position = 0
        self._resume_position = 0
        self._iterator: Optional[Iterator] = None

    @property
    def dataset(self):
        """The dataset (of a training loader: the one its :class:`SeededSamples` reads)."""
        dataset = self.dataloader.dataset
        return dataset.dataset if isinstance(dataset, SeededSamples) else dataset

    def __len__(self) -> int:
        """Batches per epoch (of this rank)."""
        return len(self.dataloader)

    def next_batch(self, restart: bool = True) -> Dict:
        """The next collated batch, plus ``task``, ``dataset`` and ``head`` tags.

        Args:
            restart: Restart the loader (next epoch) when it runs out; when
                False, raise :class:`StopIteration` instead.
        """
        if self._iterator is None:
            self._iterator = self._resumed_iterator() if self._resume_position else iter(
                self.dataloader)
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = None
            if not restart:
                raise
            self.restart()
            batch = next(self._iterator)
        self.position += 1
        batch = dict(batch)
        batch['task'] = self.task
        batch['dataset'] = self.name
        batch['head'] = self.head
        return batch

    def restart(self) -> None:
        """Start the next epoch (distributed samplers reshuffle with the epoch)."""
        self.epoch += 1
        self.set_epoch(self.epoch)
        self._iterator = iter(self.dataloader)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.position = 0
        self._resume_position = 0
        sampler = self.dataloader.sampler
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(epoch)
        if hasattr(sampler, 'set_start'):
            sampler.set_start(0)

    def resume_at(self, epoch: int, position: int) -> None:
        """Continue epoch ``epoch`` after its first ``position`` batches.

        The order of an epoch is a function of (seed, epoch) (see
        :func:`~rscotr.datasets.builder.build_task_dataloader`), so the
        resumed loader yields exactly the batches the uninterrupted loader
        would have yielded. Resumable samplers skip the first
        ``position * batch_size`` indices without loading them; other
        samplers are fast-forwarded by loading and dropping batches.
        """
        self.set_epoch(epoch)
        self._iterator = None
        self._resume_position = int(position)
        self.position = int(position)

    def _resumed_iterator(self) -> Iterator:
        skip, self._resume_position = self._resume_position, 0
        sampler = self.dataloader.sampler
        # the uninterrupted run drew the loader's base seed from the global torch
        # generator before the checkpoint: do not draw it a second time
        with torch.random.fork_rng(devices=[]):
            if hasattr(sampler, 'set_start'):
                sampler.set_start(skip * self.dataloader.batch_size)
                return iter(self.dataloader)
            iterator = iter(self.dataloader)
            for _ in range(skip):
                next(iterator, None)
            return iterator

    def __repr__(self) -> str:
        head = '' if self.head == self.task else f'head={self.head!r}, '
        return (f'TaskLoader(name={self.name!r}, task={self.task!r}, {head}'
                f'samples={len(self.dataset)}, batches={len(self)})')


class MultiTaskLoader:
    """An endless iterator of tagged batches, one loader per step.

    At every step the iteration strategy chooses a loader (rank 0 chooses and
    broadcasts the choice, so every rank trains the same task in the same
    step) and that loader yields the batch. A loader that runs out restarts
    with the next epoch, except under an ``exhaust_all`` strategy
    (size_proportional), where exhausted loaders wait until all have run out
    and then all restart together.

    Args:
        loaders: The task loaders, in strategy index order.
        strategy: An iteration strategy, or its config (built with the
            loaders' names, dataset sizes, epoch lengths and ``seed``).
        seed: Seed of the strategy when built from a config without one.
    """

    def __init__(self, loaders: Sequence[TaskLoader], strategy: Union[Dict, object] = None,
                 seed: int = 0):
        if not loaders:
            raise ValueError('MultiTaskLoader needs at least one loader')
        names = [loader.name for loader in loaders]
        if len(set(names)) != len(names):
            raise ValueError(f'duplicate loader names {names}')
        empty = [loader.name for loader in loaders if len(loader) == 0]
        if empty:
            raise ValueError(f'loaders without a single batch: {empty}')
        self.loaders = list(loaders)
        if strategy is None:
            strategy = dict(type='round_robin')
        if isinstance(strategy, dict):
            strategy = dict(strategy)
            strategy.setdefault('seed', seed)
            strategy = build_iteration_strategy(
                strategy,
                default_args=dict(num_loaders=len(loaders), names=names,
                                  dataset_sizes=[len(loader.dataset) for loader in loaders],
                                  epoch_lengths=[len(loader) for loader in loaders]))
        if strategy.num_loaders != len(loaders):
            raise ValueError(f'the strategy expects {strategy.num_loaders} loaders, '
                             f'got {len(loaders)}')
        self.strategy = strategy
        self.steps = [0] * len(loaders)
        self.last_index: Optional[int] = None

    @property
    def names(self) -> List[str]:
        return [loader.name for loader in self.loaders]

    @property
    def epoch(self) -> int:
        """Kept at 0: the runner is iteration based (each loader has its own epochs)."""
        return 0

    def __iter__(self) -> 'MultiTaskLoader':
        return self

    def __len__(self) -> int:
        """Batches in one pass over every loader."""
        return sum(len(loader) for loader in self.loaders)

    def _choose(self) -> int:
        rank, _ = get_dist_info()
        idx = self.strategy() if rank == 0 else -1
        return broadcast_int(idx, src=0)

    def __next__(self) -> Dict:
        exhaust_all = self.strategy.exhaust_all
        while True:
            idx = self._choose()
            try:
                batch = self.loaders[idx].next_batch(restart=not exhaust_all)
                break
            except StopIteration:
                # identical on every rank: equal-length samplers run out together
                self.strategy.mark_exhausted(idx)
                if self.strategy.all_exhausted():
                    self.strategy.new_round()
                    for loader in self.loaders:
                        loader.restart()
        self.steps[idx] += 1
        self.last_index = idx
        return batch

    def state_dict(self) -> Dict:
        """Strategy state, per-loader epochs and step counts (for resuming)."""
        return dict(strategy=self.strategy.state_dict(),
                    epochs={loader.name: loader.epoch for loader in self.loaders},
                    positions={loader.name: loader.position for loader in self.loaders},
                    steps={loader.name: n for loader, n in zip(self.loaders, self.steps)})

    def load_state_dict(self, state: Dict) -> None:
        """Restore :meth:`state_dict`.

        Every loader continues its saved epoch after the saved number of
        batches (``positions``; states saved before positions were recorded
        restart the saved epochs from their first batch).
        """
        self.strategy.load_state_dict(state['strategy'])
        positions = state.get('positions', {})
        for i, loader in enumerate(self.loaders):
            loader.resume_at(int(state['epochs'].get(loader.name, 0)),
                             int(positions.get(loader.name, 0)))
            self.steps[i] = int(state['steps'].get(loader.name, 0))

    def __repr__(self) -> str:
        lines = [f'MultiTaskLoader(strategy={self.strategy!r},']
        lines += [f'    {loader!r},' for loader in self.loaders]
        return '\n'.join(lines) + ')'


def parse_loader_cfgs(cfg: Union[Dict, Sequence[Dict]]) -> List[Dict]:
    """Loader entries in order, each with its ``name``; ``None`` entries skipped.

    Accepts the ``{name: entry}`` layout of the configs, or a list of entries
    that carry a ``name``.
    """
    if isinstance(cfg, dict):
        items = [(name, entry) for name, entry in cfg.items()]
    else:
        items = [(entry.get('name') if entry is not None else None, entry) for entry in cfg]
    entries = []
    for name, entry in items:
        if entry is None:
            continue
        if not name:
            raise ValueError('every loader entry needs a name')
        entry = dict(entry)
        if entry.get('name', name) != name:
            raise ValueError(f'loader {name!r} has name {entry["name"]!r}')
        entry['name'] = name
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise KeyError(f'loader {name!r}: unknown keys {sorted(unknown)}; '
                           f'allowed: {sorted(_ENTRY_KEYS)}')
        for key in ('task', 'dataset'):
            if key not in entry:
                raise KeyError(f'loader {name!r} has no {key!r}')
        entries.append(entry)
    if not entries:
        raise ValueError('no datasets configured')
    return entries


def build_task_loaders(cfg: Union[Dict, Sequence[Dict]],
                       train: bool,
                       dist: bool = False,
                       seed: Optional[int] = None,
                       default_args: Optional[Dict] = None) -> List[TaskLoader]:
    """Build the datasets and loaders of ``data.train`` / ``data.val`` / ``data.test``.

    Args:
        cfg: The ``{name: entry}`` dict (see the module docstring).
        train: Training loaders (shuffled, training pipelines) or test loaders
            (datasets built with ``test_mode=True``, not shuffled).
        dist: Distributed samplers.
        seed: Seed of shuffling and loader workers.
        default_args: Extra arguments for every dataset builder.
    """
    loaders = []
    for entry in parse_loader_cfgs(cfg):
        dataset_cfg = dict(entry['dataset'])
        if not train:
            dataset_cfg.setdefault('test_mode', True)
        dataset = build_task_dataset(dataset_cfg, entry['task'], default_args)
        samples_per_gpu = int(entry.get('samples_per_gpu', 1))
        dataloader = build_task_dataloader(
            dataset,
            samples_per_gpu=samples_per_gpu,
            workers_per_gpu=int(entry.get('workers_per_gpu', 2)),
            dist=dist,
            shuffle=bool(entry.get('shuffle', train)),
            seed=seed,
            persistent_workers=bool(entry.get('persistent_workers', train)))
        loaders.append(TaskLoader(entry['name'], entry['task'], dataloader,
                                  eval_cfg=entry.get('eval_cfg'), head=entry.get('head')))
    return loaders


def build_multitask_loader(cfg: Union[Dict, Sequence[Dict]],
                           strategy: Optional[Dict] = None,
                           dist: bool = False,
                           seed: Optional[int] = None) -> MultiTaskLoader:
    """The co-training loader of ``data.train`` with ``iteration_strategy``."""
    loaders = build_task_loaders(cfg, train=True, dist=dist, seed=seed)
    loader = MultiTaskLoader(loaders, strategy, seed=0 if seed is None else seed)
    get_root_logger().info(f'co-training loader: {loader!r}')
    return loader
