"""Co-training runs on CPU: single process, resume, the train tool, and 2-process gloo DDP."""
import glob
import json
import os
import os.path as osp
import runpy
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmcv.runner import CheckpointLoader

from rscotr.apis import train_model
from rscotr.models import build_model
from tests.cotrain_helpers import DESIGN_KEYS, prepare_demo_data, tiny_train_cfg
from tests.tiny_rscotr import write_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))




def _train(paths, work_dir, max_iters, distributed=False, **overrides):
    cfg = tiny_train_cfg(paths, work_dir, max_iters=max_iters, **overrides)
    model = build_model(cfg.model)
    model.init_weights()
    train_model(model, cfg, distributed=distributed, validate=True, timestamp='test')
    return cfg


def _read_log(work_dir):
    (path, ) = glob.glob(osp.join(work_dir, '*.log.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope='module')
def trained(demo_data, tmp_path_factory):
    """A 6-iteration co-training run (random strategy, checkpoints at 3 and 6).

    Seed 2 draws dior, potsdam, resisc, dior, resisc, potsdam.
    """
    work_dir = str(tmp_path_factory.mktemp('train'))
    _train(demo_data, work_dir, 6,
           iteration_strategy=dict(type='random', seed=2),
           checkpoint_config=dict(by_epoch=False, interval=3),
           custom_hooks=[dict(type='TaskRecorderHook', out_file=osp.join(work_dir, 'tasks.json'))])
    return work_dir


def test_training_writes_checkpoints_logs_and_metrics(trained):
    assert osp.islink(osp.join(trained, 'latest.pth'))
    assert os.readlink(osp.join(trained, 'latest.pth')) == 'iter_6.pth'
    assert osp.isfile(osp.join(trained, 'best_weighted_score_iter_6.pth'))
    with open(osp.join(trained, 'eval_iter_6.json')) as f:
        metrics = json.load(f)['metrics']
    assert set(DESIGN_KEYS) <= set(metrics)

    records = _read_log(trained)
    train_keys = set().union(*(r for r in records if r.get('mode') == 'train'))
    assert {'data_time', 'time', 'lr', 'grad_norm'} <= train_keys
    with open(osp.join(trained, 'tasks.json')) as f:
        steps = json.load(f)['steps']
    assert {tuple(s) for s in steps} == {('cls', 'resisc'), ('det', 'dior'), ('seg', 'potsdam')}
    assert {'cls.resisc.loss_cls', 'cls.resisc.loss', 'det.dior.loss_bbox', 'det.dior.loss',
            'seg.potsdam.loss_ce', 'seg.potsdam.loss'} <= train_keys
    assert 'loss' not in train_keys  # every training value carries its task and dataset
    val = [r for r in records if r.get('mode') == 'val']
    assert val and set(DESIGN_KEYS) <= set(val[-1])
    assert 'potsdam.IoU.car' not in val[-1]  # per-class values only in eval_iter_*.json

    ckpt = CheckpointLoader.load_checkpoint(osp.join(trained, 'iter_6.pth'), map_location='cpu')
    state = ckpt['meta']['multitask_loader']
    assert sum(state['steps'].values()) == 6
    best = CheckpointLoader.load_checkpoint(
        osp.join(trained, 'best_weighted_score_iter_6.pth'), map_location='cpu')
    assert best['meta']['hook_msgs']['best_score'] > 0


def test_resume_continues_the_strategy_sequence(trained, demo_data, tmp_path):
    with open(osp.join(trained, 'tasks.json')) as f:
        full = json.load(f)['steps']
    work_dir = str(tmp_path)
    out = osp.join(work_dir, 'tasks.json')
    _train(demo_data, work_dir, 6,
           iteration_strategy=dict(type='random', seed=2),
           checkpoint_config=dict(by_epoch=False, interval=3),
           evaluation=dict(interval=100),
           resume_from=osp.join(trained, 'iter_3.pth'),
           custom_hooks=[dict(type='TaskRecorderHook', out_file=out)])
    with open(out) as f:
        resumed = json.load(f)['steps']
    assert resumed == full[3:]


def test_train_tool_cpu(demo_data, tmp_path):
    cfg = tiny_train_cfg(demo_data, str(tmp_path / 'unused'), max_iters=2,
                         evaluation=dict(interval=2, skip_tasks=['det', 'seg']))
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    write_config(cfg, cfg_path)
    main = runpy.run_path(osp.join(REPO_ROOT, 'tools', 'train.py'), run_name='tool')['main']
    work_dir = str(tmp_path / 'work')
    assert main([cfg_path, '--work-dir', work_dir, '--device', 'cpu', '--seed', '3',
                 '--cfg-options', 'log_config.interval=1']) == 0
    assert osp.isfile(osp.join(work_dir, 'tiny_cfg.py'))  # config dumped
    assert osp.isfile(osp.join(work_dir, 'latest.pth'))
    assert glob.glob(osp.join(work_dir, '*.log.json'))
    with open(osp.join(work_dir, 'eval_iter_2.json')) as f:
        metrics = json.load(f)['metrics']
    assert 'resisc.accuracy_top-1' in metrics
    assert not any(k.startswith(('dior.', 'potsdam.')) for k in metrics)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, data_root, work_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from rscotr.utils import init_dist
    init_dist('pytorch', device='cpu')
    paths = prepare_demo_data(data_root)
    # each rank seeds the strategy differently: only rank 0's draws may count
    _train(paths, work_dir, 6, distributed=True,
           iteration_strategy=dict(type='random', seed=10 + rank),
           evaluation=dict(interval=6, save_best=dict(keys={'resisc.accuracy_top-1': 1})),
           custom_hooks=[dict(type='TaskRecorderHook',
                              out_file=osp.join(work_dir, f'rank{rank}.json'))])
    torch.distributed.destroy_process_group()


def test_distributed_cpu_training_trains_the_same_task_on_every_rank(demo_data, tmp_path):
    work_dir = str(tmp_path)
    data_root = osp.dirname(demo_data['raw'])
    mp.start_processes(_ddp_worker, args=(2, _free_port(), data_root, work_dir), nprocs=2,
                       start_method='spawn')
    records = []
    for rank in range(2):
        with open(osp.join(work_dir, f'rank{rank}.json')) as f:
            records.append(json.load(f))
    assert len(records[0]['steps']) == 6
    assert records[0]['steps'] == records[1]['steps']
    assert len({task for task, _ in records[0]['steps']}) > 1
    # gradients were averaged: both replicas hold the same weights
    assert records[0]['param_sum'] == pytest.approx(records[1]['param_sum'], rel=1e-6)
    assert osp.isfile(osp.join(work_dir, 'latest.pth'))
    with open(osp.join(work_dir, 'eval_iter_6.json')) as f:
        metrics = json.load(f)['metrics']
    assert set(DESIGN_KEYS) <= set(metrics)


def _train_with_workers(paths, work_dir, workers=2, **overrides):
    """12 round-robin steps with ``workers`` loader workers per dataset; DIOR's epoch is
    its 2 batches of steps 2 and 5, so its loader restarts (persistent workers) after
    the checkpoint of iteration 6."""
    cfg = tiny_train_cfg(paths, work_dir, max_iters=12,
                         checkpoint_config=dict(by_epoch=False, interval=6),
                         evaluation=dict(interval=100),
                         custom_hooks=[dict(type='TaskRecorderHook',
                                            out_file=osp.join(work_dir, 'tasks.json'))],
                         **overrides)
    for entry in cfg.data.train.values():
        entry.workers_per_gpu = workers
    torch.manual_seed(0)  # the same initial weights in every run
    model = build_model(cfg.model)
    model.init_weights()
    train_model(model, cfg, distributed=False, validate=True, timestamp='test')
    with open(osp.join(work_dir, 'tasks.json')) as f:
        return json.load(f)


def test_resume_with_loader_workers_gives_the_same_batches_and_losses(demo_data, tmp_path):
    """A run resumed at iteration 6 (loaders mid-epoch, workers with their own random
    states) trains on the batches of the uninterrupted run, augmented alike: the same
    image files and the same losses in every later step."""
    full = _train_with_workers(demo_data, str(tmp_path / 'full'))
    resumed = _train_with_workers(demo_data, str(tmp_path / 'resumed'),
                                  resume_from=str(tmp_path / 'full' / 'iter_6.pth'))
    assert resumed['iters'] == list(range(7, 13))
    assert [tuple(s) for s in full['steps']] == [('cls', 'resisc'), ('det', 'dior'),
                                                 ('seg', 'potsdam')] * 4
    assert resumed['steps'] == full['steps'][6:]
    assert resumed['files'] == full['files'][6:]
    dior = [full['files'][i] for i in (1, 4, 7, 10)]  # two epochs of 2 batches
    assert sorted(dior[0] + dior[1]) == sorted(dior[2] + dior[3])
    assert resumed['losses'] == pytest.approx(full['losses'][6:], rel=1e-6, abs=1e-7)
    assert resumed['param_sum'] == pytest.approx(full['param_sum'], rel=1e-6)
    # the augmentation of a sample does not depend on the worker that loads it
    in_process = _train_with_workers(demo_data, str(tmp_path / 'no_workers'), workers=0)
    assert in_process['files'] == full['files']
    assert in_process['losses'] == pytest.approx(full['losses'], rel=1e-6, abs=1e-7)
