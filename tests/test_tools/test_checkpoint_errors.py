"""Broken checkpoints given to the tools: exit code 2, one line naming the file and what is
wrong, no traceback (tools/test.py, the inference tools, the confusion-matrix plot,
tools/train.py --resume-from / --load-task-pretrain)."""
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from ..cotrain_helpers import tiny_train_cfg
from ..tiny_rscotr import (save_tiny_checkpoint, tool_main, write_config, write_geotiff,
                           write_tiny_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: kind -> words the error must contain.
PROBLEMS = {
    'truncated': 'truncated or corrupt checkpoint',
    'not_a_checkpoint': 'not a PyTorch checkpoint',
    'wrong_model': 'the checkpoint is of another model',
}


@pytest.fixture(scope='module')
def files(demo_data, tmp_path_factory):
    """A tiny config on tiny data (the tools check the data too), its checkpoint and one
    broken checkpoint of every kind."""
    root = tmp_path_factory.mktemp('ckpt_errors')
    config = write_tiny_config(str(root / 'tiny.py'), data_root=osp.dirname(demo_data['raw']))
    good = save_tiny_checkpoint(config, str(root / 'tiny.pth'))
    data = open(good, 'rb').read()
    (root / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (root / 'not_a_checkpoint.pth').write_text('see the release page for the weights\n')
    state = torch.load(good, weights_only=True)['state_dict']
    state['heads.cls.fc.weight'] = torch.zeros(10, state['heads.cls.fc.weight'].shape[1])
    state['heads.cls.fc.bias'] = torch.zeros(10)  # a 10-class head
    torch.save({'state_dict': state}, str(root / 'wrong_model.pth'))
    img = cv2.resize(np.random.RandomState(0).randint(0, 255, (4, 4, 3)).astype(np.uint8),
                     (72, 64))
    image = str(root / 'image.png')
    cv2.imwrite(image, img)
    scene = write_geotiff(str(root / 'scene.tif'), img.transpose(2, 0, 1))
    return dict(root=root, config=config, good=good, image=image, scene=scene,
                **{kind: str(root / f'{kind}.pth') for kind in PROBLEMS})


def _no_traceback(err: str) -> bool:
    """No traceback in ``err``, apart from the logging module's own reports: run
    in-process, a logger set up during an earlier test writes to that test's
    closed capture ('--- Logging error ---'), which no user sees."""
    tool_output = re.sub(r'--- Logging error ---\n.*?\nArguments: [^\n]*\n', '', err,
                         flags=re.S)
    return 'Traceback' not in tool_output


def _one_clean_error(err: str, path: str, kind: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, err
    assert path in lines[0] and PROBLEMS[kind] in lines[0], lines[0]
    assert _no_traceback(err), err


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_test_tool(files, tmp_path, capsys, kind):
    main = tool_main('tools/test.py')
    assert main([files['config'], files[kind], '--work-dir', str(tmp_path / 'w'),
                 '--device', 'cpu']) == 2
    _one_clean_error(capsys.readouterr().err, files[kind], kind)


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_inference_one_img(files, tmp_path, capsys, kind):
    main = tool_main('tools/inference_one_img.py')
    out = tmp_path / 'out'
    assert main([files['config'], files[kind], files['image'], '--out-dir', str(out)]) == 2
    _one_clean_error(capsys.readouterr().err, files[kind], kind)
    assert not out.exists()


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_inference_scene(files, tmp_path, capsys, kind):
    main = tool_main('tools/inference_scene.py')
    out = tmp_path / 'out'
    assert main([files['config'], files[kind], files['scene'], '--tile', '64', '--overlap',
                 '16', '--out-dir', str(out), '--no-progress']) == 2
    _one_clean_error(capsys.readouterr().err, files[kind], kind)
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_confusion_matrix_plot(files, tmp_path, capsys, kind):
    main = tool_main('tools/analysis/plot_confusion_matrix.py')
    png = tmp_path / 'cm.png'
    assert main([files['config'], files[kind], '--out', str(png)]) == 2
    _one_clean_error(capsys.readouterr().err, files[kind], kind)
    assert not png.exists()


@pytest.fixture(scope='module')
def train_config(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp('train_ckpt')
    cfg = tiny_train_cfg(demo_data, str(root / 'unused'), max_iters=2)
    cfg_path = str(root / 'cfg.py')
    write_config(cfg, cfg_path)
    return cfg, cfg_path


def _train(cfg_path, work_dir, *extra):
    main = tool_main('tools/train.py')
    return main([cfg_path, '--work-dir', str(work_dir), '--device', 'cpu', '--no-validate',
                 *extra])


@pytest.mark.parametrize('kind', ['truncated', 'not_a_checkpoint', 'weights_only', 'wrong_model'])
def test_train_resume_from(files, train_config, tmp_path, capsys, kind):
    from rscotr.models import build_model
    cfg, cfg_path = train_config
    if kind in ('weights_only', 'wrong_model'):
        model = build_model(cfg.model)
        if kind == 'wrong_model':
            model = build_model(dict(cfg.model, heads=dict(cfg.model.heads, cls=dict(
                cfg.model.heads.cls, num_classes=10))))
        path = str(tmp_path / f'{kind}.pth')
        torch.save({'state_dict': model.state_dict()}, path)
    else:
        path = files[kind]
    assert _train(cfg_path, tmp_path / 'w', '--resume-from', path) == 2
    err = capsys.readouterr().err
    if kind == 'weights_only':
        assert f'error: {path}: cannot resume' in err and 'load_from=' in err
        assert _no_traceback(err)
    else:
        _one_clean_error(err, path, kind)
    # a file that is not a checkpoint is refused before the work dir is made
    work = tmp_path / 'w'
    assert not work.exists() or not [f for f in os.listdir(work) if f.endswith('.pth')]


@pytest.mark.parametrize('kind', ['truncated', 'not_a_checkpoint', 'unrelated'])
def test_train_load_task_pretrain(files, train_config, tmp_path, capsys, kind):
    _, cfg_path = train_config
    if kind == 'unrelated':  # an image classifier, nothing of a DINO detector
        path = str(tmp_path / 'resnet.pth')
        torch.save({'state_dict': {'conv1.weight': torch.zeros(8, 3, 7, 7),
                                   'fc.weight': torch.zeros(10, 8)}}, path)
    else:
        path = files[kind]
    assert _train(cfg_path, tmp_path / 'w', '--load-task-pretrain', path) == 2
    err = capsys.readouterr().err
    if kind == 'unrelated':
        assert f'error: {path}: no tensor of the checkpoint has a place in the model' in err
        assert _no_traceback(err)
    else:
        _one_clean_error(err, path, kind)


def _in_a_process(script: str, *argv: str) -> subprocess.CompletedProcess:
    """A tool run as a shell runs it (the tiny stand-in heads registered first)."""
    code = ('import runpy, sys; import tests.cotrain_helpers; '
            f'sys.exit(runpy.run_path("{script}", run_name="tool")["main"](sys.argv[1:]))')
    return subprocess.run([sys.executable, '-c', code, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))


def test_tools_in_a_process(files, train_config, tmp_path):
    """Exit status and stderr as a shell sees them: no traceback at all."""
    proc = _in_a_process('tools/test.py', files['config'], files['truncated'], '--work-dir',
                         str(tmp_path / 'w'), '--device', 'cpu')
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    _one_clean_error(proc.stderr, files['truncated'], 'truncated')
    proc = _in_a_process('tools/train.py', train_config[1], '--work-dir', str(tmp_path / 't'),
                         '--device', 'cpu', '--resume-from', files['not_a_checkpoint'])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    _one_clean_error(proc.stderr, files['not_a_checkpoint'], 'not_a_checkpoint')
