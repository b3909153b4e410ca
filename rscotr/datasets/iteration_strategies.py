"""Iteration strategies: which loader provides the next co-training batch.

Each strategy is a tiny registered object (README: Iteration strategies) built from
``iteration_strategy = dict(type=..., ...)`` in a config. Calling it returns
the index of the next loader. Random strategies draw from their own seeded
:class:`torch.Generator`, so a run is reproducible and
:meth:`~BaseIterationStrategy.state_dict` /
:meth:`~BaseIterationStrategy.load_state_dict` resume the exact sequence.

In distributed training only rank 0 calls the strategy; the
:class:`~rscotr.datasets.multitask_loader.MultiTaskLoader` broadcasts the
choice so that every rank trains the same task in the same step.

Loader references in the arguments (``idx``, ``sequence``) may be indices
into the loader order or the loaders' names (``'resisc'``); ``p`` may be a
list in loader order or a ``{name: weight}`` dict.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch

from .builder import ITERATION_STRATEGIES

LoaderRef = Union[int, str]

__all__ = [
    'BaseIterationStrategy', 'ConstantIterationStrategy', 'RoundRobinIterationStrategy',
    'RepeatedSequenceIterationStrategy', 'RandomIterationStrategy',
    'WeightedRandomIterationStrategy', 'SizeProportionalIterationStrategy'
]


class BaseIterationStrategy:
    """Base of the iteration strategies.

    Args:
        num_loaders: Number of loaders to choose from.
        names: Loader names in loader order (to resolve name references).
        dataset_sizes: Samples per dataset, in loader order.
        epoch_lengths: Batches per epoch of each loader (per rank).
        seed: Seed of the strategy's random generator.
    """

    #: Whether every loader must be exhausted before any loader restarts.
    exhaust_all: bool = False

    def __init__(self,
                 num_loaders: int,
                 names: Optional[Sequence[str]] = None,
                 dataset_sizes: Optional[Sequence[int]] = None,
                 epoch_lengths: Optional[Sequence[int]] = None,
                 seed: int = 0):
        if num_loaders < 1:
            raise ValueError('an iteration strategy needs at least one loader')
        self.num_loaders = int(num_loaders)
        self.names = list(names) if names is not None else [str(i) for i in range(num_loaders)]
        if len(self.names) != self.num_loaders:
            raise ValueError(f'{len(self.names)} names for {self.num_loaders} loaders')
        self.dataset_sizes = _check_lengths('dataset_sizes', dataset_sizes, self.num_loaders)
        self.epoch_lengths = _check_lengths('epoch_lengths', epoch_lengths, self.num_loaders)
        self.seed = int(seed)
        self.generator = torch.Generator()
        self.generator.manual_seed(self.seed)

    # ------------------------------------------------------------------ API
    def __call__(self) -> int:
        """Index of the loader that provides the next batch."""
        idx = int(self.next_index())
        if not 0 <= idx < self.num_loaders:
            raise RuntimeError(f'{type(self).__name__} chose loader {idx} of {self.num_loaders}')
        return idx

    def next_index(self) -> int:
        raise NotImplementedError

    def mark_exhausted(self, idx: int) -> None:
        """Called (on every rank) when loader ``idx`` ran out in ``exhaust_all`` mode."""

    def all_exhausted(self) -> bool:
        """Whether the current round is over (``exhaust_all`` strategies)."""
        return True

    def new_round(self) -> None:
        """Start a new round after every loader has been exhausted."""

    def state_dict(self) -> Dict:
        """Everything needed to continue the exact same sequence."""
        return dict(rng=self.generator.get_state())

    def load_state_dict(self, state: Dict) -> None:
        self.generator.set_state(state['rng'])

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_loaders={self.num_loaders}, seed={self.seed})'

    # ------------------------------------------------------------------ helpers
    def resolve(self, ref: LoaderRef) -> int:
        """Loader index of a reference (index or name)."""
        if isinstance(ref, str):
            if ref not in self.names:
                raise KeyError(f'unknown loader {ref!r}; loaders are {self.names}')
            return self.names.index(ref)
        idx = int(ref)
        if not 0 <= idx < self.num_loaders:
            raise IndexError(f'loader index {idx} out of range for {self.num_loaders} loaders')
        return idx

    def draw(self, weights: torch.Tensor) -> int:
        """One index drawn with probability proportional to ``weights``."""
        return int(torch.multinomial(weights, 1, generator=self.generator).item())


def _check_lengths(name: str, values: Optional[Sequence[int]], n: int) -> Optional[List[int]]:
    if values is None:
        return None
    values = [int(v) for v in values]
    if len(values) != n:
        raise ValueError(f'{name} has {len(values)} entries for {n} loaders')
    return values


@ITERATION_STRATEGIES.register_module(name='constant')
class ConstantIterationStrategy(BaseIterationStrategy):
    """Always the same loader: single-task training through the co-training machinery.

    Args:
        idx: The loader (index or name).
    """

    def __init__(self, num_loaders: int, idx: LoaderRef = 0, **kwargs):
        super().__init__(num_loaders, **kwargs)
        self.idx = self.resolve(idx)

    def next_index(self) -> int:
        return self.idx


@ITERATION_STRATEGIES.register_module(name='repeated_sequence')
class RepeatedSequenceIterationStrategy(BaseIterationStrategy):
    """A fixed sequence of loaders, repeated (e.g. ``[1, 2, 2, 0, 0, 0]``).

    Args:
        sequence: Loader references (indices or names), at least one.
    """

    def __init__(self, num_loaders: int, sequence: Sequence[LoaderRef] = (), **kwargs):
        super().__init__(num_loaders, **kwargs)
        if len(sequence) == 0:
            raise ValueError('repeated_sequence needs a non-empty sequence')
        self.sequence = [self.resolve(ref) for ref in sequence]
        self.position = 0

    def next_index(self) -> int:
        idx = self.sequence[self.position % len(self.sequence)]
        self.position += 1
        return idx

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), position=self.position)

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        self.position = int(state['position'])


@ITERATION_STRATEGIES.register_module(name='round_robin')
class RoundRobinIterationStrategy(RepeatedSequenceIterationStrategy):
    """0, 1, ..., n-1, 0, 1, ... (the default): every loader once, repeated."""

    def __init__(self, num_loaders: int, **kwargs):
        super().__init__(num_loaders, sequence=range(num_loaders), **kwargs)


@ITERATION_STRATEGIES.register_module(name='random')
class RandomIterationStrategy(BaseIterationStrategy):
    """Uniformly random loader at every step."""

    def next_index(self) -> int:
        return self.draw(torch.ones(self.num_loaders))


@ITERATION_STRATEGIES.register_module(name='weighted_random')
class WeightedRandomIterationStrategy(BaseIterationStrategy):
    """Random loader with fixed probabilities.

    Args:
        p: Non-negative weights in loader order, or ``{name: weight}``
            (missing names weigh 0); normalised to sum 1.
        batch_weighted: Use ``p`` proportional to the batches per epoch of
            each loader (394 / 5862 / 1728 in the reference) instead of ``p``.
    """

    def __init__(self,
                 num_loaders: int,
                 p: Optional[Union[Sequence[float], Dict[str, float]]] = None,
                 batch_weighted: bool = False,
                 **kwargs):
        super().__init__(num_loaders, **kwargs)
        if batch_weighted == (p is not None):
            raise ValueError('weighted_random takes either p or batch_weighted=True')
        if batch_weighted:
            if self.epoch_lengths is None:
                raise ValueError('batch_weighted needs the loaders\' epoch lengths')
            weights = list(self.epoch_lengths)
        elif isinstance(p, dict):
            weights = [0.0] * num_loaders
            for ref, w in p.items():
                weights[self.resolve(ref)] = w
        else:
            weights = list(p)
        self.p = _normalise(weights, num_loaders, 'weighted_random p')

    def next_index(self) -> int:
        return self.draw(self.p)

    def __repr__(self) -> str:
        p = [round(v, 4) for v in self.p.tolist()]
        return f'{type(self).__name__}(p={p}, seed={self.seed})'


@ITERATION_STRATEGIES.register_module(name='size_proportional')
class SizeProportionalIterationStrategy(BaseIterationStrategy):
    """Random loader with ``p`` proportional to dataset length; rounds exhaust every loader.

    A loader that runs out is not drawn again (the others keep their relative
    probabilities) until every loader has run out; then all loaders restart
    together and a new round begins.
    """

    exhaust_all = True

    def __init__(self, num_loaders: int, **kwargs):
        super().__init__(num_loaders, **kwargs)
        if self.dataset_sizes is None:
            raise ValueError('size_proportional needs the dataset sizes')
        self.p = _normalise(self.dataset_sizes, num_loaders, 'dataset sizes')
        self.exhausted = [False] * num_loaders

    def next_index(self) -> int:
        weights = self.p.clone()
        weights[torch.tensor(self.exhausted)] = 0
        if weights.sum() <= 0:
            raise RuntimeError('every loader is exhausted: call new_round() first')
        return self.draw(weights)

    def mark_exhausted(self, idx: int) -> None:
        self.exhausted[idx] = True

    def all_exhausted(self) -> bool:
        return all(self.exhausted)

    def new_round(self) -> None:
        self.exhausted = [False] * self.num_loaders

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), exhausted=list(self.exhausted))

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        self.exhausted = [bool(v) for v in state['exhausted']]


def _normalise(weights: Sequence[float], n: int, what: str) -> torch.Tensor:
    p = torch.tensor([float(w) for w in weights], dtype=torch.float64)
    if p.numel() != n:
        raise ValueError(f'{what} has {p.numel()} entries for {n} loaders')
    if (p < 0).any() or not torch.isfinite(p).all() or p.sum() <= 0:
        raise ValueError(f'{what} must be finite, non-negative and not all zero: {list(weights)}')
    return p / p.sum()
