"""Ordinary mistakes in configs, data paths and options, given to the tools as a user would:
exit code 2 (1 for a data error during a run), the file or key named in one line per
problem, and no traceback on stderr (issue: every mistake is found before the first step)."""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
from mmcv.runner import HOOKS, Hook

from rscotr.apis.checkpoint import read_checkpoint

from ..cotrain_helpers import tiny_train_cfg
from ..tiny_rscotr import tool_main, write_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _errors(err: str):
    """The ``error:`` lines of ``err``, which holds no traceback (apart from the logging
    module's reports of a logger set up by an earlier in-process test, writing to that
    test's closed capture, which no user sees)."""
    tool_output = re.sub(r'--- Logging error ---\n.*?\nArguments: [^\n]*\n', '', err, flags=re.S)
    assert 'Traceback' not in tool_output, err
    return [line for line in err.splitlines() if line.startswith('error: ')]


def _train(argv, capsys):
    code = tool_main('tools/train.py')(argv)
    return code, capsys.readouterr().err


@pytest.fixture
def cfg_path(demo_data, tmp_path):
    """A tiny training config on the tiny demo data (no evaluation, 2 iterations)."""
    cfg = tiny_train_cfg(demo_data, str(tmp_path / 'unused'), max_iters=2)
    path = str(tmp_path / 'tiny.py')
    write_config(cfg, path)
    return path


# ---------------------------------------------------------------- config files
def test_config_with_a_syntax_error(tmp_path, capsys):
    path = tmp_path / 'bad.py'
    path.write_text('_base_ = ["../x.py"]\nmodel = dict(type="RSCoTr"\nrunner = 1\n')
    code, err = _train([str(path), '--work-dir', str(tmp_path / 'w')], capsys)
    assert code == 2
    lines = _errors(err)
    assert len(lines) == 1 and lines[0].startswith(f'error: {path}:2: syntax error'), err
    assert not (tmp_path / 'w').exists()


def test_config_with_a_missing_base(tmp_path, capsys):
    path = tmp_path / 'cfg.py'
    path.write_text(f'_base_ = [\n    "{osp.join(REPO, "configs/demo/rscotr_demo.py")}",\n'
                    '    "../_base_/schedules/adamw_3k.py",\n]\n')
    code, err = _train([str(path)], capsys)
    assert code == 2
    lines = _errors(err)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {path}:3: _base_ file '../_base_/schedules/adamw_3k.py' not found"), err


# ---------------------------------------------------------------- data and settings, together
def test_data_and_strategy_mistakes_are_listed_together(demo_data, cfg_path, tmp_path, capsys):
    """A missing data folder, an empty annotation file and a strategy naming an unknown
    loader: all three reported in one run, before anything is built."""
    empty = tmp_path / 'dior_train.json'
    empty.write_text('')
    missing = str(tmp_path / 'resisc45' / 'train')
    code, err = _train([cfg_path, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                        f'data.train.resisc.dataset.data_prefix={missing}',
                        f'data.train.dior.dataset.ann_file={empty}',
                        'iteration_strategy.type=repeated_sequence',
                        'iteration_strategy.sequence=[resisc,dota]'], capsys)
    assert code == 2
    text = '\n'.join(_errors(err) + err.splitlines())
    assert f'data.train.resisc.dataset.data_prefix: {missing}: folder not found' in text
    assert f'data.train.dior.dataset.ann_file: {empty}: empty file' in text
    assert "iteration_strategy (repeated_sequence): unknown loader 'dota'" in text
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))


@pytest.mark.parametrize('options, message', [
    (['model.task_weights.dett=1'], "model.task_weights.dett: 'dett' is not a task, head or dataset"),
    (['evaluation.save_best=resisc.accuracy_top1'],
     "evaluation.save_best key 'resisc.accuracy_top1': cls evaluation gives no metric "
     "'accuracy_top1'"),
    (['evaluation.save_best=dota.bbox_mAP'],
     "evaluation.save_best key 'dota.bbox_mAP': no validation dataset 'dota'"),
    (['load_from=/nonexistent/x.pth'], 'load_from: /nonexistent/x.pth: no such file'),
])
def test_names_that_do_not_exist(cfg_path, tmp_path, capsys, options, message):
    code, err = _train([cfg_path, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                        *options], capsys)
    assert code == 2
    assert any(message in line for line in _errors(err)), err


