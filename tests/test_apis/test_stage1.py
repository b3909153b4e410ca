"""The paper's two stages end to end on CPU: the stage-1 DIOR detector config trains, and
its checkpoint starts the co-training through ``tools/train.py --load-task-pretrain``.

Both configs run as they are, pointed at the tiny demo data, with the ImageNet
Swin-T file left out (not in the repository), the image sizes of their DIOR
pipelines divided by 8 (so that a step of the full-size model takes seconds
on CPU) and a two-iteration schedule.
"""
import json
import logging
import os.path as osp
import re
import runpy

import pytest
import torch
from mmcv import Config

from tests.cotrain_helpers import point_data_at
from tests.tiny_rscotr import write_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGE1 = osp.join(REPO_ROOT, 'configs/single_task/rscotr_swin-t_stage1_50e_dior.py')
COTRAIN = osp.join(REPO_ROOT, 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')
SHRINK = 8


def _shrink(value, key=None):
    """Image sizes (``img_scale``, ``crop_size``) of a pipeline divided by SHRINK."""
    if isinstance(value, dict):
        return {k: _shrink(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and key not in ('img_scale', 'crop_size'):
        return type(value)(_shrink(v, key) for v in value)
    if key in ('img_scale', 'crop_size'):
        if isinstance(value, list):
            return [_shrink(v, key) for v in value]
        return tuple(max(1, v // SHRINK) for v in value)
    return value


def _small_run(path, demo_data, work_dir, **changes) -> str:
    """``path`` on the demo data, small images, 2 iterations; returns the dumped config."""
    cfg = point_data_at(Config.fromfile(path), demo_data)
    cfg.model.backbone.init_cfg = None
    for split in ('train', 'val', 'test'):
        dior = cfg.data[split].dior.dataset
        dior.pipeline = _shrink(dior.pipeline)
    cfg.runner.max_iters = 2
    cfg.lr_config.step = [1]
    cfg.checkpoint_config = dict(by_epoch=False, interval=2, save_optimizer=False)
    cfg.log_config.interval = 1
    cfg.evaluation.interval = 2
    for key, value in changes.items():
        cfg[key] = value
    out = osp.join(work_dir, osp.basename(path))
    return write_config(cfg, out)


@pytest.fixture(scope='module')
def train_tool():
    return runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']


@pytest.fixture(scope='module')
def stage1(demo_data, tmp_path_factory, train_tool):
    tmp = tmp_path_factory.mktemp('stage1')
    cfg_path = _small_run(STAGE1, demo_data, str(tmp))
    work_dir = str(tmp / 'work')
    assert train_tool([cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--seed', '0']) == 0
    return work_dir


def test_stage1_config_is_the_released_detector_recipe():
    cfg = Config.fromfile(STAGE1)
    assert {task for task, head in cfg.model.heads.items() if head is not None} == {'det'}
    assert tuple(cfg.model.backbone.out_indices) == (1, 2, 3)
    assert cfg.model.heads.det.num_query == 600 and cfg.model.heads.det.num_classes == 20
    assert {name for name, entry in cfg.data.train.items() if entry is not None} == {'dior'}
    dior = cfg.data.train.dior
    assert (dior.samples_per_gpu, dior.workers_per_gpu) == (1, 2)
    assert dior.dataset.filter_empty_gt is False
    types = [t['type'] for t in dior.dataset.pipeline]
    assert types == ['LoadImageFromFile', 'LoadAnnotations', 'RandomFlip', 'AutoAugment',
                     'Normalize', 'Pad', 'DefaultFormatBundle', 'Collect']
    (aug, ) = [t for t in dior.dataset.pipeline if t['type'] == 'AutoAugment']
    short_sides = [s[0] for s in aug['policies'][0][0]['img_scale']]
    assert short_sides == list(range(480, 801, 32))
    crop = aug['policies'][1][1]
    assert crop['crop_type'] == 'absolute_range' and tuple(crop['crop_size']) == (384, 600)
    assert [t for t in dior.dataset.pipeline if t['type'] == 'Pad'] == [
        dict(type='Pad', size_divisor=1)]
    for split in ('val', 'test'):
        (test_aug, ) = cfg.data[split].dior.dataset.pipeline[1:]
        assert tuple(test_aug['img_scale']) == (1333, 800)
        assert dict(type='Pad', size_divisor=1) in test_aug['transforms']
    assert cfg.optimizer.lr == 5e-5 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.optimizer.paramwise_cfg.custom_keys == {
        'backbone': dict(lr_mult=0.1), 'absolute_pos_embed': dict(decay_mult=0.0),
        'relative_position_bias_table': dict(decay_mult=0.0), 'norm': dict(decay_mult=0.0)}
    assert cfg.optimizer_config.grad_clip == dict(max_norm=0.1, norm_type=2)
    # 50 epochs of the 5,862 train images at one image per step, lr x0.1 after 45
    assert cfg.runner.max_iters == 50 * 5862 and cfg.lr_config.step == [45 * 5862]
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)


def test_stage1_trains_and_evaluates(stage1):
    with open(osp.join(stage1, 'eval_iter_2.json')) as f:
        metrics = json.load(f)['metrics']
    assert metrics['dior.protocol'] == 'all-images' and 'dior.bbox_mAP' in metrics
    state = torch.load(osp.join(stage1, 'latest.pth'), map_location='cpu')['state_dict']
    assert any(k.startswith('encoder.') for k in state)
    assert not any(k.startswith(('heads.cls.', 'heads.seg.', 'backbone.norm0.')) for k in state)


def test_stage1_checkpoint_starts_the_cotraining(stage1, demo_data, tmp_path, train_tool,
                                                 caplog):
    # co-training as the README says, two DIOR steps (the other datasets are built too)
    cfg_path = _small_run(COTRAIN, demo_data, str(tmp_path),
                          iteration_strategy=dict(type='constant', idx='dior'))
    work_dir = str(tmp_path / 'work')
    ckpt = osp.join(stage1, 'latest.pth')
    caplog.set_level(logging.INFO)
    assert train_tool([cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--seed', '1',
                       '--no-validate', '--load-task-pretrain', ckpt]) == 0

    stage1_state = torch.load(ckpt, map_location='cpu')['state_dict']
    n_encoder = sum(k.startswith('encoder.') for k in stage1_state)
    n_det = sum(k.startswith('heads.det.') for k in stage1_state)
    log = caplog.text  # the run's log (the root logger keeps the file of its first run)
    assert ('effective batch per step (samples_per_gpu x 1 process(es)): resisc 16 x 1 = 16, '
            'dior 1 x 1 = 1, potsdam 2 x 1 = 2; total batch 19') in log
    (line, ) = [ln for ln in log.splitlines() if f'task pretrain {ckpt}' in ln]
    assert '(RSCoTr layout)' in line
    assert f'loaded {len(stage1_state)} tensors' in line
    assert '0 unexpected, 0 dropped, 0 reshaped, 0 shape mismatches' in line
    assert f'shared encoder {n_encoder}/{n_encoder}' in line and n_encoder == 96
    assert f'det head {n_det}/{n_det}' in line
    assert re.search(r'cls head 0/\d+', line) and re.search(r'seg head 0/\d+', line)
    (missing, ) = re.findall(r'missing keys: \[(.*)\]', log)
    missing = [k.strip(" '") for k in missing.split(',')]
    assert missing and all(k.startswith(('heads.cls.', 'heads.seg.', 'backbone.norm0.'))
                           for k in missing)

    # the co-training began from the detector's encoder: two AdamW steps at lr 5e-5
    # move a weight by about 1e-4 at most, another initialisation (seed 1) by far more
    cotrain = torch.load(osp.join(work_dir, 'latest.pth'), map_location='cpu')['state_dict']
    for key in (k for k in stage1_state if k.startswith(('encoder.', 'heads.det.'))):
        diff = (cotrain[key].float() - stage1_state[key].float()).abs().max().item()
        assert diff < 1e-3, (key, diff)
