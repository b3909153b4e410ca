"""The effective batch per dataset, and ``auto_scale_lr`` (lr x total batch / base batch).

Expected values are the configs' batches worked out by hand: the reference
co-trains 16 RESISC45, 1 DIOR and 2 Potsdam images per GPU and step, 19 in
all, which is its ``base_batch_size`` (the release's one-GPU run).
"""
import logging
import os.path as osp
import runpy

import pytest
import torch
from mmcv import Config

from rscotr.apis.checks import ConfigError
from rscotr.apis.lr_scaling import (check_auto_scale_lr, effective_batches,
                                    scaled_optimizer_cfg)
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import write_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(REPO_ROOT, 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')
SINGLE_DIOR = osp.join(REPO_ROOT, 'configs/single_task/rscotr_swin-t_300k_dior.py')
STAGE1 = osp.join(REPO_ROOT, 'configs/single_task/rscotr_swin-t_stage1_50e_dior.py')


@pytest.fixture(scope='module')
def reference():
    return Config.fromfile(REFERENCE)


def _enabled(cfg, enable=True, **changes):
    cfg = Config(cfg._cfg_dict.to_dict())
    cfg.auto_scale_lr = dict(cfg.auto_scale_lr, enable=enable, **changes)
    return cfg


def test_effective_batch_per_dataset(reference):
    assert dict(effective_batches(reference.data.train, 1)) == dict(
        resisc=(16, 16), dior=(1, 1), potsdam=(2, 2))
    assert dict(effective_batches(reference.data.train, 8)) == dict(
        resisc=(16, 128), dior=(1, 8), potsdam=(2, 16))


@pytest.mark.parametrize('world_size, lr', [(1, 5e-5), (8, 8 * 5e-5), (2, 2 * 5e-5)])
def test_reference_lr_scaled_by_gpus_when_enabled(reference, world_size, lr, caplog):
    logger = logging.getLogger('test_lr_scaling')
    caplog.set_level(logging.INFO, logger='test_lr_scaling')
    # off by default: the lr of the config whatever the number of GPUs
    assert reference.auto_scale_lr.enable is False
    assert scaled_optimizer_cfg(reference, world_size, logger)['lr'] == 5e-5
    assert (f'effective batch per step (samples_per_gpu x {world_size} process(es)): '
            f'resisc 16 x {world_size} = {16 * world_size}, dior 1 x {world_size} = '
            f'{world_size}, potsdam 2 x {world_size} = {2 * world_size}; total batch '
            f'{19 * world_size}') in caplog.text
    assert f'would be x {19 * world_size}/19' in caplog.text
    cfg = _enabled(reference)
    assert scaled_optimizer_cfg(cfg, world_size, logger)['lr'] == pytest.approx(lr)
    assert cfg.optimizer.lr == 5e-5  # the config is not changed
    assert f'auto_scale_lr: lr 5e-05 x total batch {19 * world_size} / base_batch_size 19' \
        in caplog.text


def test_dropped_datasets_drop_their_share_of_the_base_batch():
    # single-task DIOR inherits the reference's per-dataset base: 1 image per GPU
    cfg = _enabled(Config.fromfile(SINGLE_DIOR))
    assert check_auto_scale_lr(cfg) == (True, 1)
    assert scaled_optimizer_cfg(cfg, 8)['lr'] == pytest.approx(8 * 5e-5)
    # stage 1 declares the release's base of 16 images: enabled on one GPU, lr / 16
    cfg = _enabled(Config.fromfile(STAGE1))
    assert check_auto_scale_lr(cfg) == (True, 16)
    assert scaled_optimizer_cfg(cfg, 1)['lr'] == pytest.approx(5e-5 / 16)


def test_per_dataset_batches_change_the_total(reference):
    cfg = _enabled(reference)
    cfg.data.train.resisc.samples_per_gpu = 32  # 32 + 1 + 2 = 35 per GPU
    assert scaled_optimizer_cfg(cfg, 1)['lr'] == pytest.approx(5e-5 * 35 / 19)
    cfg = _enabled(reference, base_batch_size=38)  # one int: the base total
    assert scaled_optimizer_cfg(cfg, 4)['lr'] == pytest.approx(5e-5 * 76 / 38)


@pytest.mark.parametrize('auto_scale_lr, message', [
    (dict(enable=True, base=19), r"unknown auto_scale_lr keys \['base'\]"),
    (dict(enable='yes', base_batch_size=19), "auto_scale_lr.enable='yes' must be True or False"),
    (dict(enable=True), 'auto_scale_lr.enable=True needs auto_scale_lr.base_batch_size'),
    (dict(enable=False, base_batch_size=0), 'batches must be positive ints'),
    (dict(enable=False, base_batch_size=dict(resisc=16, dior=1)),
     r"no batch for the training dataset\(s\) \['potsdam'\]"),
    (19, 'must be a dict'),
])
def test_bad_settings_are_refused(reference, auto_scale_lr, message):
    cfg = Config(reference._cfg_dict.to_dict())
    cfg.auto_scale_lr = auto_scale_lr
    with pytest.raises(ConfigError, match=message):
        check_auto_scale_lr(cfg)


def test_train_tool_auto_scale_lr(demo_data, tmp_path, capsys):
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    # the tiny config: 8 + 2 + 2 images per step, lr 1e-3 (backbone x0.1)
    cfg = tiny_train_cfg(demo_data, str(tmp_path / 'unused'), max_iters=2,
                         auto_scale_lr=dict(enable=False, base_batch_size=24))
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    write_config(cfg, cfg_path)
    work_dir = str(tmp_path / 'work')
    assert main([cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--no-validate',
                 '--auto-scale-lr']) == 0
    optimizer = torch.load(osp.join(work_dir, 'latest.pth'), map_location='cpu')['optimizer']
    lrs = sorted({round(g['initial_lr'], 12) for g in optimizer['param_groups']})
    assert lrs == [5e-5, 5e-4]  # x 12 / 24

    cfg.auto_scale_lr = dict(enable=False)
    write_config(cfg, cfg_path)
    assert main([cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--auto-scale-lr']) == 2
    assert 'error: auto_scale_lr.enable=True needs auto_scale_lr.base_batch_size' \
        in capsys.readouterr().err
