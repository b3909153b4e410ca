"""The training recipe as released (README: Fidelity) is what the configs say.

Pipelines, the Potsdam protocols and the schedule of the reference config are
checked value by value, so that a later edit cannot drift from the release
silently; the Potsdam metrics of both protocols are checked against figures
computed by hand on a 4x4 example.
"""
import json
import os
import os.path as osp
import random
import runpy

import mmcv
import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.parallel import MMDataParallel
from mmcv.runner import IterBasedRunner

from rscotr.apis.checks import ConfigError, check_config
from rscotr.core.evaluation import MultiTaskEvalHook, evaluate_multitask
from rscotr.datasets import TaskLoader, build_task_dataloader, build_task_dataset
from rscotr.datasets.meta import DIOR_CLASSES, POTSDAM_CLASSES
from rscotr.datasets.potsdam import PotsdamIndexDataset
from rscotr.utils import get_root_logger

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(REPO_ROOT, 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')
MULTILEVEL = osp.join(REPO_ROOT,
                      'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py')
DEMO = osp.join(REPO_ROOT, 'configs/demo/rscotr_demo.py')

RGB_MEAN = [123.675, 116.28, 103.53]
RGB_STD = [58.395, 57.12, 57.375]
BGR_MEAN = RGB_MEAN[::-1]
BGR_STD = RGB_STD[::-1]
NORM = dict(type='Normalize', mean=RGB_MEAN, std=RGB_STD, to_rgb=True)

#: timm's increasing RandAugment policies: (type, magnitude key, range, direction)
RAND_INCREASING = [
    ('AutoContrast', None, None, None),
    ('Equalize', None, None, None),
    ('Invert', None, None, None),
    ('Rotate', 'angle', (0, 30), None),
    ('Posterize', 'bits', (4, 0), None),
    ('Solarize', 'thr', (256, 0), None),
    ('SolarizeAdd', 'magnitude', (0, 110), None),
    ('ColorTransform', 'magnitude', (0, 0.9), None),
    ('Contrast', 'magnitude', (0, 0.9), None),
    ('Brightness', 'magnitude', (0, 0.9), None),
    ('Sharpness', 'magnitude', (0, 0.9), None),
    ('Shear', 'magnitude', (0, 0.3), 'horizontal'),
    ('Shear', 'magnitude', (0, 0.3), 'vertical'),
    ('Translate', 'magnitude', (0, 0.45), 'horizontal'),
    ('Translate', 'magnitude', (0, 0.45), 'vertical'),
]


@pytest.fixture(scope='module')
def ref():
    return Config.fromfile(REFERENCE)


def _types(pipeline):
    return [t['type'] for t in pipeline]


def _one(pipeline, kind):
    (step, ) = [t for t in pipeline if t['type'] == kind]
    return step


def _compose(pipeline, task):
    """The pipeline without its loading steps, built by the task's library."""
    if task == 'cls':
        from mmcls.datasets.pipelines import Compose
    else:
        from mmdet.datasets.pipelines import Compose
    return Compose([t for t in pipeline if not t['type'].startswith('Load')])


# ---------------------------------------------------------------------- RESISC45
def test_resisc_pipelines_are_the_released_ones(ref):
    train = ref.data.train.resisc.dataset.pipeline
    assert _types(train) == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
                             'RandAugment', 'RandomErasing', 'Normalize', 'ImageToTensor',
                             'ToTensor', 'Collect']
    crop = _one(train, 'RandomResizedCrop')
    assert (crop['size'], crop['backend'], crop['interpolation']) == (224, 'pillow', 'bicubic')
    flip = _one(train, 'RandomFlip')
    assert (flip['flip_prob'], flip['direction']) == (0.5, 'horizontal')

    aug = _one(train, 'RandAugment')
    assert (aug['num_policies'], aug['total_level'], aug['magnitude_level'],
            aug['magnitude_std']) == (2, 10, 9, 0.5)
    assert aug['hparams'] == dict(pad_val=[104, 116, 124], interpolation='bicubic')
    assert aug['hparams']['pad_val'] == [round(v) for v in BGR_MEAN]
    policies = [(p['type'], p.get('magnitude_key'),
                 tuple(p['magnitude_range']) if 'magnitude_range' in p else None,
                 p.get('direction')) for p in aug['policies']]
    assert policies == RAND_INCREASING

    erase = _one(train, 'RandomErasing')
    assert (erase['erase_prob'], erase['mode'], erase['min_area_ratio']) == (0.25, 'rand', 0.02)
    assert erase['max_area_ratio'] == pytest.approx(1 / 3)
    assert erase['fill_color'] == BGR_MEAN and erase['fill_std'] == BGR_STD
    assert _one(train, 'Normalize') == NORM

    for split in ('val', 'test'):
        test = ref.data[split].resisc.dataset.pipeline
        assert _types(test) == ['LoadImageFromFile', 'Resize', 'Normalize', 'ImageToTensor',
                                'Collect'], split  # no crop
        resize = _one(test, 'Resize')
        assert (tuple(resize['size']), resize['backend'], resize['interpolation']) == \
            ((224, 224), 'pillow', 'bicubic')
        assert _one(test, 'Normalize') == NORM


