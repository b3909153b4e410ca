"""Config errors are caught when a run starts, with what to change (rscotr.apis.checks)."""
import glob
import os.path as osp
import runpy

import pytest

from rscotr.apis import train_model
from rscotr.apis.checks import ConfigError, check_config
from rscotr.models import build_model
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import write_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def cfg(tmp_path):
    # no data (files=False below): the checks of the config alone
    paths = dict(raw=str(tmp_path / 'raw'), prepared=str(tmp_path / 'prepared'))
    return tiny_train_cfg(paths, str(tmp_path / 'work'), max_iters=2)


def test_the_tiny_config_passes(cfg):
    check_config(cfg, files=False)
    check_config(cfg, build_model(cfg.model), files=False)


def test_unknown_strategy(cfg):
    cfg.iteration_strategy = dict(type='round_robbin')
    with pytest.raises(ConfigError, match=r"iteration_strategy.type='round_robbin' is not a "
                       r"strategy; use one of \[.*'round_robin'"):
        check_config(cfg, files=False)


def test_unknown_task(cfg):
    cfg.data.train.resisc.task = 'classification'
    with pytest.raises(ConfigError, match=r"data.train.resisc.task='classification' is not a "
                       r"task; use one of \['cls', 'det', 'seg'\]"):
        check_config(cfg, files=False)


def test_dataset_without_head(cfg):
    cfg.model.heads.det = None
    model = build_model(cfg.model)
    for model_arg in (None, model):
        with pytest.raises(ConfigError, match=r"data.train.dior feeds the head 'det' but the "
                           r"model has no such head .*add model.heads.det, set "
                           r"data.train.dior.head or remove the dataset "
                           r"with data=dict\(train=dict\(dior=None\)\)") as info:
            check_config(cfg, model_arg, files=False)
        assert 'data.val.dior' in str(info.value)  # every problem is listed


def test_dataset_feeding_a_head_of_another_task(cfg):
    cfg.data.train.dior.head = 'seg'
    with pytest.raises(ConfigError, match=r"data.train.dior is a 'det' dataset but "
                       r"model.heads.seg is a 'seg' head"):
        check_config(cfg, files=False)
    cfg.data.train.dior.head = 'dota'
    with pytest.raises(ConfigError, match=r"data.train.dior feeds the head 'dota'"):
        check_config(cfg, files=False)


@pytest.mark.parametrize('p, message', [
    ([1, 2], r'iteration_strategy.p has 2 weights for 3 training loaders '
             r"\['resisc', 'dior', 'potsdam'\]"),
    ({'resisc': 1, 'dota': 2}, r"iteration_strategy.p names \['dota'\], which are not "
                               'training loaders'),
])
def test_weighted_random_weights_must_match_the_loaders(cfg, p, message):
    cfg.iteration_strategy = dict(type='weighted_random', p=p)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, files=False)
    cfg.iteration_strategy = dict(type='weighted_random', p=[1, 2, 3])
    check_config(cfg, files=False)


def test_num_classes_must_match_the_dataset(cfg):
    cfg.model.heads.seg.num_classes = 6
    with pytest.raises(ConfigError, match=r"data.train.potsdam: the dataset has 5 classes but "
                       r"the head 'seg' has num_classes=6: set model.heads.seg.num_classes=5"):
        check_config(cfg, build_model(cfg.model), files=False)
    cfg.model.heads.seg.num_classes = 5
    cfg.data.train.dior.dataset['classes'] = ['airplane', 'ship']
    with pytest.raises(ConfigError, match="data.train.dior: the dataset has 2 classes"):
        check_config(cfg, files=False)


def test_train_model_checks_before_building_loaders(cfg, monkeypatch):
    import rscotr.apis.train as train_mod
    monkeypatch.setattr(train_mod, 'build_multitask_loader',
                        lambda *a, **k: pytest.fail('loaders built before the check'))
    cfg.iteration_strategy = dict(type='nope')
    with pytest.raises(ConfigError, match="'nope' is not a strategy"):
        train_model(build_model(cfg.model), cfg)


def test_train_tool_reports_config_errors(cfg, tmp_path, capsys):
    cfg.iteration_strategy = dict(type='nope')
    cfg_path = str(tmp_path / 'bad_cfg.py')
    write_config(cfg, cfg_path)
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    assert main([cfg_path, '--work-dir', str(tmp_path / 'w'), '--device', 'cpu']) == 2
    assert "'nope' is not a strategy" in capsys.readouterr().err


@pytest.mark.parametrize('path', sorted(
    p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p))
def test_every_training_config_passes(path):
    from mmcv import Config
    cfg = Config.fromfile(path)
    check_config(cfg, files=False)


