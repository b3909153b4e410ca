"""Long runs survive crashes, kills, NaN losses: exact resume, atomic saves, signals,
non-finite loss guards (rscotr.apis.runner, rscotr.utils.io, the loader state hook)."""
import glob
import json
import math
import os
import os.path as osp
import runpy
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmcv.runner import HOOKS, CheckpointLoader, Hook, set_random_seed

from rscotr.apis import train_model
from rscotr.apis.runner import NonFiniteLossError
from rscotr.models import build_model
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import write_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _train(paths, work_dir, max_iters, **overrides):
    """A deterministic CPU run (seeded like ``tools/train.py --seed 0 --deterministic``)."""
    set_random_seed(0, deterministic=True)
    overrides.setdefault('evaluation', dict(interval=1000))
    overrides.setdefault('custom_hooks', [
        dict(type='TaskRecorderHook', out_file=osp.join(work_dir, 'tasks.json'))])
    cfg = tiny_train_cfg(paths, work_dir, max_iters=max_iters, **overrides)
    model = build_model(cfg.model)
    model.init_weights()
    return train_model(model, cfg, validate=True, timestamp='test')


def _record(work_dir):
    with open(osp.join(work_dir, 'tasks.json')) as f:
        return json.load(f)


def _load(path):
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


# ---------------------------------------------------------------- 1. exact resume
def test_resume_reproduces_tasks_batches_and_losses(demo_data, tmp_path):
    """8 iterations in one go == 4 iterations, a checkpoint, and a resumed run of 4."""
    common = dict(iteration_strategy=dict(type='random', seed=5),
                  checkpoint_config=dict(by_epoch=False, interval=4))
    full_dir, resumed_dir = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    _train(demo_data, full_dir, 8, **common)
    full = _record(full_dir)
    state = _load(osp.join(full_dir, 'iter_4.pth'))['meta']['multitask_loader']
    # shuffled loaders stopped mid-epoch: the resumed loaders must fast-forward
    assert any(0 < p for p in state['positions'].values())

    # the resumed process starts from a different global random state
    torch.manual_seed(123)
    _train(demo_data, resumed_dir, 8, resume_from=osp.join(full_dir, 'iter_4.pth'), **common)
    resumed = _record(resumed_dir)
    assert resumed['iters'] == [5, 6, 7, 8]
    assert resumed['steps'] == full['steps'][4:]
    assert resumed['files'] == full['files'][4:]  # same sampler order after resume
    assert resumed['losses'] == full['losses'][4:]  # bit-identical on CPU
    assert resumed['param_sum'] == full['param_sum']


def test_loader_resumes_mid_epoch_without_loading_skipped_batches(demo_data):
    from rscotr.datasets import build_multitask_loader
    from tests.cotrain_helpers import tiny_data_cfg

    def names(batch):
        return [osp.basename(m['filename']) for m in batch['img_metas'].data[0]]

    data = tiny_data_cfg(demo_data)['train']
    data = dict(resisc=data['resisc'])
    loader = build_multitask_loader(data, dict(type='round_robin'), seed=3)
    n = len(loader.loaders[0])
    for _ in range(n + 2):  # into the second epoch
        next(loader)
    state = loader.state_dict()
    assert state['epochs'] == {'resisc': 1} and state['positions'] == {'resisc': 2}
    expected = [names(next(loader)) for _ in range(n)]  # rest of epoch 1, start of 2

    other = build_multitask_loader(data, dict(type='round_robin'), seed=3)
    other.load_state_dict(state)
    assert [names(next(other)) for _ in range(n)] == expected


# ---------------------------------------------------------------- 2. atomic writes
@pytest.mark.parametrize('fault', ['torch.save', 'disk write'])
def test_failed_checkpoint_save_keeps_the_previous_one(demo_data, tmp_path, monkeypatch, fault):
    work_dir = str(tmp_path)
    _train(demo_data, work_dir, 2, checkpoint_config=dict(by_epoch=False, interval=2))
    good = osp.join(work_dir, 'iter_2.pth')
    before = _load(good)['state_dict']

    if fault == 'torch.save':
        def dying_save(obj, f, *args, **kwargs):  # serialises half, then dies
            f.write(b'PK\x03\x04 half a checkpoint')
            raise OSError('simulated crash while saving')

        monkeypatch.setattr(torch, 'save', dying_save)
    else:
        from mmcv.fileio.file_client import HardDiskBackend

        def dying_put(self, obj, filepath):  # half the bytes reach the disk, then it dies
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError('simulated crash while saving')

        monkeypatch.setattr(HardDiskBackend, 'put', dying_put)

    from rscotr.apis.runner import CoTrainRunner
    runner = CoTrainRunner.__new__(CoTrainRunner)  # only save_checkpoint is used
    runner.model, runner.optimizer, runner.meta = torch.nn.Linear(2, 2), None, None
    runner._epoch, runner._iter = 0, 1  # would overwrite iter_2.pth and latest.pth
    with pytest.raises(OSError, match='simulated crash'):
        runner.save_checkpoint(work_dir)
    monkeypatch.undo()

    assert not glob.glob(osp.join(work_dir, '.*'))  # no temporary file left
    after = _load(good)['state_dict']
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert os.readlink(osp.join(work_dir, 'latest.pth')) == 'iter_2.pth'
    assert _load(osp.join(work_dir, 'latest.pth'))['meta']['iter'] == 1


