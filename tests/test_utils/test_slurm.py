"""--launcher slurm with the environment variables srun sets (no Slurm needed)."""
import os
import socket
import subprocess
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from rscotr.utils.dist import _slurm_env, first_slurm_host
from tests.tiny_rscotr import tool_main

ROOT = Path(__file__).resolve().parents[2]
SLURM_KEYS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NODELIST', 'RANK',
              'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@pytest.fixture
def clean_env(monkeypatch):
    for key in SLURM_KEYS:
        monkeypatch.delenv(key, raising=False)
    # no scontrol: the host list is expanded by our parser
    monkeypatch.setenv('PATH', '/nonexistent')
    return monkeypatch


@pytest.mark.parametrize('nodelist, first', [
    ('node17', 'node17'), ('gpu[07-09,12],cpu1', 'gpu07'), ('a,b', 'a'),
    ('rack[1-2]-n[3-4]', 'rack1-n3'), ('host[5,3]', 'host5')])
def test_first_slurm_host(clean_env, nodelist, first):
    assert first_slurm_host(nodelist) == first


def test_slurm_variables_become_torch_variables(clean_env):
    clean_env.setenv('SLURM_PROCID', '5')
    clean_env.setenv('SLURM_NTASKS', '8')
    clean_env.setenv('SLURM_LOCALID', '1')
    clean_env.setenv('SLURM_NODELIST', 'gpu[03-04]')
    _slurm_env()
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['LOCAL_RANK']) == (
        '5', '8', '1')
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == ('gpu03', '29500')
    _slurm_env(port=29601)  # dist_params.port wins over the environment
    assert os.environ['MASTER_PORT'] == '29601'


def test_outside_slurm_is_a_clear_error(clean_env):
    with pytest.raises(RuntimeError, match=r"SLURM_PROCID.*srun"):
        _slurm_env()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(index, world_size, port, out_dir):
    os.environ.update(SLURM_PROCID=str(index), SLURM_NTASKS=str(world_size),
                      SLURM_LOCALID=str(index), SLURM_NODELIST='localhost',
                      MASTER_PORT=str(port))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR'):
        os.environ.pop(key, None)
    import torch
    import torch.distributed as dist

    from rscotr.utils import init_dist
    from rscotr.utils.dist import get_dist_info
    init_dist('slurm', device='cpu')
    value = torch.tensor([float(index + 1)])
    dist.all_reduce(value)
    rank, size = get_dist_info()
    Path(out_dir, f'{index}.txt').write_text(f'{rank} {size} {value.item()}')
    dist.destroy_process_group()


def test_two_slurm_tasks_form_a_process_group(tmp_path):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
                       start_method='spawn')
    assert [(tmp_path / f'{i}.txt').read_text() for i in range(2)] == ['0 2 3.0', '1 2 3.0']


def test_slurm_scripts_start_one_task_per_gpu_with_the_slurm_launcher(tmp_path):
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'srun').write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done > "$SRUN_LOG"\n')
    (fake / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f'{fake}:{os.environ["PATH"]}', GPUS='16', GPUS_PER_NODE='8',
               SRUN_ARGS='--quotatype=auto --exclusive', SRUN_LOG=str(tmp_path / 'train.txt'))
    subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'job1', 'cfg.py', 'work',
                    '--seed', '1'], cwd=ROOT, env=env, check=True)
    args = (tmp_path / 'train.txt').read_text().split('\n')
    for expected in ('-p', 'gpu', '--job-name=job1', '--gres=gpu:8', '--ntasks=16',
                     '--ntasks-per-node=8', '--kill-on-bad-exit=1', '--quotatype=auto',
                     '--exclusive', '-u', 'tools/train.py', 'cfg.py', '--work-dir=work',
                     '--seed', '1'):
        assert expected in args, expected
    assert args[args.index('--launcher') + 1] == 'slurm'
    env['SRUN_LOG'] = str(tmp_path / 'test.txt')
    env.pop('SRUN_ARGS')
    subprocess.run(['bash', 'tools/slurm_test.sh', 'gpu', 'job2', 'cfg.py', 'ckpt.pth'],
                   cwd=ROOT, env=env, check=True)
    args = (tmp_path / 'test.txt').read_text().split('\n')
    script = args.index('tools/test.py')
    assert args[script + 1:script + 5] == ['cfg.py', 'ckpt.pth', '--launcher', 'slurm']
    bad = subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu'], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and 'usage' in bad.stderr


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_tools_accept_the_slurm_launcher(tool, capsys):
    with pytest.raises(SystemExit) as done:  # argparse's --help, in process
        tool_main(tool)(['--help'])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert '{none,pytorch,slurm}' in out and '--cfg-options' in out
