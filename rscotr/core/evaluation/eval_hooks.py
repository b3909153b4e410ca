"""Evaluation hooks over several datasets, with best-checkpoint selection by weighted keys.

Configured by ``evaluation = dict(...)`` (see :func:`rscotr.apis.train_model`)::

    evaluation = dict(
        interval=15000,                 # iterations between evaluations
        save_best=dict(keys={'resisc.accuracy_top-1': 1,
                             'dior.bbox_mAP': 100,
                             'potsdam.mFscore': 100}),
        skip_tasks=[])                  # e.g. ['det'] to skip DIOR

Every evaluation logs ``<dataset>.<metric>`` values (and ``weighted_score``)
to the runner's log buffer, writes them to ``<work_dir>/eval_iter_<n>.json``
and, with ``save_best``, keeps ``best_weighted_score_iter_<n>.pth`` for the
highest ``sum(weight * metric)``.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import torch.distributed as dist
from mmcv.runner import Hook
from mmcv.runner.hooks import LoggerHook
from torch.nn.modules.batchnorm import _BatchNorm

from ...datasets.multitask_loader import TaskLoader
from ...datasets.tasks import TASKS
from ...utils.io import atomic_write_text
from .metrics import evaluate_multitask, parse_score_weights, weighted_score

__all__ = ['MultiTaskEvalHook', 'MultiTaskDistEvalHook']


class MultiTaskEvalHook(Hook):
    """Evaluate every validation dataset with its task (single process).

    Args:
        dataloaders: Validation task loaders.
        interval: Evaluation interval (iterations).
        start: First iteration (1-based) to evaluate at; None: every
            ``interval`` iterations. With ``start <= `` the resumed iteration,
            the model is also evaluated before training continues.
        save_best: ``dict(keys={metric key: weight})`` (or one key) to keep
            the checkpoint with the highest weighted sum; None: no best checkpoint.
        skip_tasks: Tasks (all their datasets) or dataset names not evaluated.
        pre_eval: Reduce segmentation maps per image while testing.
        out_dir: Folder of the best checkpoint and metric files (work_dir by default).
        dump_metrics: Write ``eval_iter_<n>.json`` (every metric) after each evaluation.
        log_per_class: Also put per-class values (``potsdam.IoU.car``) in the
            log buffer; they are always in the upstream tables and the json.
    """

    def __init__(self,
                 dataloaders: Sequence[TaskLoader],
                 interval: int = 1,
                 start: Optional[int] = None,
                 save_best: Union[None, str, Dict] = None,
                 skip_tasks: Sequence[str] = (),
                 pre_eval: bool = True,
                 out_dir: Optional[str] = None,
                 dump_metrics: bool = True,
                 log_per_class: bool = False):
        if interval <= 0:
            raise ValueError(f'interval must be positive, got {interval}')
        if start is not None and start < 0:
            raise ValueError(f'start must be non-negative, got {start}')
        all_names = [loader.name for loader in dataloaders]
        unknown = set(skip_tasks) - set(TASKS) - set(all_names)
        if unknown:
            raise KeyError(f'unknown tasks or datasets in skip_tasks: {sorted(unknown)}; '
                           f'tasks are {list(TASKS)}, datasets {all_names}')
        self.loaders = [loader for loader in dataloaders
                        if loader.task not in skip_tasks and loader.name not in skip_tasks]
        self.skip_tasks = tuple(skip_tasks)
        self.interval = interval
        self.start = start
        self.pre_eval = pre_eval
        self.out_dir = out_dir
        self.dump_metrics = dump_metrics
        self.log_per_class = log_per_class
        self.initial_flag = True
        self.score_weights = self._check_weights(parse_score_weights(save_best), all_names)
        self.best_ckpt_path: Optional[str] = None
        self.last_metrics: Dict = {}

    def _check_weights(self, weights: Optional[Dict[str, float]],
                       all_names: Sequence[str]) -> Optional[Dict[str, float]]:
        if weights is None:
            return None
        names = {loader.name for loader in self.loaders}
        kept = {}
        for key, weight in weights.items():
            dataset = key.split('.', 1)[0]
            if dataset not in all_names:
                raise KeyError(f'save_best key {key!r}: no validation dataset {dataset!r} '
                               f'(datasets: {list(all_names)}); keys are <dataset>.<metric>')
            if dataset in names:
                kept[key] = weight
        if not kept:
            raise ValueError(f'save_best keys {list(weights)} all belong to skipped tasks')
        return kept

    # ------------------------------------------------------------------ hook API
    def before_run(self, runner) -> None:
        if self.out_dir is None:
            self.out_dir = runner.work_dir
        if self.score_weights is not None:
            if runner.meta is None:
                runner.meta = dict()
            runner.meta.setdefault('hook_msgs', dict())
            self.best_ckpt_path = runner.meta['hook_msgs'].get('best_ckpt')
        runner.logger.info(
            f'evaluation every {self.interval} iterations '
            f'on {[loader.name for loader in self.loaders]}'
            + (f' (skipping tasks {list(self.skip_tasks)})' if self.skip_tasks else '')
            + (f'; best checkpoint by {self.score_weights}' if self.score_weights else ''))

    def before_train_iter(self, runner) -> None:
        if not self.initial_flag:
            return
        if self.start is not None and runner.iter >= self.start:
            self._evaluate_now(runner)
        self.initial_flag = False

    def after_train_iter(self, runner) -> None:
        if self._should_evaluate(runner):
            self._evaluate_now(runner)

    # ------------------------------------------------------------------ internals
    def _should_evaluate(self, runner) -> bool:
        current = runner.iter
        if self.start is None:
            return self.every_n_iters(runner, self.interval)
        if current + 1 < self.start:
            return False
        return (current + 1 - self.start) % self.interval == 0

    def _evaluate_now(self, runner) -> None:
        # flush the training logs first so that they do not mix with the metrics
        for hook in runner.hooks:
            if isinstance(hook, LoggerHook):
                hook.after_train_iter(runner)
        runner.log_buffer.clear()
        self._do_evaluate(runner)

    def _do_evaluate(self, runner) -> None:
        from ...apis.test import multitask_single_gpu_test  # the apis import this module
        results = multitask_single_gpu_test(runner.model, self.loaders, pre_eval=self.pre_eval)
        self.evaluate(runner, results)

    def evaluate(self, runner, results: Dict[str, list]) -> Dict:
        """Evaluate, log, dump and keep the best checkpoint; returns the metrics."""
        metrics = evaluate_multitask(results, self.loaders, logger=runner.logger)
        score = None
        if self.score_weights is not None:
            score = weighted_score(metrics, self.score_weights)
        for key, value in metrics.items():
            if self.log_per_class or '.' not in key.split('.', 1)[1]:
                runner.log_buffer.output[key] = value
        if score is not None:
            runner.log_buffer.output['weighted_score'] = score
        runner.log_buffer.output['eval_iter_num'] = sum(len(loader) for loader in self.loaders)
        runner.log_buffer.ready = True
        self.last_metrics = dict(metrics)
        if self.dump_metrics:
            self._dump(runner, metrics, score)
        if score is not None:
            self._save_best(runner, score, metrics)
        return metrics

    def _dump(self, runner, metrics: Dict, score: Optional[float]) -> None:
        path = osp.join(self.out_dir, f'eval_iter_{runner.iter + 1}.json')
        atomic_write_text(path, json.dumps(
            dict(iter=runner.iter + 1, metrics=metrics, weighted_score=score), indent=2,
            default=str))

    def _save_best(self, runner, score: float, metrics: Dict) -> None:
        msgs = runner.meta.setdefault('hook_msgs', dict())
        best = msgs.get('best_score', -math.inf)
        if not score > best:
            return
        previous = self.best_ckpt_path
        name = f'best_weighted_score_iter_{runner.iter + 1}.pth'
        self.best_ckpt_path = osp.join(self.out_dir, name)
        msgs.update(best_score=score, best_ckpt=self.best_ckpt_path,
                    best_metrics={k: metrics.get(k) for k in self.score_weights})
        # the new best is written (atomically) before the previous one is removed:
        # a kill in between leaves two best checkpoints, never none
        runner.save_checkpoint(self.out_dir, filename_tmpl=name, create_symlink=False)
        if previous and previous != self.best_ckpt_path and osp.isfile(previous):
            runner.logger.info(f'removing the previous best checkpoint {previous}')
            os.remove(previous)
        runner.logger.info(f'best weighted score {score:.4f} at iteration {runner.iter + 1}: '
                           f'saved {name}')


class MultiTaskDistEvalHook(MultiTaskEvalHook):
    """Distributed :class:`MultiTaskEvalHook`: every rank tests its part, rank 0 evaluates.

    Args:
        tmpdir: Folder for collecting results (``<work_dir>/.eval_hook`` by default).
        gpu_collect: Collect results over the process group instead of files.
        broadcast_bn_buffer: Copy rank 0's BatchNorm statistics to every rank first.
        **kwargs: :class:`MultiTaskEvalHook` arguments.
    """

    def __init__(self, *args, tmpdir: Optional[str] = None, gpu_collect: bool = False,
                 broadcast_bn_buffer: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.tmpdir = tmpdir
        self.gpu_collect = gpu_collect
        self.broadcast_bn_buffer = broadcast_bn_buffer

    def _do_evaluate(self, runner) -> None:
        from ...apis.test import multitask_multi_gpu_test  # the apis import this module
        if self.broadcast_bn_buffer:
            for module in runner.model.modules():
                if isinstance(module, _BatchNorm) and module.track_running_stats:
                    dist.broadcast(module.running_var, 0)
                    dist.broadcast(module.running_mean, 0)
        tmpdir = self.tmpdir or osp.join(runner.work_dir, '.eval_hook')
        results = multitask_multi_gpu_test(runner.model, self.loaders, tmpdir=tmpdir,
                                           gpu_collect=self.gpu_collect, pre_eval=self.pre_eval)
        if runner.rank == 0:
            self.evaluate(runner, results)
