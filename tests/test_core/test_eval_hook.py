"""Multi-dataset evaluation hook: metric keys, best checkpoint by weighted keys, skip_tasks."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.parallel import MMDataParallel
from mmcv.runner import IterBasedRunner
from torch.utils.data import Dataset

from rscotr.core.evaluation import (MultiTaskEvalHook, parse_score_weights, task_eval_kwargs,
                                    weighted_score)
from rscotr.core.evaluation import eval_hooks
from rscotr.datasets import TaskLoader, build_task_dataloader, build_task_loaders
from rscotr.models import build_model
from rscotr.utils import get_root_logger
from tests.cotrain_helpers import DESIGN_KEYS, tiny_data_cfg
from tests.tiny_rscotr import tiny_model_cfg

WEIGHTS = {'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100, 'potsdam.mFscore': 100}




class _Empty(Dataset):

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        return {}


def fake_loaders():
    return [TaskLoader(name, task, build_task_dataloader(_Empty(), 1, 0, shuffle=False))
            for name, task in (('resisc', 'cls'), ('dior', 'det'), ('potsdam', 'seg'))]


def make_runner(work_dir, model=None):
    model = model if model is not None else torch.nn.Linear(1, 1)
    return IterBasedRunner(MMDataParallel(model), work_dir=str(work_dir),
                           logger=get_root_logger(), max_iters=10)


@pytest.fixture(scope='module')
def val_loaders(demo_data):
    cfg = Config(dict(data=tiny_data_cfg(demo_data)))
    return build_task_loaders(cfg.data.val, train=False)


def _predictions(model, loader):
    """Per-image results of ``loader``, by running the model batch by batch."""
    out = []
    for data in loader.dataloader:
        with torch.no_grad():
            out.extend(model(return_loss=False, rescale=True, task=loader.task, **data))
    return out


def _numpy_seg_metrics(preds, gts, num_classes, ignore=255):
    """aAcc, mIoU and mFscore (classes without prediction and ground truth left out of
    the means, as mmseg's nanmean does)."""
    inter, pred_area, gt_area = (np.zeros(num_classes) for _ in range(3))
    for pred, gt in zip(preds, gts):
        valid = gt != ignore
        p, g = pred[valid], gt[valid]
        for c in range(num_classes):
            inter[c] += np.sum((p == c) & (g == c))
            pred_area[c] += np.sum(p == c)
            gt_area[c] += np.sum(g == c)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter / (pred_area + gt_area - inter)
        precision, recall = inter / pred_area, inter / gt_area
        fscore = 2 * precision * recall / (precision + recall)
    return dict(aAcc=inter.sum() / gt_area.sum(), mIoU=np.nanmean(iou),
                mFscore=np.nanmean(fscore))


def test_real_evaluation_against_metrics_computed_here(val_loaders, tmp_path):
    """The hook's metrics and weighted score equal top-1 accuracy and Potsdam
    aAcc / mIoU / mFscore computed in numpy from the model's predictions."""
    weights = {'resisc.accuracy_top-1': 1, 'potsdam.mFscore': 100, 'potsdam.mIoU': 10}
    model = build_model(tiny_model_cfg(stand_ins=True))
    model.init_weights()
    runner = make_runner(tmp_path, model)
    runner.model.device_ids = []  # CPU
    runner.model.eval()
    loaders = {loader.name: loader for loader in val_loaders}
    resisc, potsdam = loaders['resisc'], loaders['potsdam']
    scores = np.stack(_predictions(runner.model, resisc))
    labels = resisc.dataset.get_gt_labels()
    assert len(set(scores.argmax(1).tolist())) > 1  # not one class for every image
    expected = {'resisc.accuracy_top-1': 100.0 * np.mean(scores.argmax(1) == labels)}
    gts = [potsdam.dataset.get_gt_seg_map_by_idx(i) for i in range(len(potsdam.dataset))]
    seg = _numpy_seg_metrics(_predictions(runner.model, potsdam), gts,
                             len(potsdam.dataset.CLASSES))
    # mmseg reports percentages rounded to 2 decimals, as fractions
    expected.update({f'potsdam.{k}': np.round(v * 100, 2) / 100 for k, v in seg.items()})
    runner.model.train()

    hook = MultiTaskEvalHook(val_loaders, interval=1, save_best=dict(keys=weights))
    hook.before_run(runner)
    hook._do_evaluate(runner)
    out = runner.log_buffer.output
    assert set(DESIGN_KEYS) <= set(out) and runner.log_buffer.ready
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, rel=1e-6), key
    assert out['weighted_score'] == pytest.approx(
        sum(w * expected[k] for k, w in weights.items()), rel=1e-6)
    with open(osp.join(tmp_path, 'eval_iter_1.json')) as f:
        dumped = json.load(f)
    assert set(DESIGN_KEYS) <= set(dumped['metrics'])
    assert 'potsdam.IoU.car' in dumped['metrics']  # per-class values kept in the json
    assert osp.isfile(osp.join(tmp_path, 'best_weighted_score_iter_1.pth'))


