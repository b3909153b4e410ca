"""Evaluation of per-dataset results and the ``<dataset>.<metric>`` keys.

Each dataset is evaluated by its own upstream ``evaluate`` with the arguments
of its task (:data:`TASK_EVAL_DEFAULTS`, updated by the loader's
``eval_cfg``); every returned metric is prefixed with the dataset name:

- cls (mmcls): ``resisc.accuracy_top-1``, ``resisc.accuracy_top-5`` (percent);
- det (mmdet COCO, IoU 0.5 only, class-wise): ``dior.bbox_mAP`` (= AP@0.5,
  0..1), ``dior.bbox_mAP_50``, ``dior.bbox_mAP_s/m/l``, and ``dior.protocol``
  (a string, ``'all-images'`` or ``'release-images-with-boxes'``: whether
  images without boxes were evaluated);
- seg (mmseg): ``potsdam.aAcc``, ``potsdam.mIoU``, ``potsdam.mFscore``,
  ``potsdam.mPrecision``, ``potsdam.mRecall`` and per-class values (0..1),
  and ``potsdam.protocol`` (a string, ``'release-6class'`` or ``'5class'``,
  logged and written to the json with the figures).
"""
import copy
import warnings
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from ...datasets.multitask_loader import TaskLoader

#: ``evaluate`` arguments per task (README: Results).
TASK_EVAL_DEFAULTS: Dict[str, Dict] = {
    'cls': dict(metric='accuracy', metric_options=dict(topk=(1, 5))),
    'det': dict(metric='bbox', classwise=True, iou_thrs=[0.5],
                metric_items=['mAP', 'mAP_50', 'mAP_s', 'mAP_m', 'mAP_l']),
    'seg': dict(metric=['mIoU', 'mFscore']),
}


def task_eval_kwargs(loader: TaskLoader) -> Dict:
    """``evaluate`` arguments of a loader: the task defaults, updated by its ``eval_cfg``."""
    kwargs = copy.deepcopy(TASK_EVAL_DEFAULTS[loader.task])
    kwargs.update(copy.deepcopy(loader.eval_cfg))
    if kwargs.get('iou_thrs') is not None:
        # pycocotools compares ``iouThr == params.iouThrs``: it must be an array
        kwargs['iou_thrs'] = np.asarray(kwargs['iou_thrs'], dtype=np.float64)
    return kwargs


def evaluate_multitask(results: Mapping[str, list], loaders: Sequence[TaskLoader],
                       logger=None) -> 'OrderedDict[str, object]':
    """Evaluate every dataset that has results.

    Args:
        results: ``{dataset name: per-image results}``.
        loaders: The test loaders (their datasets evaluate).
        logger: Logger for the upstream result tables.

    Returns:
        OrderedDict: ``{'<dataset>.<metric>': value}``.
    """
    metrics = OrderedDict()
    for loader in loaders:
        if loader.name not in results:
            continue
        res = loader.dataset.evaluate(results[loader.name], logger=logger,
                                      **task_eval_kwargs(loader))
        for key, value in res.items():
            metrics[f'{loader.name}.{key}'] = _plain(value)
    return metrics


def _plain(value):
    """numpy scalars -> Python numbers (JSON- and log-friendly)."""
    if hasattr(value, 'item') and getattr(value, 'ndim', 0) == 0:
        return value.item()
    return value


def parse_score_weights(save_best: Union[None, str, Dict]) -> Optional[Dict[str, float]]:
    """``{metric key: weight}`` of a ``save_best`` setting.

    Accepts None, a single key (weight 1), ``{key: weight}`` or
    ``dict(keys={key: weight})``.
    """
    if save_best is None:
        return None
    if isinstance(save_best, str):
        return {save_best: 1.0}
    weights = save_best.get('keys', save_best) if isinstance(save_best, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        raise TypeError(f'save_best must be a key or dict(keys={{key: weight}}), got {save_best!r}')
    return {str(k): float(v) for k, v in weights.items()}


def weighted_score(metrics: Mapping[str, object], weights: Mapping[str, float]) -> float:
    """``sum(weight * metrics[key])``; a missing key counts 0 (with a warning)."""
    score = 0.0
    for key, weight in weights.items():
        if key not in metrics:
            warnings.warn(f'metric {key!r} was not produced by this evaluation; counted as 0 '
                          f'(available: {sorted(metrics)})')
            continue
        score += weight * float(metrics[key])
    return score
