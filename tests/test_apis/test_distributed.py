"""Data-parallel training in several processes (gloo, CPU): the ranks stay in step.

Under DDP every rank must issue the same collectives in the same order in
every iteration, whatever its own batch holds; otherwise gloo pairs one
rank's gradient bucket with another rank's scalar and aborts ("op.preamble.
length <= op.nbytes"), or, worse, pairs two scalars of different meaning.
These tests run the real heads (the demo model) in two processes with ranks
whose batches differ in the ways that used to change the collectives: a
detection batch without boxes on one rank only, a non-finite loss on one rank
only, log keys held by one rank only. They also check that two processes
with batch b train exactly as one process with batch 2b.
"""
import json
import os
import os.path as osp
import socket
from typing import Dict

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv import Config
from mmcv.parallel import DataContainer
from mmcv.runner import HOOKS, CheckpointLoader, Hook

from rscotr.apis import train_model
from rscotr.apis.test import collect_results
from rscotr.datasets.builder import build_task_dataloader
from rscotr.models import build_model
from rscotr.utils.dist import all_ranks_any, mean_over_ranks
from tests.cotrain_helpers import point_data_at, prepare_demo_data, tiny_data_cfg, tiny_train_cfg
from tests.tiny_rscotr import NORM
from tests.tiny_rscotr import tiny_model_cfg

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO_ROOT, 'configs', 'demo', 'rscotr_demo.py')
#: The iteration of the demo run whose classification batch is NaN on rank 1.
NAN_ITER = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _start(world_size: int, port: int, rank: int) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from rscotr.utils import init_dist
    init_dist('pytorch', device='cpu')


def _spawn(fn, world_size: int, *args) -> None:
    mp.start_processes(fn, args=(world_size, _free_port(), *args), nprocs=world_size,
                       start_method='spawn')


# ---------------------------------------------------------------- the helpers


def _reduce_worker(rank, world_size, port, out_dir):
    _start(world_size, port, rank)
    same = mean_over_ranks({'loss_a': torch.tensor(1.0 + rank), 'acc': 10.0 * rank})
    # rank 0 has an accuracy, rank 1 a key of its own (and fewer keys)
    differ = ({'loss_a': torch.tensor(2.0), 'accuracy_top-1': torch.tensor(50.0),
               'loss': torch.tensor(3.0)} if rank == 0 else
              {'loss_a': torch.tensor(4.0), 'loss_dn': torch.tensor(8.0)})
    differ = mean_over_ranks(differ)
    flags = all_ranks_any(rank == 1)
    none = all_ranks_any(False)
    # 5 samples over 2 ranks: the samplers pad, so every rank has as many batches
    lengths = {}
    for shuffle in (True, False):
        loader = build_task_dataloader(list(range(5)), samples_per_gpu=2, workers_per_gpu=0,
                                       dist=True, shuffle=shuffle, seed=0)
        lengths[str(shuffle)] = [len(loader), [b.tolist() for b in loader]]
    # test results of those 5 samples, gathered in dataset order without the padding
    part = [f'sample{i}' for i in range(rank, 6, 2)]  # rank 1 holds sample 0 again (padding)
    collected = {str(gpu): collect_results([p.replace('sample5', 'sample0') for p in part], 5,
                                           tmpdir=osp.join(out_dir, 'collect'), gpu_collect=gpu)
                 for gpu in (False, True)}
    with open(osp.join(out_dir, f'reduce{rank}.json'), 'w') as f:
        json.dump(dict(same=list(same.items()), differ=list(differ.items()), flags=flags,
                       none=none, lengths=lengths, collected=collected), f)
    dist.destroy_process_group()