def test_resisc_pipelines_run(ref):
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (256, 256, 3), dtype=np.uint8)
    train = _compose(ref.data.train.resisc.dataset.pipeline, 'cls')
    for seed in range(4):  # RandAugment draws two of its policies each time
        np.random.seed(seed)
        random.seed(seed)
        out = train(dict(img=img.copy(), gt_label=np.array(3)))
        assert out['img'].shape == (3, 224, 224) and int(out['gt_label']) == 3
    test = _compose(ref.data.test.resisc.dataset.pipeline, 'cls')
    out = test(dict(img=rng.randint(0, 256, (200, 300, 3), dtype=np.uint8)))
    assert out['img'].shape == (3, 224, 224)  # both sides resized, nothing cut off


# ---------------------------------------------------------------------- DIOR
def test_dior_pipelines_and_splits_are_the_released_ones(ref):
    train = ref.data.train.dior.dataset
    assert _types(train.pipeline) == ['LoadImageFromFile', 'LoadAnnotations', 'Resize',
                                      'RandomFlip', 'Normalize', 'Pad', 'DefaultFormatBundle',
                                      'Collect']
    resize = _one(train.pipeline, 'Resize')
    assert tuple(resize['img_scale']) == (1333, 800) and resize['keep_ratio'] is True
    assert 'multiscale_mode' not in resize and 'ratio_range' not in resize
    assert _one(train.pipeline, 'RandomFlip')['flip_ratio'] == 0.5
    assert _one(train.pipeline, 'Normalize') == NORM
    assert _one(train.pipeline, 'Pad') == dict(type='Pad', size_divisor=32)
    assert train.filter_empty_gt is True

    for split, ann in (('train', 'dior_train.json'), ('val', 'dior_val.json'),
                       ('test', 'dior_test.json')):
        assert osp.basename(ref.data[split].dior.dataset.ann_file) == ann
    for split in ('val', 'test'):
        (aug, ) = ref.data[split].dior.dataset.pipeline[1:]
        assert aug['type'] == 'MultiScaleFlipAug' and aug['flip'] is False
        assert tuple(aug['img_scale']) == (1333, 800)
        assert _types(aug['transforms']) == ['Resize', 'RandomFlip', 'Normalize', 'Pad',
                                             'ImageToTensor', 'Collect']
        assert _one(aug['transforms'], 'Resize')['keep_ratio'] is True
        assert _one(aug['transforms'], 'Pad') == dict(type='Pad', size_divisor=32)


def test_dior_train_pipeline_runs(ref):
    train = _compose(ref.data.train.dior.dataset.pipeline, 'det')
    img = np.zeros((600, 800, 3), np.uint8)
    out = train(dict(img=img, img_shape=img.shape, ori_shape=img.shape, img_fields=['img'],
                     filename='x.jpg', ori_filename='x.jpg', bbox_fields=['gt_bboxes'],
                     gt_bboxes=np.array([[10, 20, 110, 220]], np.float32),
                     gt_labels=np.array([3])))
    meta = out['img_metas'].data
    assert meta['img_shape'][:2] == (800, 1067)  # short side 800, long side <= 1333
    assert meta['pad_shape'][:2] == (800, 1088)  # padded to a multiple of 32
    assert out['img'].data.shape == (3, 800, 1088)


