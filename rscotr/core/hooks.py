"""Training hooks of the co-training runner."""
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmcv.runner import HOOKS, Hook


def get_rng_state() -> Dict:
    """The global random states (python, numpy, torch CPU) of this process.

    Plain lists and a tensor only, so that ``torch.load(weights_only=True)``
    reads the checkpoint.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return dict(python=[version, list(internal), gauss_next],
                numpy=[kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
                torch=torch.get_rng_state())


def set_rng_state(state: Dict) -> None:
    """Restore :func:`get_rng_state`."""
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.as_tensor(state['torch'], dtype=torch.uint8))


@HOOKS.register_module()
class LogWindowHook(Hook):
    """Make logged values the means over one logging window only.

    mmcv's logger hooks average the last ``interval`` values *of each key*. In
    co-training a task's keys appear only in that task's steps, so that
    average would reach back over several windows, and a key of a task that
    was not trained in the window would be logged again. Clearing the log
    history right after the loggers ran (this hook has the lowest priority)
    makes every logged value the mean over the steps of that window that had
    it.

    Args:
        interval: The loggers' interval (``log_config.interval``).
    """

    def __init__(self, interval: int):
        self.interval = interval

    def after_train_iter(self, runner) -> None:
        if self.every_n_iters(runner, self.interval):
            runner.log_buffer.clear()


@HOOKS.register_module()
class MultiTaskLoaderStateHook(Hook):
    """Keep the co-training loader's state in ``runner.meta`` (saved in checkpoints).

    After every iteration (before the checkpoint hook runs) the iteration
    strategy's state, the loaders' epochs, positions in their epochs and step
    counts are put in ``runner.meta['multitask_loader']``, and the global
    random states (python, numpy, torch CPU: the model's random draws; data
    augmentation has a seed per sample, see
    :class:`~rscotr.datasets.builder.SeededSamples`) in
    ``runner.meta['rng_state']``.
    ``resume_state`` and ``resume_rng`` (the states saved in the checkpoint a
    run resumes from) are restored before training starts, so a resumed run
    trains on the same batches as the uninterrupted run. The random states
    are per process; a resumed distributed run restores each rank from rank
    0's state.

    Args:
        loader: The :class:`~rscotr.datasets.MultiTaskLoader`.
        resume_state: Its state to restore, or None.
    """

    def __init__(self, loader, resume_state: Optional[Dict] = None,
                 resume_rng: Optional[Dict] = None):
        self.loader = loader
        self.resume_state = resume_state
        self.resume_rng = resume_rng

    def before_run(self, runner) -> None:
        if self.resume_state is not None:
            self.loader.load_state_dict(self.resume_state)
            runner.logger.info('restored the co-training loader state (loader epochs '
                               f'{self.resume_state.get("epochs")}, steps '
                               f'{self.resume_state.get("steps")}, positions '
                               f'{self.resume_state.get("positions")})')
        if self.resume_rng is not None:
            set_rng_state(self.resume_rng)

    def after_train_iter(self, runner) -> None:
        if runner.meta is None:
            runner.meta = dict()
        runner.meta['multitask_loader'] = self.loader.state_dict()
        runner.meta['rng_state'] = get_rng_state()
