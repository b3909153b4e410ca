"""DIOR evaluation under both protocols: every image (default) or, as released, only images
with boxes (``DIORDataset(evaluate_empty_images=False)``), tagged ``dior.protocol``.

The test split of the tiny demo data holds images without boxes. Detections are
the ground truth itself (read from the converted json, not through the dataset)
plus one false positive, scored above every true box, on each image without
boxes. Evaluated over every image, the false positive's class has AP n/(n+1)
(n: its ground-truth boxes; the false positive ranks first, after it the n true
boxes: precision k/(k+1) at recall k/n, whose envelope is n/(n+1) at every
recall), every other class 1; evaluated the release's way, the image and its
false positive are not there and every class has AP 1.
"""
import json
import os.path as osp
import runpy
from collections import Counter

import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.parallel import MMDataParallel
from mmcv.runner import IterBasedRunner

from rscotr.core.evaluation import MultiTaskEvalHook, evaluate_multitask
from rscotr.datasets import build_task_dataset, build_task_loaders
from rscotr.datasets.meta import DIOR_CLASSES
from rscotr.utils import get_root_logger
from tests.cotrain_helpers import point_data_at

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(REPO_ROOT, 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')
TAGS = {True: 'all-images', False: 'release-images-with-boxes'}


@pytest.fixture(scope='module')
def ground_truth(demo_data):
    """The test split's json: {image id: [(class index, x1, y1, x2, y2)]}, image ids in order."""
    with open(osp.join(demo_data['prepared'], 'dior', 'annotations', 'dior_test.json')) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    boxes = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        boxes[ann['image_id']].append((DIOR_CLASSES.index(names[ann['category_id']]),
                                       x, y, x + w, y + h))
    return boxes


def _loader(demo_data, evaluate_empty_images):
    """The reference config's DIOR test loader, on the demo data."""
    cfg = point_data_at(Config.fromfile(REFERENCE), demo_data)
    entry = cfg.data.test.dior
    assert entry.dataset.evaluate_empty_images is True  # the reference evaluates every image
    entry.dataset.evaluate_empty_images = evaluate_empty_images
    (loader, ) = build_task_loaders(dict(dior=entry), train=False)
    return loader


def _detections(dataset, ground_truth, fp_class):
    """Per image of ``dataset``: its ground truth as detections (score 0.9), and on an image
    without boxes one false positive of ``fp_class`` (score 0.95)."""
    results = []
    for img_id in dataset.img_ids:
        per_class = [np.zeros((0, 5), np.float32) for _ in DIOR_CLASSES]
        boxes = ground_truth[img_id]
        for label, *box in boxes:
            per_class[label] = np.vstack([per_class[label], [box + [0.9]]]).astype(np.float32)
        if not boxes:
            per_class[fp_class] = np.array([[2, 2, 30, 30, 0.95]], np.float32)
        results.append(per_class)
    return results


def _expected_map(ground_truth, fp_class, with_empty):
    counts = Counter(label for boxes in ground_truth.values() for label, *_ in boxes)
    aps = {label: 1.0 for label in counts}
    if with_empty:
        n = counts[fp_class]
        aps[fp_class] = n / (n + 1)
    return sum(aps.values()) / len(aps)


@pytest.mark.parametrize('evaluate_empty_images', [True, False])
def test_protocols_on_images_without_boxes(demo_data, ground_truth, evaluate_empty_images):
    empty = [i for i, boxes in ground_truth.items() if not boxes]
    assert empty, 'the demo test split must hold images without boxes'
    fp_class = Counter(b[0] for boxes in ground_truth.values() for b in boxes).most_common()[-1][0]
    loader = _loader(demo_data, evaluate_empty_images)
    dataset = loader.dataset
    if evaluate_empty_images:
        assert dataset.img_ids == list(ground_truth) and len(dataset) == len(ground_truth)
    else:  # left out of the dataset and of COCOeval's image ids
        assert dataset.img_ids == [i for i in ground_truth if i not in empty]
        assert len(dataset) == len(ground_truth) - len(empty)
    assert [info['id'] for info in dataset.data_infos] == dataset.img_ids

    metrics = evaluate_multitask({'dior': _detections(dataset, ground_truth, fp_class)},
                                 [loader], logger='silent')
    assert metrics['dior.protocol'] == TAGS[evaluate_empty_images]
    assert list(metrics)[0] == 'dior.protocol'
    expected = _expected_map(ground_truth, fp_class, with_empty=evaluate_empty_images)
    assert metrics['dior.bbox_mAP'] == pytest.approx(expected, abs=6e-4)  # mmdet rounds to 3
    if evaluate_empty_images:
        assert expected < 0.99  # the figures of the two protocols differ
    else:
        assert expected == 1.0


def test_protocol_tag_reaches_the_log_json_best_checkpoint_and_test_table(
        demo_data, ground_truth, tmp_path):
    loader = _loader(demo_data, False)
    results = {'dior': _detections(loader.dataset, ground_truth, 0)}
    runner = IterBasedRunner(MMDataParallel(torch.nn.Linear(1, 1)), work_dir=str(tmp_path),
                             logger=get_root_logger(), max_iters=10)
    hook = MultiTaskEvalHook([loader], save_best=dict(keys={'dior.bbox_mAP': 100}))
    hook.before_run(runner)
    metrics = hook.evaluate(runner, results)
    tag = 'release-images-with-boxes'
    assert runner.log_buffer.output['dior.protocol'] == tag
    assert runner.log_buffer.output['weighted_score'] == pytest.approx(
        100 * metrics['dior.bbox_mAP'])
    with open(tmp_path / 'eval_iter_1.json') as f:
        assert json.load(f)['metrics']['dior.protocol'] == tag
    assert (tmp_path / 'best_weighted_score_iter_1.pth').is_file()
    assert runner.meta['hook_msgs']['best_metrics'] == {'dior.bbox_mAP': 1.0}

    tool = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'test.py'), run_name='tool')
    table = tool['dataset_tables']('dior', 'det', metrics, DIOR_CLASSES)
    assert '| protocol ' in table and tag in table


def test_training_sets_follow_filter_empty_gt_and_bad_values_are_refused(demo_data):
    cfg = point_data_at(Config.fromfile(REFERENCE), demo_data)
    train = dict(cfg.data.train.dior.dataset, pipeline=[])
    with open(train['ann_file']) as f:
        coco = json.load(f)
    with_boxes = {a['image_id'] for a in coco['annotations']}
    assert len(with_boxes) < len(coco['images'])
    # a training set is not evaluated: evaluate_empty_images does not change it
    for keep_empty in (True, False):
        dataset = build_task_dataset(dict(train, filter_empty_gt=not keep_empty,
                                          evaluate_empty_images=False), 'det')
        assert len(dataset) == (len(coco['images']) if keep_empty else len(with_boxes))
    with pytest.raises(ValueError, match='evaluate_empty_images must be True .* got '):
        build_task_dataset(dict(train, evaluate_empty_images='no'), 'det')