def test_dior_training_leaves_out_images_without_boxes(tmp_path):
    images = [dict(id=i, file_name=f'JPEGImages-trainval/{i:05d}.jpg', width=64, height=64)
              for i in (1, 2)]
    coco = dict(images=images,
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5], area=25,
                                  iscrowd=0)],
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(DIOR_CLASSES)])
    ann = tmp_path / 'dior_train.json'
    ann.write_text(json.dumps(coco))
    lengths = [len(build_task_dataset(dict(type='DIORDataset', ann_file=str(ann),
                                           img_prefix=str(tmp_path), pipeline=[], **kw), 'det'))
               for kw in (dict(filter_empty_gt=True), dict(filter_empty_gt=False),
                          dict(filter_empty_gt=True, test_mode=True))]
    assert lengths == [1, 2, 2]  # evaluation keeps every image


# ---------------------------------------------------------------------- Potsdam
def test_reference_potsdam_uses_the_released_protocol(ref):
    for split in ('train', 'val', 'test'):
        dataset = ref.data[split].potsdam.dataset
        assert dataset.protocol == 'release', split
        assert 'ignore_labels' not in dataset, split
        assert len(PotsdamIndexDataset.classes_of_config(dataset)[0]) == 6
    pad = _one(ref.data.train.potsdam.dataset.pipeline, 'Pad')
    assert (pad['seg_pad_val'], tuple(pad['size'])) == (5, (512, 512))  # crops padded as clutter
    seg = ref.model.heads.seg
    assert seg.num_classes == 6 and seg.ignore_index == 255  # the loss ignores only 255
    check_config(ref, files=False)
    ref_5 = Config(ref._cfg_dict.to_dict())
    ref_5.model.heads.seg.num_classes = 5
    with pytest.raises(ConfigError, match=r'data.train.potsdam: the dataset has 6 classes but '
                       r"the head 'seg' has num_classes=5"):
        check_config(ref_5, files=False)


@pytest.mark.parametrize('path, protocol, num_classes', [
    (MULTILEVEL, '5class', 5),  # 5 queries (scheme 2) score at most 5 classes
    (DEMO, '5class', 5),        # the tiny model's seg head has 5 classes
])
def test_variant_configs_use_the_5class_protocol(path, protocol, num_classes):
    cfg = Config.fromfile(path)
    for split in ('train', 'val', 'test'):
        assert cfg.data[split].potsdam.dataset.protocol == protocol, split
    assert cfg.model.heads.seg.num_classes == num_classes
    assert _one(cfg.data.train.potsdam.dataset.pipeline, 'Pad')['seg_pad_val'] == 255
    check_config(cfg, files=False)


def _write_sample(root, label):
    for sub in ('img_dir/val', 'ann_dir/val'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    mmcv.imwrite(np.full(label.shape + (3, ), 100, np.uint8), osp.join(root, 'img_dir/val/p.png'))
    mmcv.imwrite(label.astype(np.uint8), osp.join(root, 'ann_dir/val/p.png'))


def _potsdam(root, **kwargs):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='DefaultFormatBundle'),
                dict(type='Collect', keys=['img', 'gt_semantic_seg'], meta_keys=[])]
    return build_task_dataset(dict(type='PotsdamIndexDataset', data_root=str(root),
                                   img_dir='img_dir/val', ann_dir='ann_dir/val',
                                   pipeline=pipeline, **kwargs), 'seg')


# Ground truth: classes 0..4, clutter 5, one boundary pixel (255).
GT = np.array([[0, 0, 1, 1],
               [0, 0, 1, 1],
               [2, 2, 5, 5],
               [3, 4, 5, 255]])
# A 6-class model: clutter predicted on a building pixel (0, 3) and on a
# low-vegetation pixel (2, 1), and on a clutter pixel (2, 2).
PRED_6 = np.array([[0, 0, 1, 5],
                   [0, 1, 1, 1],
                   [2, 5, 5, 0],
                   [3, 4, 2, 3]])
# A 5-class model: PRED_6 with clutter predictions replaced by low vegetation.
PRED_5 = np.where(PRED_6 == 5, 2, PRED_6)