def test_atomic_helpers_leave_old_file_and_no_temporary(tmp_path):
    from rscotr.utils.io import atomic_output, atomic_symlink, atomic_write_text
    path = tmp_path / 'eval.json'
    atomic_write_text(path, '{"ok": 1}')
    with pytest.raises(RuntimeError):
        with atomic_output(path) as tmp:
            with open(tmp, 'w') as f:
                f.write('{"ok": ')
            raise RuntimeError('killed')
    assert path.read_text() == '{"ok": 1}'
    assert os.listdir(tmp_path) == ['eval.json']
    (tmp_path / 'a.pth').write_bytes(b'a')
    (tmp_path / 'b.pth').write_bytes(b'b')
    atomic_symlink('a.pth', tmp_path / 'latest.pth')
    atomic_symlink('b.pth', tmp_path / 'latest.pth')  # replaces an existing link
    assert os.readlink(tmp_path / 'latest.pth') == 'b.pth'
    assert sorted(os.listdir(tmp_path)) == ['a.pth', 'b.pth', 'eval.json', 'latest.pth']


# ---------------------------------------------------------------- 3. signals
#: tools/train.py in a child process that registers the tiny stand-in heads first
_TOOL = ('import runpy, sys; import tests.cotrain_helpers; '
         'main = runpy.run_path("tools/train.py", run_name="tool")["main"]; '
         'sys.exit(main(sys.argv[1:]))')


def _tool_args(cfg_path, work_dir, *extra):
    return [cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--seed', '0',
            '--deterministic', '--no-validate', '--cfg-options', 'log_config.interval=1',
            *extra]


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(demo_data, tmp_path):
    cfg = tiny_train_cfg(demo_data, str(tmp_path / 'unused'), max_iters=60,
                         checkpoint_config=dict(by_epoch=False, interval=1000),
                         iteration_strategy=dict(type='round_robin'))
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    write_config(cfg, cfg_path)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, '-c', _TOOL, *_tool_args(cfg_path, work_dir)],
                            cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # wait for a few logged iterations
            logs = glob.glob(osp.join(work_dir, '*.log.json'))
            if logs and sum(1 for line in open(logs[0]) if '"mode": "train"' in line) >= 3:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    ckpts = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    assert len(ckpts) == 1
    stopped_at = int(osp.basename(ckpts[0])[5:-4])
    assert 3 <= stopped_at < 60
    assert os.readlink(osp.join(work_dir, 'latest.pth')) == osp.basename(ckpts[0])
    state = _load(ckpts[0])['meta']['multitask_loader']
    assert sum(state['steps'].values()) == stopped_at  # the step in progress completed
    (log, ) = glob.glob(osp.join(work_dir, '*[0-9].log'))
    assert f'stopped by SIGTERM after iteration {stopped_at}' in open(log).read()

    # resume (in process, for speed) to the end with fewer iterations left (the lr
    # step moves inside the shorter run: the config check refuses steps after the end)
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    assert main(_tool_args(cfg_path, work_dir) + [
        'runner.max_iters=' + str(stopped_at + 2), f'lr_config.step=[{stopped_at + 1}]',
        '--resume-from', osp.join(work_dir, 'latest.pth')]) == 0
    assert osp.isfile(osp.join(work_dir, f'iter_{stopped_at + 2}.pth'))
    final = _load(osp.join(work_dir, 'latest.pth'))
    assert sum(final['meta']['multitask_loader']['steps'].values()) == stopped_at + 2


@HOOKS.register_module(force=True)
class SignalAtHook(Hook):
    """Send ``signum`` to this process during iteration ``at`` (test fault)."""

    def __init__(self, at: int, signum: int = signal.SIGINT):
        self.at, self.signum = at, signum

    def before_train_iter(self, runner):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)  # arrives mid-step


