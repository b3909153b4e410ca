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
from tests.cotrain_helpers import tiny_data_cfg, tiny_model_cfg

DESIGN_KEYS = ('resisc.accuracy_top-1', 'dior.bbox_mAP', 'potsdam.mIoU', 'potsdam.mFscore',
               'potsdam.aAcc')
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


def test_real_evaluation_gives_the_design_keys(val_loaders, tmp_path):
    model = build_model(tiny_model_cfg())
    model.init_weights()
    runner = make_runner(tmp_path, model)
    runner.model.device_ids = []  # CPU
    hook = MultiTaskEvalHook(val_loaders, interval=1, save_best=dict(keys=WEIGHTS))
    hook.before_run(runner)
    hook._do_evaluate(runner)
    out = runner.log_buffer.output
    assert set(DESIGN_KEYS) <= set(out)
    assert 'weighted_score' in out and runner.log_buffer.ready
    expected = sum(w * out[k] for k, w in WEIGHTS.items())
    assert out['weighted_score'] == pytest.approx(expected)
    assert 0 <= out['dior.bbox_mAP'] <= 1 and 0 <= out['resisc.accuracy_top-1'] <= 100
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
    with pytest.warns(UserWarning):
        assert weighted_score({'a.b': 3.0}, {'a.b': 2, 'c.d': 1}) == 6.0