def _by_hand_release_pred6():
    """PRED_6 under the released protocol (6 classes, ignore index 5).

    The 3 clutter pixels are left out (13 pixels remain, 12 of them labelled
    with a class). Per class (intersection, predicted, ground truth);
    predicted areas also count the boundary pixel (3, 3), which mmseg does
    not mask when the ignore index is 5:
      0: (3, 3, 4) IoU 3/4, P 1,   R 3/4, F 6/7
      1: (3, 4, 4) IoU 3/5, P 3/4, R 3/4, F 3/4
      2: (1, 1, 2) IoU 1/2, P 1,   R 1/2, F 2/3
      3: (1, 2, 1) IoU 1/2, P 1/2, R 1,   F 2/3   (3 predicted on the boundary)
      4: (1, 1, 1) IoU 1,   P 1,   R 1,   F 1
      clutter: (0, 2, 0) IoU 0, P 0, R NaN -> F NaN (left out of mFscore)
    """
    iou = [3 / 4, 3 / 5, 1 / 2, 1 / 2, 1, 0]
    fscore = [6 / 7, 3 / 4, 2 / 3, 2 / 3, 1]
    return dict(aAcc=9 / 12, mIoU=sum(iou) / 6, mFscore=sum(fscore) / 5,
                **{'IoU.clutter': 0.0, 'IoU.building': 3 / 5, 'Fscore.tree': 2 / 3})


def _by_hand_release_pred5():
    """PRED_5 under the released protocol: clutter is never predicted, so its
    IoU is NaN too and mIoU averages the other 5 classes.
      0: (3, 3, 4) IoU 3/4, F 6/7;  1: (3, 4, 4) IoU 3/5, F 3/4;
      2: (2, 3, 2) IoU 2/3, P 2/3, R 1, F 4/5;  3: (1, 2, 1) IoU 1/2, F 2/3;
      4: (1, 1, 1) IoU 1, F 1
    """
    return dict(aAcc=10 / 12, mIoU=(3 / 4 + 3 / 5 + 2 / 3 + 1 / 2 + 1) / 5,
                mFscore=(6 / 7 + 3 / 4 + 4 / 5 + 2 / 3 + 1) / 5)


def _by_hand_5class_pred5():
    """PRED_5 under the 5-class protocol (clutter and boundary ignored: 12 pixels).
      0: (3, 3, 4) IoU 3/4, F 6/7
      1: (3, 4, 4) IoU 3/5, F 3/4
      2: (2, 3, 2) IoU 2/3, P 2/3, R 1, F 4/5
      3: (1, 1, 1) IoU 1,   F 1   (the boundary pixel is ignored)
      4: (1, 1, 1) IoU 1,   F 1
    """
    return dict(aAcc=10 / 12, mIoU=(3 / 4 + 3 / 5 + 2 / 3 + 1 + 1) / 5,
                mFscore=(6 / 7 + 3 / 4 + 4 / 5 + 1 + 1) / 5)


@pytest.mark.parametrize('protocol, pred, expected, tag, classes', [
    ('release', PRED_6, _by_hand_release_pred6(), 'release-6class', 6),
    ('release', PRED_5, _by_hand_release_pred5(), 'release-6class', 6),
    ('5class', PRED_5, _by_hand_5class_pred5(), '5class', 5),
])
def test_potsdam_metrics_by_hand(tmp_path, protocol, pred, expected, tag, classes):
    _write_sample(tmp_path, GT)
    ds = _potsdam(tmp_path, protocol=protocol)
    assert ds.CLASSES == POTSDAM_CLASSES[:classes] and len(ds.PALETTE) == classes
    kwargs = dict(metric=['mIoU', 'mFscore'], logger='silent')
    # the test tool's path (pre_eval per image) and the plain one (label maps)
    for results in (ds.pre_eval(pred, 0), [pred]):
        metrics = ds.evaluate(results, **kwargs)
        assert list(metrics)[0] == 'protocol' and metrics['protocol'] == tag
        for key, value in expected.items():
            # mmseg rounds to 2 decimals of a percent
            assert metrics[key] == pytest.approx(value, abs=5.1e-5), key
    if protocol == 'release':
        assert np.isnan(metrics['Fscore.clutter'])