def test_sigint_stops_after_the_step_and_resumes_exactly(demo_data, tmp_path):
    """In process: Ctrl-C in iteration 3 -> iter_3.pth; resuming matches an uninterrupted run."""
    common = dict(iteration_strategy=dict(type='random', seed=1),
                  checkpoint_config=dict(by_epoch=False, interval=1000))
    full_dir, cut_dir = str(tmp_path / 'full'), str(tmp_path / 'cut')
    assert _train(demo_data, full_dir, 6, **common) is None
    assert _train(demo_data, cut_dir, 6, **common, custom_hooks=[
        dict(type='TaskRecorderHook', out_file=osp.join(cut_dir, 'tasks.json')),
        dict(type='SignalAtHook', at=3)]) == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert _record(cut_dir)['iters'] == [1, 2, 3]  # the step in progress completed
    assert sorted(f for f in os.listdir(cut_dir) if f.endswith('.pth')) == [
        'iter_3.pth', 'latest.pth']
    os.remove(osp.join(cut_dir, 'tasks.json'))
    assert _train(demo_data, cut_dir, 6, **common,
                  resume_from=osp.join(cut_dir, 'latest.pth')) is None
    full, resumed = _record(full_dir), _record(cut_dir)
    assert resumed['iters'] == [4, 5, 6]
    assert resumed['losses'] == full['losses'][3:]
    assert resumed['param_sum'] == full['param_sum']


# ---------------------------------------------------------------- 4. non-finite losses
def _nan_at(monkeypatch, iters):
    """Make the model's loss NaN (one ``loss`` term) at the given 1-based iterations."""
    from rscotr.models.multitask import rscotr as rscotr_mod
    real = rscotr_mod.RSCoTr.forward_train
    calls = {'n': 0}

    def forward_train(self, *args, **kwargs):
        losses = real(self, *args, **kwargs)
        calls['n'] += 1
        if calls['n'] in iters:
            name = next(k for k in losses if k.startswith('loss'))
            losses[name] = losses[name] * float('nan')
        return losses

    monkeypatch.setattr(rscotr_mod.RSCoTr, 'forward_train', forward_train)


def test_nan_step_is_skipped_with_weights_unchanged(demo_data, tmp_path, monkeypatch, caplog):
    _nan_at(monkeypatch, {3})
    work_dir = str(tmp_path)
    _train(demo_data, work_dir, 5)
    rec = _record(work_dir)
    sums = rec['sums']
    assert sums[2] == sums[1]  # step 3: no backward, no optimizer step
    assert sums[1] != sums[0] and sums[3] != sums[2]  # other steps train
    assert math.isnan(rec['losses'][2])
    assert 'non-finite loss at iteration 3 (task seg, dataset potsdam)' in caplog.text
    assert 'seg.potsdam.loss_ce=nan' in caplog.text
    assert osp.isfile(osp.join(work_dir, 'iter_5.pth'))


def test_consecutive_nan_steps_stop_the_run_and_keep_the_last_checkpoint(
        demo_data, tmp_path, monkeypatch):
    _nan_at(monkeypatch, {3, 4, 5, 6})
    work_dir = str(tmp_path)
    with pytest.raises(NonFiniteLossError, match='3 consecutive training steps'):
        _train(demo_data, work_dir, 8, nonfinite_loss=dict(max_consecutive=3),
               checkpoint_config=dict(by_epoch=False, interval=2))
    assert sorted(os.listdir(work_dir)) == sorted(
        ['iter_2.pth', 'iter_4.pth', 'latest.pth'] +
        [f for f in os.listdir(work_dir) if not f.endswith('.pth')])
    # iter_4.pth was saved after a skipped step: its weights are those of iteration 2
    w2, w4 = _load(osp.join(work_dir, 'iter_2.pth')), _load(osp.join(work_dir, 'iter_4.pth'))
    assert all(torch.equal(w2['state_dict'][k], w4['state_dict'][k]) for k in w2['state_dict'])
    assert all(torch.isfinite(v).all() for v in w4['state_dict'].values()
               if v.is_floating_point())
    assert os.readlink(osp.join(work_dir, 'latest.pth')) == 'iter_4.pth'


def test_nonfinite_loss_config_is_checked(demo_data, tmp_path):
    from rscotr.apis.checks import ConfigError
    with pytest.raises(ConfigError, match=r"nonfinite_loss has unknown keys \['max_consecutve'\]"):
        _train(demo_data, str(tmp_path), 1, nonfinite_loss=dict(max_consecutve=3))