@pytest.mark.parametrize('key, value, message', [
    ('optimizer.lr', -1, r'optimizer.lr=-1: the learning rate must be a positive number'),
    ('optimizer.lr', 0, r'optimizer.lr=0: the learning rate must be a positive number'),
    ('optimizer.weight_decay', -1e-4, r'optimizer.weight_decay=-0.0001: must be a number >= 0'),
    ('optimizer.type', 'AdamWW', r"optimizer.type='AdamWW' is not an optimiser"),
    ('optimizer.betas', (0.9, 1.5), r'optimizer.betas=\(0.9, 1.5\): must be two numbers in'),
    ('optimizer.paramwise_cfg.custom_keys.backbone.lr_mult', -0.1,
     r"custom_keys\['backbone'\].lr_mult=-0.1: must be a number >= 0"),
    ('optimizer_config.grad_clip.max_norm', 0,
     r'optimizer_config.grad_clip.max_norm=0: must be a positive number'),
    ('runner.max_iters', 0, r'runner.max_iters=0: must be a positive whole number'),
    ('runner.type', 'EpochBasedRunner', r"runner.type='EpochBasedRunner': co-training is "
                                        'iteration based'),
    ('lr_config.step', [8, 4], r'lr_config.step=\[8, 4\]: lr steps must be strictly '
                               r'increasing, e.g. step=\[4, 8\]'),
    ('lr_config.step', [4, 12], r'lr_config.step=\[4, 12\]: step\(s\) \[12\] are not below '
                                r'runner.max_iters=10'),
    ('lr_config.step', [-1, 8], r'lr_config.step=\[-1, 8\]: lr steps are iterations, none can '
                                'be negative'),
    ('lr_config.policy', 'stepp', r"lr_config.policy='stepp' is not an lr policy; use one of "
                                  r"\[.*'step'"),
    ('lr_config.by_epoch', True, r'lr_config.by_epoch is True'),
    ('lr_config.gamma', 0, r'lr_config.gamma=0: the lr factor at each step must be positive'),
    ('lr_config.warmup', 'cosine', r"lr_config.warmup='cosine': use one of \[None, 'constant'"),
])
def test_optimiser_and_schedule_settings(cfg, key, value, message):
    cfg.runner.max_iters = 10
    cfg.lr_config.step = [8]
    check_config(cfg, files=False)
    cfg.merge_from_dict({key: value})
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, files=False)


def test_warmup_settings(cfg):
    cfg.runner.max_iters = 10
    cfg.lr_config.update(step=[8], warmup='linear', warmup_iters=5, warmup_ratio=0.001)
    check_config(cfg, files=False)
    cfg.lr_config.update(warmup_iters=10, warmup_ratio=2)
    with pytest.raises(ConfigError) as info:
        check_config(cfg, files=False)
    assert 'lr_config.warmup_iters=10 is not below runner.max_iters=10' in str(info.value)
    assert 'lr_config.warmup_ratio=2: must be in (0, 1]' in str(info.value)


def test_train_tool_refuses_a_negative_lr_before_building(cfg, tmp_path, capsys):
    """The issue's case: --cfg-options optimizer.lr=-1 used to fail inside torch's
    optimiser constructor with a traceback."""
    cfg_path = str(tmp_path / 'cfg.py')
    write_config(cfg, cfg_path)
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    assert main([cfg_path, '--work-dir', str(tmp_path / 'w'), '--device', 'cpu',
                 '--cfg-options', 'optimizer.lr=-1']) == 2
    err = capsys.readouterr().err
    assert 'optimizer.lr=-1: the learning rate must be a positive number' in err
    assert 'Traceback' not in err and not (tmp_path / 'w').exists()


# ---------------------------------------------------------------- the settings of the run
def test_check_config_returns_the_run_settings(cfg):
    cfg.mixed_precision = 'bf16'
    cfg.nonfinite_loss = dict(max_consecutive=3)
    cfg.evaluation = dict(interval=4, save_best='resisc.accuracy_top-1')
    settings = check_config(cfg, files=False)
    assert settings.precision.name == 'bf16'
    assert settings.optimizer_config['type'] == 'RSCoTrOptimizerHook'
    assert settings.optimizer_config['mixed_precision'] is settings.precision
    assert settings.optimizer_config['grad_clip'] == dict(max_norm=0.1, norm_type=2)
    assert settings.evaluation == dict(interval=4, save_best='resisc.accuracy_top-1')
    assert settings.max_consecutive_nonfinite == 3
    assert check_config(cfg, validate=False, files=False).evaluation is None


def test_train_model_runs_with_the_checked_settings(demo_data, tmp_path, monkeypatch):
    """train_model takes precision, optimizer hook and non-finite limit from check_config."""
    import rscotr.apis.train as train_mod
    cfg = tiny_train_cfg(demo_data, str(tmp_path / 'work'), max_iters=2)
    checked = check_config(cfg)
    checked.max_consecutive_nonfinite = 7  # not in cfg: must come from the settings
    monkeypatch.setattr(train_mod, 'check_config', lambda *a, **k: checked)
    seen = {}

    def build_runner(runner_cfg, default_args):
        seen.update(runner_cfg)
        raise RuntimeError('stop here')

    monkeypatch.setattr(train_mod, 'build_runner', build_runner)
    with pytest.raises(RuntimeError, match='stop here'):
        train_model(build_model(cfg.model), cfg)
    assert seen['max_consecutive_nonfinite'] == 7
    assert seen['mixed_precision'] is checked.precision