def test_potsdam_training_labels_per_protocol(tmp_path):
    _write_sample(tmp_path, GT)
    release = _potsdam(tmp_path, protocol='release')
    five = _potsdam(tmp_path, protocol='5class')
    # release: clutter (5) reaches the loss as a class, only 255 is ignored
    assert (release[0]['gt_semantic_seg'].data.numpy()[0] == GT).all()
    assert (release.get_gt_seg_map_by_idx(0) == GT).all() and release.ignore_index == 5
    # 5class: clutter is mapped to 255 in training and evaluation
    expected = np.where(GT == 5, 255, GT)
    assert (five[0]['gt_semantic_seg'].data.numpy()[0] == expected).all()
    assert (five.get_gt_seg_map_by_idx(0) == expected).all() and five.ignore_index == 255


def test_potsdam_protocol_errors(tmp_path):
    _write_sample(tmp_path, GT)
    with pytest.raises(ValueError, match=r"unknown protocol 'release6'; use one of "
                       r"\['release', '5class'\]"):
        _potsdam(tmp_path, protocol='release6')
    with pytest.raises(ValueError, match=r"clutter \(5\) is a trained class.*protocol='5class'"):
        _potsdam(tmp_path, protocol='release', ignore_labels=[5])
    with pytest.raises(ValueError, match='ignore_index=5'):
        _potsdam(tmp_path, protocol='release', ignore_index=255)
    with pytest.raises(ValueError, match='classes follow the protocol'):
        _potsdam(tmp_path, protocol='5class', classes=POTSDAM_CLASSES[:5])
    # the default is the 5-class protocol, as before the option existed
    assert _potsdam(tmp_path).protocol == '5class'


def test_protocol_tag_reaches_the_metric_keys_json_and_best_checkpoint(tmp_path):
    _write_sample(tmp_path / 'data', GT)
    ds = _potsdam(tmp_path / 'data', protocol='release')
    loader = TaskLoader('potsdam', 'seg', build_task_dataloader(ds, 1, 0, shuffle=False),
                        eval_cfg=dict(metric=['mIoU', 'mFscore']))
    results = {'potsdam': ds.pre_eval(PRED_6, 0)}
    metrics = evaluate_multitask(results, [loader])
    assert metrics['potsdam.protocol'] == 'release-6class'
    assert metrics['potsdam.mFscore'] == pytest.approx(_by_hand_release_pred6()['mFscore'],
                                                       abs=5.1e-5)

    runner = IterBasedRunner(MMDataParallel(torch.nn.Linear(1, 1)), work_dir=str(tmp_path),
                             logger=get_root_logger(), max_iters=10)
    hook = MultiTaskEvalHook([loader], save_best=dict(keys={'potsdam.mFscore': 100}))
    hook.before_run(runner)
    hook.evaluate(runner, results)
    assert runner.log_buffer.output['potsdam.protocol'] == 'release-6class'
    assert runner.log_buffer.output['weighted_score'] == pytest.approx(
        100 * metrics['potsdam.mFscore'])
    with open(tmp_path / 'eval_iter_1.json') as f:
        assert json.load(f)['metrics']['potsdam.protocol'] == 'release-6class'
    assert (tmp_path / 'best_weighted_score_iter_1.pth').is_file()

    tool = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'test.py'), run_name='tool')
    table = tool['dataset_tables']('potsdam', 'seg', metrics, ds.CLASSES)
    assert 'release-6class' in table


# ---------------------------------------------------------------------- schedule
def test_reference_schedule_is_the_released_one(ref):
    assert ref.checkpoint_config.interval == 100000 and ref.checkpoint_config.by_epoch is False
    assert ref.log_config.interval == 300
    assert ref.evaluation.interval == 15000
    assert ref.evaluation.save_best == dict(keys={'resisc.accuracy_top-1': 1,
                                                  'dior.bbox_mAP': 100,
                                                  'potsdam.mFscore': 100})
    assert ref.lr_config.step == [240000, 285000] and ref.runner.max_iters == 300000
    samples = {name: ref.data.train[name].samples_per_gpu for name in ref.data.train}
    assert samples == dict(resisc=16, dior=1, potsdam=2)
