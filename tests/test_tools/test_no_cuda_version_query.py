"""The tools never call mmcv.ops.get_compiling_cuda_version().

On a CUDA build of mmcv-full 1.7.2 with current torch that call kills the
process without a message. Here every Python process of a tool (children
too) starts with a ``sitecustomize`` that replaces the function (in
``mmcv.ops``, ``mmcv.ops.info`` and the compiled ``mmcv._ext``) by one that
kills the process with SIGSEGV; the tools must still finish.
"""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest

from ..cotrain_helpers import tiny_data_cfg, tiny_train_cfg
from ..tiny_rscotr import save_tiny_checkpoint, tiny_model_cfg, write_config, write_tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

SITECUSTOMIZE = '''
import os, signal


def _crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGSEGV)


import mmcv.ops
import mmcv.ops.info
from mmcv.utils import ext_loader

mmcv.ops.get_compiling_cuda_version = _crash
mmcv.ops.info.get_compiling_cuda_version = _crash
ext_loader.load_ext('_ext', ['get_compiling_cuda_version']).get_compiling_cuda_version = _crash
'''


@pytest.fixture(scope='module')
def crash_env(tmp_path_factory):
    site = tmp_path_factory.mktemp('crash_site')
    (site / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), REPO]), OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore')
    return env


def _run(args, env, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_the_replacement_kills(crash_env):
    # proves the trap works: a call dies like the real one on a CUDA build
    for code in ('import mmcv.ops; mmcv.ops.get_compiling_cuda_version()',
                 'from mmcv.utils import collect_env; collect_env()'):
        proc = _run(['-c', code], crash_env)
        assert proc.returncode == -signal.SIGSEGV, proc.stderr[-2000:]


def test_collect_env_finishes(crash_env):
    proc = _run(['tools/misc/collect_env.py'], crash_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'MMCV ops: compiled' in proc.stdout and 'multi-scale deformable attention' in \
        proc.stdout


def test_train_and_test_tools_finish(crash_env, demo_data, tmp_path):
    # train.py: two iterations of the tiny model on CPU (the classification
    # head: the test stand-in heads are registered in this process only)
    paths = demo_data
    data = tiny_data_cfg(paths)
    for split in ('train', 'val', 'test'):
        data[split] = dict(resisc=data[split]['resisc'])
    cfg = tiny_train_cfg(paths, str(tmp_path / 'unused'), max_iters=2,
                         model=tiny_model_cfg(('cls', ), stand_ins=True), data=data,
                         evaluation=dict(interval=2))
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    write_config(cfg, cfg_path)
    work_dir = tmp_path / 'train'
    proc = _run(['tools/train.py', cfg_path, '--work-dir', str(work_dir), '--device', 'cpu',
                 '--seed', '0'], crash_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work_dir / 'latest.pth').exists()
    # test.py: the tiny model with the shared encoder (deformable attention) on every task
    root = str(tmp_path / 'test')
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root=osp.dirname(paths['raw']))
    ckpt = save_tiny_checkpoint(config, osp.join(root, 'tiny.pth'))
    proc = _run(['tools/test.py', config, ckpt, '--work-dir', root, '--device', 'cpu'],
                crash_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'potsdam.mIoU' in open(next(
        osp.join(root, f) for f in os.listdir(root) if f.startswith('test_')
        and f.endswith('.json'))).read()
