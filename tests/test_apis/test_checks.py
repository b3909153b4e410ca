"""Config errors are caught when a run starts, with what to change (rscotr.apis.checks)."""
import glob
import os.path as osp
import runpy

import pytest

from rscotr.apis import train_model
from rscotr.apis.checks import ConfigError, check_config
from rscotr.models import build_model
from tests.cotrain_helpers import tiny_train_cfg

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def cfg(tmp_path):
    # no data needed: every check runs before a dataset is built
    paths = dict(raw=str(tmp_path / 'raw'), prepared=str(tmp_path / 'prepared'))
    return tiny_train_cfg(paths, str(tmp_path / 'work'), max_iters=2)


def test_the_tiny_config_passes(cfg):
    check_config(cfg)
    check_config(cfg, build_model(cfg.model))


def test_unknown_strategy(cfg):
    cfg.iteration_strategy = dict(type='round_robbin')
    with pytest.raises(ConfigError, match=r"iteration_strategy.type='round_robbin' is not a "
                       r"strategy; use one of \[.*'round_robin'"):
        check_config(cfg)


def test_unknown_task(cfg):
    cfg.data.train.resisc.task = 'classification'
    with pytest.raises(ConfigError, match=r"data.train.resisc.task='classification' is not a "
                       r"task; use one of \['cls', 'det', 'seg'\]"):
        check_config(cfg)


def test_dataset_without_head(cfg):
    cfg.model.heads.det = None
    model = build_model(cfg.model)
    for model_arg in (None, model):
        with pytest.raises(ConfigError, match=r"data.train.dior has task 'det' but the model "
                           r"has no 'det' head .*add model.heads.det or remove the dataset "
                           r"with data=dict\(train=dict\(dior=None\)\)") as info:
            check_config(cfg, model_arg)
        assert 'data.val.dior' in str(info.value)  # every problem is listed


@pytest.mark.parametrize('p, message', [
    ([1, 2], r'iteration_strategy.p has 2 weights for 3 training loaders '
             r"\['resisc', 'dior', 'potsdam'\]"),
    ({'resisc': 1, 'dota': 2}, r"iteration_strategy.p names \['dota'\], which are not "
                               'training loaders'),
])
def test_weighted_random_weights_must_match_the_loaders(cfg, p, message):
    cfg.iteration_strategy = dict(type='weighted_random', p=p)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
    cfg.iteration_strategy = dict(type='weighted_random', p=[1, 2, 3])
    check_config(cfg)


def test_num_classes_must_match_the_dataset(cfg):
    cfg.model.heads.seg.num_classes = 6
    with pytest.raises(ConfigError, match=r"data.train.potsdam: the dataset has 5 classes but "
                       r"the 'seg' head has num_classes=6: set model.heads.seg.num_classes=5"):
        check_config(cfg, build_model(cfg.model))
    cfg.model.heads.seg.num_classes = 5
    cfg.data.train.dior.dataset['classes'] = ['airplane', 'ship']
    with pytest.raises(ConfigError, match="data.train.dior: the dataset has 2 classes"):
        check_config(cfg)


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
    cfg.dump(cfg_path)
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    assert main([cfg_path, '--work-dir', str(tmp_path / 'w'), '--device', 'cpu']) == 2
    assert "'nope' is not a strategy" in capsys.readouterr().err


@pytest.mark.parametrize('path', sorted(
    p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p))
def test_every_training_config_passes(path):
    from mmcv import Config
    cfg = Config.fromfile(path)
    check_config(cfg)