def test_collectives_of_log_values_flags_samplers_and_results(tmp_path):
    """Log values are means over the ranks that hold them; flags are agreed; padded
    samplers give every rank as many batches; results come back in order, unpadded."""
    _spawn(_reduce_worker, 2, str(tmp_path))
    results = []
    for rank in range(2):
        with open(tmp_path / f'reduce{rank}.json') as f:
            results.append(json.load(f))
    for rank, res in enumerate(results):
        assert res['same'] == [['loss_a', 1.5], ['acc', 5.0]]
        expected = {'loss_a': 3.0, 'accuracy_top-1': 50.0, 'loss': 3.0, 'loss_dn': 8.0}
        assert dict(res['differ']) == expected
        # this rank's keys first, in their order
        own = ['loss_a', 'accuracy_top-1', 'loss'] if rank == 0 else ['loss_a', 'loss_dn']
        assert [k for k, _ in res['differ']][:len(own)] == own
        assert res['flags'] == [1] and res['none'] == []
        for shuffle, (length, batches) in res['lengths'].items():
            assert length == len(batches) == 2, shuffle
    assert results[0]['collected'] == {gpu: [f'sample{i}' for i in range(5)]
                                       for gpu in ('False', 'True')}
    assert results[1]['collected'] == {'False': None, 'True': None}
    for shuffle in ('True', 'False'):  # the ranks' parts cover the data set
        seen = [i for res in results for batch in res['lengths'][shuffle][1] for i in batch]
        assert len(seen) == 6 and set(seen) == set(range(5))


def test_helpers_without_a_process_group():
    assert mean_over_ranks({'a': torch.tensor([1.0, 3.0]), 'b': 2}) == {'a': 2.0, 'b': 2.0}
    assert all_ranks_any(True) == [0] and all_ranks_any(False) == []


# ---------------------------------------------------------------- the demo model in 2 processes


@HOOKS.register_module(force=True)
class RankTroubleHook(Hook):
    """Make rank ``rank``'s batches differ from the others' in the troublesome ways.

    Every detection batch of that rank loses its boxes (DINO then has no
    denoising query there), and its classification batch of iteration
    ``nan_iter`` becomes NaN (a non-finite loss on that rank only).
    """

    def __init__(self, rank: int = 1, nan_iter: int = NAN_ITER):
        self.rank = rank
        self.nan_iter = nan_iter

    def before_train_iter(self, runner):
        if runner.rank != self.rank:
            return
        batch = runner.data_batch
        if batch['task'] == 'det':
            n = len(batch['img_metas'].data[0])
            batch['gt_bboxes'] = DataContainer([[torch.zeros((0, 4)) for _ in range(n)]])
            batch['gt_labels'] = DataContainer([[torch.zeros((0, ), dtype=torch.long)
                                                 for _ in range(n)]])
        if batch['task'] == 'cls' and runner.iter == self.nan_iter:
            img = batch['img']  # a tensor (mmcls pipelines) or a stacked container
            batch['img'] = (img * float('nan') if isinstance(img, torch.Tensor) else
                            DataContainer([img.data[0] * float('nan')], stack=True))