def test_wrong_model_load_from_names_file_and_keys(cfg_path, tmp_path, capsys):
    import torch

    from rscotr.models import build_model
    from mmcv import Config
    cfg = Config.fromfile(cfg_path)
    cfg.model.heads.cls.num_classes = 10
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': build_model(cfg.model).state_dict()}, other)
    code, err = _train([cfg_path, '--work-dir', str(tmp_path / 'w'), '--no-validate',
                        '--cfg-options', f'load_from={other}'], capsys)
    assert code == 2
    lines = _errors(err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f'error: {other}: the checkpoint is of another model')
    assert 'heads.cls.fc.weight' in lines[0]
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))


# ---------------------------------------------------------------- test and inference tools
def test_test_tool_unknown_task(tmp_path, capsys):
    code = tool_main('tools/test.py')([osp.join(REPO, 'configs/demo/rscotr_demo.py'), 'x.pth',
                                       '--tasks', 'cls', 'detection', '--work-dir',
                                       str(tmp_path / 'w')])
    assert code == 2
    lines = _errors(capsys.readouterr().err)
    assert any(line.startswith("error: --tasks detection: neither tasks (['cls', 'det', 'seg']) "
                               'nor test datasets') for line in lines), lines
    assert any(line.startswith('error: x.pth: no such file') for line in lines), lines
    assert not (tmp_path / 'w').exists()


def test_test_tool_lists_missing_test_data(tmp_path, capsys):
    from ..tiny_rscotr import save_tiny_checkpoint, write_tiny_config
    config = write_tiny_config(str(tmp_path / 'tiny.py'), data_root=str(tmp_path / 'nodata'))
    ckpt = save_tiny_checkpoint(config, str(tmp_path / 'tiny.pth'))
    code = tool_main('tools/test.py')([config, ckpt, '--work-dir', str(tmp_path / 'w')])
    assert code == 2
    lines = _errors(capsys.readouterr().err)
    # one line per missing folder / file, every selected dataset
    for name in ('resisc', 'dior', 'potsdam'):
        assert any(line.startswith(f'error: data.test.{name}.dataset.') and str(tmp_path / 'nodata')
                   in line for line in lines), lines
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('where', ['under_a_file', 'read_only'])
def test_inference_unwritable_output_folder(tmp_path, capsys, where):
    import cv2
    import numpy as np

    from ..tiny_rscotr import save_tiny_checkpoint, write_tiny_config
    config = write_tiny_config(str(tmp_path / 'tiny.py'), data_root=str(tmp_path))
    ckpt = save_tiny_checkpoint(config, str(tmp_path / 'tiny.pth'))
    image = str(tmp_path / 'img.png')
    cv2.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    if where == 'under_a_file':
        (tmp_path / 'a_file').write_text('')
        out = str(tmp_path / 'a_file' / 'out')
        expected = f'{tmp_path / "a_file"} is a file, not a folder'
    else:  # a read-only file system (also for root, unlike a chmod)
        if not osp.isdir('/sys') or os.access('/sys', os.W_OK) and os.getuid() != 0:
            pytest.skip('no read-only /sys here')
        out = '/sys/rscotr_out'
        expected = '/sys is not writable'
    code = tool_main('tools/inference_one_img.py')([config, ckpt, image, '--out-dir', out])
    assert code == 2
    lines = _errors(capsys.readouterr().err)
    assert lines == [f'error: --out-dir {out}: {expected} (Permission denied); choose a folder '
                     'you can write to'] or (len(lines) == 1 and expected in lines[0]), lines


# ---------------------------------------------------------------- a file removed mid-run
@HOOKS.register_module(force=True)
class RemoveFolderHook(Hook):
    """Delete ``folder`` after iteration ``at`` (a user deleting data during a run)."""

    def __init__(self, folder: str, at: int):
        self.folder = folder
        self.at = at

    def after_train_iter(self, runner):
        if runner.iter + 1 == self.at:
            shutil.rmtree(self.folder)


