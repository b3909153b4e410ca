"""Training hooks of the co-training runner."""
from typing import Dict, Optional

from mmcv.runner import HOOKS, Hook


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
    strategy's state, the loaders' epochs and step counts are put in
    ``runner.meta['multitask_loader']``. ``resume_state`` (the state saved in
    the checkpoint a run resumes from) is restored before training starts.

    Args:
        loader: The :class:`~rscotr.datasets.MultiTaskLoader`.
        resume_state: Its state to restore, or None.
    """

    def __init__(self, loader, resume_state: Optional[Dict] = None):
        self.loader = loader
        self.resume_state = resume_state

    def before_run(self, runner) -> None:
        if self.resume_state is not None:
            self.loader.load_state_dict(self.resume_state)
            runner.logger.info('restored the co-training loader state (loader epochs '
                               f'{self.resume_state.get("epochs")}, steps '
                               f'{self.resume_state.get("steps")})')

    def after_train_iter(self, runner) -> None:
        if runner.meta is None:
            runner.meta = dict()
        runner.meta['multitask_loader'] = self.loader.state_dict()