def test_det_evaluation_is_class_wise_ap_at_iou_05(val_loaders):
    (dior, ) = [loader for loader in val_loaders if loader.name == 'dior']
    kwargs = task_eval_kwargs(dior)
    assert kwargs['classwise'] and list(kwargs['iou_thrs']) == [0.5]
    # a perfect detector: every ground-truth box with score 1
    dataset = dior.dataset
    results = []
    for img_id in dataset.img_ids:
        per_class = [[] for _ in dataset.CLASSES]
        for ann in dataset.coco.imgToAnns[img_id]:
            x, y, w, h = ann['bbox']
            per_class[dataset.cat2label[ann['category_id']]].append([x, y, x + w, y + h, 1.0])
        results.append([np.array(boxes, np.float32).reshape(-1, 5) for boxes in per_class])
    metrics = dior.dataset.evaluate(results, **kwargs)
    assert metrics['bbox_mAP'] == pytest.approx(1.0)
    assert metrics['bbox_mAP_50'] == pytest.approx(1.0)


def test_best_checkpoint_follows_the_weighted_sum(tmp_path, monkeypatch):
    evaluations = iter([
        {'resisc.accuracy_top-1': 50.0, 'dior.bbox_mAP': 0.10, 'potsdam.mFscore': 0.20},  # 80
        {'resisc.accuracy_top-1': 60.0, 'dior.bbox_mAP': 0.05, 'potsdam.mFscore': 0.10},  # 75
        {'resisc.accuracy_top-1': 40.0, 'dior.bbox_mAP': 0.30, 'potsdam.mFscore': 0.20},  # 90
    ])
    monkeypatch.setattr(eval_hooks, 'evaluate_multitask', lambda *a, **k: next(evaluations))
    runner = make_runner(tmp_path)
    hook = MultiTaskEvalHook(fake_loaders(), interval=5, save_best=dict(keys=WEIGHTS))
    hook.before_run(runner)
    best_files = []
    for it in (4, 9, 14):
        runner._iter = it
        hook.evaluate(runner, {})
        best_files.append(sorted(p.name for p in tmp_path.glob('best_*.pth')))
    assert best_files == [['best_weighted_score_iter_5.pth'],
                          ['best_weighted_score_iter_5.pth'],   # higher accuracy, lower sum
                          ['best_weighted_score_iter_15.pth']]  # previous best removed
    msgs = runner.meta['hook_msgs']
    assert msgs['best_score'] == pytest.approx(90.0)
    assert msgs['best_ckpt'].endswith('best_weighted_score_iter_15.pth')
    assert msgs['best_metrics']['dior.bbox_mAP'] == pytest.approx(0.30)


def test_skip_tasks(tmp_path, monkeypatch):
    hook = MultiTaskEvalHook(fake_loaders(), save_best=dict(keys=WEIGHTS), skip_tasks=['det'])
    assert [loader.name for loader in hook.loaders] == ['resisc', 'potsdam']
    assert hook.score_weights == {'resisc.accuracy_top-1': 1, 'potsdam.mFscore': 100}
    seen = {}

    def fake_test(model, loaders, pre_eval=True):
        seen['names'] = [loader.name for loader in loaders]
        return {}

    import rscotr.apis.test as test_module
    monkeypatch.setattr(test_module, 'multitask_single_gpu_test', fake_test)
    monkeypatch.setattr(eval_hooks, 'evaluate_multitask',
                        lambda *a, **k: {'resisc.accuracy_top-1': 1.0, 'potsdam.mFscore': 0.5})
    runner = make_runner(tmp_path)
    hook.before_run(runner)
    hook._do_evaluate(runner)
    assert seen['names'] == ['resisc', 'potsdam']
    assert runner.log_buffer.output['weighted_score'] == pytest.approx(51.0)
    with pytest.raises(ValueError):  # nothing left to choose the best checkpoint by
        MultiTaskEvalHook(fake_loaders(), save_best='dior.bbox_mAP', skip_tasks=['det'])
    with pytest.raises(KeyError):  # a typo in a dataset name is an error
        MultiTaskEvalHook(fake_loaders(), save_best='diorr.bbox_mAP')
    with pytest.raises(KeyError):
        MultiTaskEvalHook(fake_loaders(), skip_tasks=['depth'])


def test_evaluation_schedule(tmp_path):
    runner = make_runner(tmp_path)
    hook = MultiTaskEvalHook(fake_loaders(), interval=3)
    due = []
    for it in range(9):
        runner._iter = it
        due.append(hook._should_evaluate(runner))
    assert [i + 1 for i, d in enumerate(due) if d] == [3, 6, 9]
    hook = MultiTaskEvalHook(fake_loaders(), interval=3, start=2)
    due = []
    for it in range(9):
        runner._iter = it
        due.append(hook._should_evaluate(runner))
    assert [i + 1 for i, d in enumerate(due) if d] == [2, 5, 8]


def test_score_weights_helpers():
    assert parse_score_weights(None) is None
    assert parse_score_weights('dior.bbox_mAP') == {'dior.bbox_mAP': 1.0}
    assert parse_score_weights(dict(keys={'a.b': 2})) == {'a.b': 2.0}
    with pytest.raises(TypeError):
        parse_score_weights(dict(keys={}))
    with pytest.warns(UserWarning, match=r"metric 'c\.d' was not produced.*counted as 0") as rec:
        assert weighted_score({'a.b': 3.0}, {'a.b': 2, 'c.d': 1}) == 6.0
    assert len(rec) == 1