@pytest.mark.parametrize('key, value, message', [
    ('evaluation.by_epoch', True, r"evaluation has unknown keys \['by_epoch'\]"),
    ('evaluation.interval', 0, r'evaluation.interval=0: must be a positive whole number'),
    ('evaluation.skip_tasks', ['classification'], r"evaluation.skip_tasks names "
                                                  r"\['classification'\]"),
    ('evaluation.save_best', 'potsdam.mIOU', r"evaluation.save_best key 'potsdam.mIOU': seg "
                                             r"evaluation gives no metric 'mIOU'"),
    ('nonfinite_loss', dict(max_consecutive=0), r'nonfinite_loss.max_consecutive=0: must be a '
                                                'whole number >= 1'),
    ('nonfinite_loss', dict(max_consec=2), r"nonfinite_loss has unknown keys \['max_consec'\]"),
    ('model.task_weights', dict(segmentation=0.1), r"model.task_weights.segmentation: "
                                                   r"'segmentation' is not a task"),
    ('iteration_strategy', dict(type='repeated_sequence', sequence=['resisc', 'dota']),
     r"iteration_strategy \(repeated_sequence\): unknown loader 'dota'; loaders are "
     r"\['resisc', 'dior', 'potsdam'\]"),
    ('iteration_strategy', dict(type='constant', idx=3),
     r'iteration_strategy \(constant\): .*3'),
])
def test_run_settings_that_cannot_work(cfg, key, value, message):
    cfg.merge_from_dict({key: value})
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, files=False)


def test_validation_names_are_checked_only_when_the_run_evaluates(cfg):
    cfg.evaluation = dict(interval=2, save_best={'dota.bbox_mAP': 1})
    with pytest.raises(ConfigError, match=r"save_best key 'dota.bbox_mAP': no validation "
                       r"dataset 'dota'"):
        check_config(cfg, files=False)
    check_config(cfg, validate=False, files=False)


# ---------------------------------------------------------------- data files
@pytest.fixture
def data_cfg(demo_data, tmp_path):
    """The tiny config on a private copy of the prepared RESISC45 and DIOR annotations."""
    import shutil
    prepared = tmp_path / 'prepared'
    shutil.copytree(osp.join(demo_data['prepared'], 'resisc45'), prepared / 'resisc45')
    shutil.copytree(osp.join(demo_data['prepared'], 'dior'), prepared / 'dior')
    paths = dict(demo_data, prepared=str(prepared))
    cfg = tiny_train_cfg(paths, str(tmp_path / 'work'), max_iters=2)
    cfg.data.train.potsdam.dataset.data_root = osp.join(demo_data['prepared'], 'potsdam')
    cfg.data.val.potsdam.dataset.data_root = osp.join(demo_data['prepared'], 'potsdam')
    return cfg, prepared


def test_the_data_files_pass(data_cfg):
    check_config(data_cfg[0])


def test_every_data_problem_is_listed(data_cfg):
    import shutil
    cfg, prepared = data_cfg
    shutil.rmtree(prepared / 'resisc45' / 'val')
    (prepared / 'dior' / 'annotations' / 'dior_train.json').write_text('')
    (prepared / 'resisc45' / 'meta' / 'train.txt').write_text('a/b.jpg 0\nc/d.jpg 45\n')
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    message = str(info.value)
    assert (f'data.val.resisc.dataset.data_prefix: {prepared}/resisc45/val: folder not found; '
            'prepare the data') in message
    assert f'data.train.dior.dataset.ann_file: {prepared}/dior/annotations/dior_train.json: ' \
        'empty file' in message
    assert (f'data.train.resisc.dataset.ann_file: {prepared}/resisc45/meta/train.txt:2: label '
            '45 is not a class index (0..44)') in message
    # without evaluation the validation files are not read
    with pytest.raises(ConfigError) as info:
        check_config(cfg, validate=False)
    assert 'data.val' not in str(info.value)


def test_annotation_classes_must_agree_with_the_dataset(data_cfg):
    import json
    cfg, prepared = data_cfg
    path = prepared / 'dior' / 'annotations' / 'dior_val.json'
    coco = json.loads(path.read_text())
    coco['categories'] = [c for c in coco['categories'] if c['name'] != 'ship']
    path.write_text(json.dumps(coco))
    with pytest.raises(ConfigError, match=r"data.val.dior.dataset.ann_file: .*dior_val.json: no "
                       r"categories \['ship'\] of the dataset's 20 classes"):
        check_config(cfg)