@HOOKS.register_module(force=True)
class RankRecorderHook(Hook):
    """Record, per step, the task, this rank's loss and the logged values; at the
    end the skipped steps and every parameter (``<out>/rank<r>.json``, ``.pth``)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.steps = []

    def after_train_iter(self, runner):
        out = runner.outputs
        self.steps.append(dict(iter=runner.iter, task=out['task'], dataset=out['dataset'],
                               local_loss=float(out['loss'].detach()),
                               log_vars=dict(out['log_vars'])))

    def after_run(self, runner):
        with open(osp.join(self.out_dir, f'rank{runner.rank}.json'), 'w') as f:
            json.dump(dict(steps=self.steps, skipped=runner.skipped_steps), f)
        torch.save({k: v.detach().clone() for k, v in runner.model.module.state_dict().items()},
                   osp.join(self.out_dir, f'rank{runner.rank}.pth'))


def _initial_state(model_cfg) -> Dict[str, torch.Tensor]:
    """The weights a run starts from (seed 0, as the workers build them)."""
    torch.manual_seed(0)
    model = build_model(model_cfg)
    model.init_weights()
    return model.state_dict()


def _demo_cfg(paths: Dict[str, str], work_dir: str, max_iters: int, **overrides) -> Config:
    cfg = Config.fromfile(DEMO_CONFIG)
    point_data_at(cfg, paths, workers=0)
    cfg.work_dir = work_dir
    cfg.runner.max_iters = max_iters
    cfg.lr_config.step = [max_iters - 1]
    cfg.checkpoint_config.interval = max_iters
    cfg.log_config.interval = 2
    cfg.evaluation.interval = max_iters
    cfg.merge_from_dict(overrides)
    return cfg


def _demo_worker(rank, world_size, port, data_root, work_dir, max_iters):
    _start(world_size, port, rank)
    paths = prepare_demo_data(data_root)
    cfg = _demo_cfg(paths, work_dir, max_iters, custom_hooks=[
        dict(type='RankTroubleHook', rank=1), dict(type='RankRecorderHook', out_dir=work_dir)])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    train_model(model, cfg, distributed=True, validate=True, timestamp='ddp')
    dist.destroy_process_group()


def test_demo_model_trains_in_step_when_the_ranks_batches_differ(demo_data, tmp_path):
    """Real heads, 2 processes: boxes missing on rank 1 only, NaN on rank 1 only."""
    # the demo sequence once: 2 classification (the second, iteration NAN_ITER, NaN on
    # rank 1), 3 detection (without boxes on rank 1), 1 segmentation
    max_iters = 6
    work_dir = str(tmp_path)
    _spawn(_demo_worker, 2, osp.dirname(demo_data['raw']), work_dir, max_iters)

    ranks = []
    for rank in range(2):
        with open(osp.join(work_dir, f'rank{rank}.json')) as f:
            ranks.append(json.load(f))
    steps0, steps1 = ranks[0]['steps'], ranks[1]['steps']
    assert len(steps0) == len(steps1) == max_iters
    assert [s['task'] for s in steps0] == [s['task'] for s in steps1]
    assert {s['task'] for s in steps0} == {'cls', 'det', 'seg'}
    # the NaN of one rank skipped that step on both, counted once per run
    assert ranks[0]['skipped'] == ranks[1]['skipped'] == 1
    for s0, s1 in zip(steps0, steps1):
        # the logged values are the same on both ranks: the means over the ranks
        key = f'{s0["task"]}.{s0["dataset"]}.loss'
        if s0['iter'] == NAN_ITER:
            assert s0['task'] == 'cls' and s1['local_loss'] != s1['local_loss']  # NaN
            assert s0['log_vars'][key] != s0['log_vars'][key]
            continue
        assert s0['log_vars'] == s1['log_vars'], s0['iter']
        assert s0['log_vars'][key] == pytest.approx((s0['local_loss'] + s1['local_loss']) / 2,
                                                    rel=1e-5)
        if s0['task'] == 'det':  # rank 1 had no box: its denoising losses were zero
            assert 'det.dior.dn_loss_bbox' in s0['log_vars']
    # both replicas hold the same weights, and they were trained
    params0 = torch.load(osp.join(work_dir, 'rank0.pth'))
    params1 = torch.load(osp.join(work_dir, 'rank1.pth'))
    assert params0.keys() == params1.keys()
    for name in params0:
        assert torch.equal(params0[name], params1[name]), name
    ckpt = CheckpointLoader.load_checkpoint(osp.join(work_dir, f'iter_{max_iters}.pth'),
                                            map_location='cpu')
    initial = _initial_state(Config.fromfile(DEMO_CONFIG).model)
    changed = [k for k, v in ckpt['state_dict'].items()
               if v.dtype.is_floating_point and not torch.equal(v, initial[k])]
    assert any(k.startswith('heads.det.') for k in changed)
    assert any(k.startswith('heads.seg.') for k in changed)
    with open(osp.join(work_dir, f'eval_iter_{max_iters}.json')) as f:
        metrics = json.load(f)['metrics']
    assert {'resisc.accuracy_top-1', 'dior.bbox_mAP', 'potsdam.mIoU'} <= set(metrics)


# ---------------------------------------------------------------- 2 x b == 1 x 2b

#: Deterministic training pipelines (no random crop, flip or scale), so that
#: a sample gives the same tensor in any process.
EXACT_PIPELINES = dict(
    resisc=[dict(type='LoadImageFromFile'), dict(type='Resize', size=(32, 32)),
            dict(type='Normalize', **NORM), dict(type='ImageToTensor', keys=['img']),
            dict(type='ToTensor', keys=['gt_label']), dict(type='Collect', keys=['img', 'gt_label'])],
    dior=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
          dict(type='Resize', img_scale=(64, 64), keep_ratio=True),
          dict(type='RandomFlip', flip_ratio=0.0), dict(type='Normalize', **NORM),
          dict(type='Pad', size_divisor=32),
          dict(type='DefaultFormatBundle'), dict(type='Collect', keys=['img', 'gt_bboxes',
                                                                      'gt_labels'])],
    potsdam=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
             dict(type='Resize', img_scale=(32, 32), keep_ratio=True),
             dict(type='RandomFlip', prob=0.0), dict(type='Normalize', **NORM),
             dict(type='DefaultFormatBundle'),
             dict(type='Collect', keys=['img', 'gt_semantic_seg'])])
EXACT_ITERS = 6


def _exact_cfg(paths, work_dir: str, batch: int) -> Config:
    """The tiny model with the real heads (DINO without denoising), batch ``batch``."""
    model = tiny_model_cfg()
    model['heads']['det']['dn_cfg'] = None  # random noise drawn per rank: not exact
    data = tiny_data_cfg(paths)
    for name, entry in data['train'].items():
        entry['dataset']['pipeline'] = EXACT_PIPELINES[name]
        entry['samples_per_gpu'] = batch
    # 4 DIOR training images (one without boxes): the same 2 + 2 in either run
    return tiny_train_cfg(
        paths, work_dir, max_iters=EXACT_ITERS, model=model, data=data,
        iteration_strategy=dict(type='round_robin'),
        # SGD: AdamW turns the rounding noise of gradients that are exactly zero in
        # theory (e.g. a bias that shifts every query's mask alike) into lr-sized
        # steps, in one process as much as in two
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
        lr_config=dict(policy='fixed', by_epoch=False),
        log_config=dict(interval=EXACT_ITERS, hooks=[]),
        evaluation=dict(interval=1000))


def _exact_train(paths, work_dir, batch, distributed):
    cfg = _exact_cfg(paths, work_dir, batch)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    train_model(model, cfg, distributed=distributed, validate=False, timestamp='exact')


def _exact_worker(rank, world_size, port, data_root, work_dir):
    _start(world_size, port, rank)
    _exact_train(prepare_demo_data(data_root), work_dir, 1, distributed=True)
    dist.destroy_process_group()


def test_two_processes_of_batch_b_train_as_one_process_of_batch_2b(demo_data, tmp_path):
    """Data parallel is the same training: cls (mean over images), DINO (Hungarian
    matching per image, losses over the positives averaged over the ranks), seg
    (mean over pixels of equal-size patches); the tiny model normalises with
    LayerNorm and GroupNorm, per sample, so nothing depends on the split of the
    batch. DINO's denoising queries are off here: their noise is drawn per rank
    and their group count follows the batch's largest box count."""
    two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
    _spawn(_exact_worker, 2, osp.dirname(demo_data['raw']), two)
    torch.set_num_threads(1)
    _exact_train(demo_data, one, 2, distributed=False)
    name = f'iter_{EXACT_ITERS}.pth'
    state_two = CheckpointLoader.load_checkpoint(osp.join(two, name), map_location='cpu')
    state_one = CheckpointLoader.load_checkpoint(osp.join(one, name), map_location='cpu')
    assert state_two['meta']['multitask_loader']['steps'] == {'resisc': 2, 'dior': 2,
                                                              'potsdam': 2}
    two_sd, one_sd = state_two['state_dict'], state_one['state_dict']
    initial = _initial_state(_exact_cfg(demo_data, str(tmp_path / 'x'), 1).model)
    moved = 0
    for key, value in one_sd.items():
        if not value.dtype.is_floating_point:
            continue
        assert torch.allclose(two_sd[key], value, rtol=1e-5, atol=1e-6), key
        moved += not torch.equal(value, initial[key])
    assert moved > 0.5 * len(one_sd)