def test_a_file_removed_mid_run(demo_data, tmp_path):
    """A loader worker finds an image gone: the run ends with the file named in one line
    (exit 1), the last checkpoint intact and the traceback in the log file only."""
    data = tmp_path / 'resisc45'
    shutil.copytree(osp.join(demo_data['prepared'], 'resisc45'), data)
    work = tmp_path / 'w'
    cfg = tiny_train_cfg(demo_data, str(work), max_iters=30,
                         checkpoint_config=dict(by_epoch=False, interval=2),
                         custom_hooks=[dict(type='RemoveFolderHook',
                                            folder=str(data / 'train'), at=2)])
    cfg.data.train.resisc.dataset.update(data_prefix=str(data / 'train'),
                                         ann_file=str(data / 'meta' / 'train.txt'))
    cfg.data.train.resisc.workers_per_gpu = 1
    path = str(tmp_path / 'cfg.py')
    write_config(cfg, path)
    code = ('import runpy, sys; import tests.cotrain_helpers, tests.test_tools.test_input_errors; '
            'sys.exit(runpy.run_path("tools/train.py", run_name="tool")["main"](sys.argv[1:]))')
    proc = subprocess.run([sys.executable, '-c', code, path, '--no-validate', '--seed', '0'],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = _errors(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f'error: {data / "train"}') and 'file not found' in lines[0]
    latest = work / 'latest.pth'
    assert f'{latest}' in lines[0]
    meta = read_checkpoint(str(latest))['meta']  # intact: it reads
    assert 2 <= meta['iter'] + 1 < 30
    log = open(sorted(glob.glob(str(work / '*.log')))[-1]).read()
    assert 'Traceback' in log and 'DataLoader worker' in log


# ---------------------------------------------------------------- odd but valid images
@pytest.mark.parametrize('kind, expected', [
    ('grayscale', '1 band(s) of uint8; bands used: cls 1,1,1'),
    ('rgba', '4 band(s) of uint8; bands used: cls 1,2,3'),
    ('16bit', '3 band(s) of uint16; bands used: cls 1,2,3; scaled to 8 bits (auto)'),
    ('5band', '5 band(s) of uint16; bands used: cls 4,1,2; scaled to 8 bits (auto)'),
])
def test_inference_takes_odd_images_and_logs_the_bands(tmp_path, capsys, caplog, kind,
                                                       expected):
    import cv2
    import numpy as np

    from ..tiny_rscotr import save_tiny_checkpoint, write_geotiff, write_tiny_config
    config = write_tiny_config(str(tmp_path / 'tiny.py'), data_root=str(tmp_path),
                               tasks=('cls', ))
    ckpt = save_tiny_checkpoint(config, str(tmp_path / 'tiny.pth'))
    rng = np.random.RandomState(0)
    extra = []
    if kind == '5band':
        image = write_geotiff(str(tmp_path / 'scene.tif'),
                              rng.randint(0, 4000, (5, 40, 48)).astype(np.uint16))
        extra = ['--bands', '4,1,2']
    else:
        shape = {'grayscale': (40, 48), 'rgba': (40, 48, 4), '16bit': (40, 48, 3)}[kind]
        dtype = np.uint16 if kind == '16bit' else np.uint8
        image = str(tmp_path / f'{kind}.png')
        cv2.imwrite(image, rng.randint(0, 4000 if kind == '16bit' else 255, shape).astype(dtype))
    out = tmp_path / 'out'
    with caplog.at_level('INFO', logger='rscotr'):
        code = tool_main('tools/inference_one_img.py')([config, ckpt, image, '--tasks', 'cls',
                                                        '--out-dir', str(out), *extra])
    assert code == 0, capsys.readouterr().err
    assert (out / f'{osp.splitext(osp.basename(image))[0]}_result.json').is_file()
    assert any(expected in record.getMessage() for record in caplog.records), \
        [r.getMessage() for r in caplog.records]
