"""Config files and --cfg-options with mistakes: one ConfigError naming the file and line,
or the key (rscotr.utils.config.load_config)."""
import os.path as osp

import pytest

from rscotr.utils.config import ConfigError, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo', 'rscotr_demo.py')


def _write(path, text):
    path.write_text(text)
    return str(path)


def _error(path, options=None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, options)
    return str(info.value)


def test_a_good_config_loads(tmp_path):
    base = _write(tmp_path / 'base.py', 'a = dict(b=1, c=[1, 2])\nname = "x"\n')
    cfg = load_config(_write(tmp_path / 'cfg.py', '_base_ = ["base.py"]\nd = {{_base_.a}}\n'),
                      {'a.b': 2, 'name': 'y'})
    assert cfg.a.b == 2 and cfg.d.c == [1, 2] and cfg.name == 'y'
    assert base


def test_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path / 'cfg.py', 'a = 1\nb = dict(x=1,\nc = 3\n')
    message = _error(path)
    assert message.startswith(f'{path}:2: syntax error'), message


def test_syntax_error_in_a_base_names_the_base(tmp_path):
    base = _write(tmp_path / 'base.py', 'a = 1\n\nb = [1, 2\n')
    path = _write(tmp_path / 'cfg.py', '_base_ = "base.py"\n')
    message = _error(path)
    assert message.startswith(f'{base}:3: syntax error'), message


def test_missing_base_names_the_line(tmp_path):
    _write(tmp_path / 'base.py', 'a = 1\n')
    path = _write(tmp_path / 'cfg.py', '_base_ = [\n    "base.py",\n    "../nope/runtime.py",\n]\n')
    message = _error(path)
    assert message.startswith(f"{path}:3: _base_ file '../nope/runtime.py' not found"), message


def test_undefined_base_variable(tmp_path):
    _write(tmp_path / 'base.py', 'train_pipeline = [1]\n')
    path = _write(tmp_path / 'cfg.py',
                  '_base_ = "base.py"\n\npipeline = {{_base_.test_pipeline}}\n')
    message = _error(path)
    assert message.startswith(f'{path}:3: {{{{_base_.test_pipeline}}}} is not defined by the '
                              "_base_ files (base.py); define 'test_pipeline'"), message


def test_an_error_of_the_config_code_names_file_and_line(tmp_path, monkeypatch):
    import gc
    import sys
    unraisable = []
    monkeypatch.setattr(sys, 'unraisablehook', unraisable.append)
    _write(tmp_path / 'base.py', 'lr = 1e-4\n\nmax_lr = base_lr * 10\n')
    path = _write(tmp_path / 'cfg.py', '_base_ = "base.py"\n')
    message = _error(path)
    assert message.startswith(f'{tmp_path / "base.py"}:3: the config cannot be loaded '
                              '(NameError'), message
    gc.collect()  # mmcv's temporary file is closed: no "Exception ignored" traceback later
    assert not unraisable, unraisable[0].exc_value


def test_duplicate_keys_among_bases(tmp_path):
    _write(tmp_path / 'a.py', 'pipeline = [1]\n')
    _write(tmp_path / 'b.py', 'pipeline = [2]\n')
    path = _write(tmp_path / 'cfg.py', '_base_ = ["a.py", "b.py"]\n')
    assert "several _base_ files define ['pipeline']" in _error(path)


def test_missing_file_and_folder(tmp_path):
    assert _error(str(tmp_path / 'nope.py')) == f'{tmp_path / "nope.py"}: config file not found; ' \
        'check the path'
    assert 'is a folder' in _error(str(tmp_path))


@pytest.mark.parametrize('options, message', [
    ({'optimzer.lr': 1e-3}, "--cfg-options optimzer.lr: the config has no 'optimzer'; did you "
                            "mean 'optimizer'?"),
    ({'data.trian.resisc.samples_per_gpu': 2}, "--cfg-options data.trian.resisc.samples_per_gpu: "
                                               "the config has no 'data.trian'; did you mean "
                                               "'data.train'?"),
    ({'runner.max_iters': 'ten'}, "--cfg-options runner.max_iters='ten': the config has 300000 "
                                  'there (a number); give a number'),
    ({'optimizer.lr.x': 1}, "--cfg-options optimizer.lr.x: optimizer.lr is a number, not a "
                            "dict: it has no key 'x'"),
])
def test_cfg_options_name_the_key(options, message):
    ref = osp.join(REPO, 'configs', 'rscotr', 'rscotr_swin-t_300k_resisc-dior-potsdam.py')
    assert _error(ref, options) == message


def test_cfg_options_may_set_run_settings_and_new_options():
    cfg = load_config(DEMO, {'mixed_precision': 'bf16', 'inference.bands.seg': [4, 1, 2],
                             'optimizer_config.grads_to_none': True,
                             'runner.max_iters': 10})
    assert cfg.mixed_precision == 'bf16' and cfg.inference.bands.seg == [4, 1, 2]
    assert cfg.runner.max_iters == 10 and cfg.optimizer_config.grads_to_none is True
