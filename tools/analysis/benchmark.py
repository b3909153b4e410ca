"""Benchmark RSCoTr: training steps, shared three-task inference, deformable attention, co-training.

Every measurement runs in a fresh child process (this script re-run with
``--child``), so the peak resident memory reported for it (``ru_maxrss``)
is its own. The model is the one of CONFIG with random weights (the
backbone's ``init_cfg`` is removed: no checkpoint is read).

Measurements (``--only`` picks some):

* ``train``: one training step per task (forward, backward, gradient
  clipping as in ``optimizer_config``, the config's AdamW step: the
  training optimizer hook's own step) at the task's input size and the
  config's training batch size, median and min/max over ``--repeat``, in
  each ``--precision`` (fp32; bf16 / fp16: the forward under autocast as in
  training with ``mixed_precision``); the round-robin average is the mean
  of the three tasks' medians (one round-robin round, per step);
* ``infer``: (a) one square image of the segmentation size through the
  three heads of the shared model (:meth:`RSCoTr.simple_test_tasks`: Swin
  and the neck run once) vs three single-task models of the same
  architecture run one after another; the ratio is
  ``multitask_inference_ratio``. Time per component (backbone, neck,
  encoder, heads) tells what is shared. (b) the reference sizes (one image
  per task, each its own size, so nothing can be shared);
* ``msda``: multi-scale deformable attention, our dispatcher's path for the
  device vs mmcv's pure-PyTorch function, forward and forward + backward
  (inputs and timing of ``tools/analysis/bench_msda.py``);
* ``cotrain``: a few co-training steps with the config's loaders (batch
  sizes, workers, pipelines; data of ``--demo-dir``, generated and
  converted into a temporary folder when absent) under round-robin; the
  share of the step time spent in ``next(loader)`` and the peak memory.

Example::

    python tools/analysis/benchmark.py configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py \\
        --repeat 3 --json work_dirs/benchmark.json
    python tools/analysis/benchmark.py --device cuda --only train --precision fp32 bf16
"""
import argparse
import json
import logging
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv import Config

from rscotr.datasets.tasks import TASKS

import bench_msda  # tools/analysis/bench_msda.py, next to this script

REFERENCE_CONFIG = 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
REFERENCE_SIZES = dict(cls=224, det=800, seg=512)
MEASUREMENTS = ('train', 'infer', 'msda', 'cotrain')
PRECISIONS = ('fp32', 'bf16', 'fp16')
TRAIN_CHILDREN = tuple(f'train:{t}:{p}' for t in TASKS for p in PRECISIONS)
TARGETS = dict(multitask_inference_ratio=('<=', 0.5), msda_fwd_bwd_speedup=('>=', 1.5),
               msda_max_abs_diff=('<=', 1e-4),  # outputs; gradients are reported apart
               data_wait_fraction=('<', 0.05),
               cotrain_peak_rss_gb=('<=', 16.0))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=REFERENCE_CONFIG)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median, min, max)')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--only', nargs='+', choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument('--sizes', default='cls=224,det=800,seg=512',
                        help='input side per task, e.g. cls=64,det=96,seg=64')
    parser.add_argument('--batch', default=None,
                        help='training batch per task (default: samples_per_gpu of '
                        'data.train), e.g. cls=2,det=1,seg=1')
    parser.add_argument('--msda-levels', default='100x100,50x50,25x25,13x13',
                        help='(h)x(w) of each level (default: an 800x800 image)')
    parser.add_argument('--msda-batch', type=int, default=2)
    parser.add_argument('--msda-heads', type=int, default=8)
    parser.add_argument('--msda-dims', type=int, default=32)
    parser.add_argument('--msda-points', type=int, default=4)
    parser.add_argument('--cotrain-steps', type=int, default=6,
                        help='co-training steps; the first round (one step per loader, '
                        'with the workers starting) is reported apart')
    parser.add_argument('--demo-dir', default='data/demo',
                        help='demo data (raw/ and prepared/) for the co-training loop')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--in-process', action='store_true',
                        help='measure in this process (faster start; the peak memory of '
                        'each measurement then includes the earlier ones)')
    parser.add_argument('--precision', nargs='+', choices=PRECISIONS, default=None,
                        help='precisions of the training steps (default: fp32 on cpu, '
                        'fp32 and bf16 on cuda)')
    parser.add_argument('--child', choices=MEASUREMENTS + TRAIN_CHILDREN,
                        help=argparse.SUPPRESS)
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def parse_task_ints(text: Optional[str]) -> Dict[str, int]:
    out = {}
    for item in (text or '').split(','):
        if item:
            task, value = item.split('=')
            if task not in TASKS:
                raise ValueError(f'unknown task {task!r} in {text!r}')
            out[task] = int(value)
    return out


def parse_levels(text: str) -> List[Tuple[int, int]]:
    return [tuple(int(v) for v in level.split('x')) for level in text.split(',')]


# ---------------------------------------------------------------------- helpers
def machine() -> Dict:
    """CPU model, cores, load average, library versions."""
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            model = next(line.split(':', 1)[1].strip() for line in f
                         if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu_model=model, cpu_cores=os.cpu_count(),
                cpu_affinity=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                else None,
                load_average=[round(v, 2) for v in os.getloadavg()],
                torch=torch.__version__, python=platform.python_version())
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def children_peak_rss_gb() -> float:
    """Largest peak resident memory among this process's finished children."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def summary(times: Sequence[float]) -> Dict:
    return dict(median_s=statistics.median(times), min_s=min(times), max_s=max(times),
                runs=len(times))


def load_config(path: str) -> Config:
    cfg = Config.fromfile(path)
    cfg.model.backbone.pop('init_cfg', None)  # random weights, no checkpoint
    cfg.model.pop('init_cfg', None)
    return cfg


def build(cfg: Config, tasks: Sequence[str], device: str) -> torch.nn.Module:
    """The model of ``cfg`` with only the heads of ``tasks``, randomly initialised."""
    import rscotr.models  # noqa: F401  (registers the modules)
    from rscotr.models import build_model
    model_cfg = cfg.model.deepcopy() if hasattr(cfg.model, 'deepcopy') else dict(cfg.model)
    model_cfg['heads'] = {t: h for t, h in cfg.model.heads.items() if t in tasks and h}
    model = build_model(model_cfg)
    model.init_weights()
    return model.to(device)


def image_metas(size: int, batch: int) -> List[Dict]:
    shape = (size, size, 3)
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape[:2],
                 scale_factor=np.ones(4, dtype=np.float32), flip=False, flip_direction=None,
                 filename=f'random_{i}.png', ori_filename=f'random_{i}.png')
            for i in range(batch)]


def random_batch(task: str, size: int, batch: int, device: str, num_classes: int,
                 gen: torch.Generator) -> Dict:
    """A training batch of ``task`` with random images and ground truth (upstream names)."""
    data = dict(img=torch.randn(batch, 3, size, size, generator=gen).to(device),
                img_metas=image_metas(size, batch), task=task, dataset=task)
    if task == 'cls':
        data['gt_label'] = torch.randint(num_classes, (batch,), generator=gen).to(device)
    elif task == 'det':
        boxes, labels = [], []
        for _ in range(batch):
            xy = torch.rand(10, 2, generator=gen) * size * 0.8
            wh = torch.rand(10, 2, generator=gen) * size * 0.2 + 4
            boxes.append(torch.cat((xy, (xy + wh).clamp(max=size)), 1).to(device))
            labels.append(torch.randint(num_classes, (10,), generator=gen).to(device))
        data.update(gt_bboxes=boxes, gt_labels=labels)
    else:
        seg = torch.randint(num_classes, (batch, 1, size, size), generator=gen)
        data['gt_semantic_seg'] = seg.to(device)
    return data


def train_batch_sizes(cfg: Config, override: Dict[str, int]) -> Dict[str, int]:
    sizes = {}
    for entry in (cfg.get('data', {}).get('train') or {}).values():
        if entry and entry.get('task') in TASKS:
            sizes.setdefault(entry['task'], entry.get('samples_per_gpu', 1))
    sizes.update(override)
    return {t: sizes.get(t, 1) for t in TASKS}


# ---------------------------------------------------------------------- measurements
def measure_train(args: argparse.Namespace, cfg: Config, task: str,
                  precision: str = 'fp32') -> Dict:
    """Forward + backward + optimizer step of ``task``, ``args.repeat`` times after a warm-up.

    The step is the one of training: the forward under autocast in mixed
    precision (heads' losses in float32), then the training optimizer hook's
    :meth:`~rscotr.core.optimizer.RSCoTrOptimizerHook.step` (gradient zeroing,
    loss scaling for fp16, clipping as in ``optimizer_config``).
    """
    from mmcv import build_from_cfg
    from mmcv.runner import HOOKS, build_optimizer

    from rscotr.apis.train import optimizer_hook_cfg
    from rscotr.core.mixed_precision import autocast, parse_mixed_precision
    size = parse_task_ints(args.sizes)[task]
    batch = train_batch_sizes(cfg, parse_task_ints(args.batch))[task]
    model = build(cfg, [task], args.device).train()
    optimizer = build_optimizer(model, cfg.optimizer)
    mixed = parse_mixed_precision(precision)
    cfg.mixed_precision = precision
    hook = build_from_cfg(optimizer_hook_cfg(cfg), HOOKS)
    gen = torch.Generator().manual_seed(args.seed)
    num_classes = model.heads[task].num_classes
    losses = []

    def step():
        data = random_batch(task, size, batch, args.device, num_classes, gen)
        with autocast(args.device, mixed.dtype):
            outputs = model.train_step(data)
        hook.step(outputs['loss'], optimizer, model.parameters())
        losses.append(float(outputs['loss']))

    warmup = timed(step, args.device)
    times = [timed(step, args.device) for _ in range(args.repeat)]
    return dict(task=task, precision=precision, size=size, batch=batch, warmup_s=warmup,
                losses_finite=all(np.isfinite(losses)), **summary(times))


class ComponentTimer:
    """Accumulates the wall time of the forward calls of sub-modules, by part name.

    Args:
        modules: (part name, module) pairs; several modules may share a name.
        device: 'cpu' or 'cuda' (synchronised around every call).
    """

    def __init__(self, modules: Sequence[Tuple[str, torch.nn.Module]], device: str):
        self.device = device
        self.totals = defaultdict(float)
        self.calls = defaultdict(int)
        self._start = {}
        for name, module in modules:
            module.register_forward_pre_hook(self._pre(name))
            module.register_forward_hook(self._post(name))

    def _pre(self, name):
        def hook(module, inputs):
            sync(self.device)
            self._start[name] = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(module, inputs, output):
            sync(self.device)
            self.totals[name] += time.perf_counter() - self._start.pop(name)
            self.calls[name] += 1
        return hook

    def take(self, total: float) -> Dict:
        """Seconds per part since the last call, ``heads`` = the rest of ``total``; reset."""
        parts = {k: self.totals.get(k, 0.0) for k in ('backbone', 'neck', 'encoder')}
        parts['heads'] = total - sum(parts.values())
        parts['calls'] = dict(self.calls)
        self.totals.clear()
        self.calls.clear()
        return parts


def _parts(models: Sequence[torch.nn.Module]) -> List[Tuple[str, torch.nn.Module]]:
    return [(name, getattr(m, name)) for m in models for name in ('backbone', 'neck', 'encoder')
            if getattr(m, name, None) is not None]


def measure_infer(args: argparse.Namespace, cfg: Config) -> Dict:
    """(a) one image, three heads: shared model vs three single-task models; (b) reference sizes.

    Shared and single-task runs alternate, so that both see the same machine
    load; ``multitask_inference_ratio`` is the median of the per-round ratios.
    """
    sizes = parse_task_ints(args.sizes)
    shared = build(cfg, TASKS, args.device).eval()
    singles = {t: build(cfg, [t], args.device).eval() for t in TASKS}
    shared_timer = ComponentTimer(_parts([shared]), args.device)
    singles_timer = ComponentTimer(_parts(list(singles.values())), args.device)
    gen = torch.Generator().manual_seed(args.seed)
    size = sizes['seg']
    img = torch.randn(1, 3, size, size, generator=gen).to(args.device)

    def run_shared():
        shared.simple_test_tasks(img, image_metas(size, 1), list(TASKS))

    def run_singles():
        for task, model in singles.items():
            model.simple_test(img, image_metas(size, 1), task)

    shared_t, singles_t, shared_parts, singles_parts = [], [], [], []
    with torch.no_grad():
        run_shared(), run_singles()  # warm-up
        shared_timer.take(0.0), singles_timer.take(0.0)
        for _ in range(args.repeat):
            shared_t.append(timed(run_shared, args.device))
            shared_parts.append(shared_timer.take(shared_t[-1]))
            singles_t.append(timed(run_singles, args.device))
            singles_parts.append(singles_timer.take(singles_t[-1]))
        # (b) reference sizes: one image per task at its own size
        ref = defaultdict(list)
        imgs = {t: torch.randn(1, 3, sizes[t], sizes[t], generator=gen).to(args.device)
                for t in TASKS}
        for t in TASKS:
            shared.simple_test(imgs[t], image_metas(sizes[t], 1), t)  # warm-up
        for _ in range(args.repeat):
            for t in TASKS:
                ref[t].append(timed(
                    lambda: shared.simple_test(imgs[t], image_metas(sizes[t], 1), t),
                    args.device))

    def median_parts(runs):
        out = {k: statistics.median(r[k] for r in runs)
               for k in ('backbone', 'neck', 'encoder', 'heads')}
        out['calls'] = runs[0]['calls']
        return out

    ratios = [a / b for a, b in zip(shared_t, singles_t)]
    return dict(
        size=size, shared=summary(shared_t), single_task_models=summary(singles_t),
        multitask_inference_ratio=statistics.median(ratios), ratios=ratios,
        ratio_of_medians=statistics.median(shared_t) / statistics.median(singles_t),
        ratio_of_minima=min(shared_t) / min(singles_t),
        shared_components_s=median_parts(shared_parts),
        single_components_s=median_parts(singles_parts),
        reference_sizes={t: dict(size=sizes[t], **summary(ref[t])) for t in TASKS},
        reference_sizes_total_median_s=sum(statistics.median(ref[t]) for t in TASKS))


def measure_msda(args: argparse.Namespace) -> Dict:
    """Our dispatcher's path for the device vs mmcv's pure PyTorch, via bench_msda."""
    from rscotr.ops.ms_deform_attn import cpu_kernel_available, compiled_kernel_available
    ours = 'cuda' if args.device == 'cuda' else 'cpu'
    available = (compiled_kernel_available(torch.device('cuda')) if ours == 'cuda'
                 else cpu_kernel_available())
    if not available:
        raise RuntimeError(f'our {ours} deformable-attention kernel is not available')
    levels = parse_levels(args.msda_levels)
    ns = argparse.Namespace(batch=args.msda_batch, heads=args.msda_heads, dims=args.msda_dims,
                            points=args.msda_points, seed=args.seed)
    inputs = {k: v.to(args.device) for k, v in bench_msda.make_inputs(ns, levels).items()}
    backends = dict(pytorch='pytorch', ours=ours)
    times = defaultdict(list)
    with torch.no_grad():
        for backend in backends.values():
            bench_msda.run(backend, inputs, backward=False)
    for _ in range(args.repeat):
        for name, backend in backends.items():
            with torch.no_grad():
                times[name, 'fwd'].append(
                    timed(lambda: bench_msda.run(backend, inputs, backward=False), args.device))
            times[name, 'fwd_bwd'].append(
                timed(lambda: bench_msda.run(backend, inputs, backward=True), args.device))
    ref, out = (bench_msda.run(b, inputs, backward=True) for b in backends.values())
    names = ('output', 'grad_value', 'grad_locations', 'grad_weights')
    diffs = {name: (a - b).abs().max().item() for name, a, b in zip(names, out, ref)}
    rel = {name: diffs[name] / max(b.abs().max().item(), 1e-30) for name, b in zip(names, ref)}
    result = dict(levels=levels, batch=args.msda_batch, heads=args.msda_heads,
                  dims=args.msda_dims, points=args.msda_points, ours_backend=ours,
                  max_abs_diff=diffs, max_rel_diff=rel)
    for mode in ('fwd', 'fwd_bwd'):
        for name in backends:
            result[f'{name}_{mode}'] = summary(times[name, mode])
        result[f'{mode}_speedup'] = (statistics.median(times['pytorch', mode])
                                     / statistics.median(times['ours', mode]))
    return result


def demo_data(demo_dir: str, tmp: str) -> Tuple[str, str]:
    """(raw, prepared) of the demo data; generated and converted under ``tmp`` when absent."""
    raw, prepared = osp.join(demo_dir, 'raw'), osp.join(demo_dir, 'prepared')
    if osp.isdir(prepared) and osp.isdir(raw):
        return raw, prepared
    from rscotr.datasets.converters import convert_dior, convert_potsdam, convert_resisc45
    from rscotr.datasets.demo_data import make_demo_data
    raw, prepared = osp.join(tmp, 'raw'), osp.join(tmp, 'prepared')
    make_demo_data(raw, seed=0, scale='small')
    convert_resisc45(osp.join(raw, 'NWPU-RESISC45'), osp.join(prepared, 'resisc45'),
                     train_ratio=0.5, val_ratio=0.2, show_progress=False)
    convert_dior(osp.join(raw, 'DIOR'), osp.join(prepared, 'dior'), show_progress=False)
    convert_potsdam(osp.join(raw, 'Potsdam'), osp.join(prepared, 'potsdam'), show_progress=False)
    return raw, prepared


def measure_cotrain(args: argparse.Namespace, cfg: Config) -> Dict:
    """Co-training steps under round-robin with the config's loaders; time in next(loader)."""
    from mmcv.runner import build_optimizer
    from rscotr.datasets import build_multitask_loader
    from rscotr.datasets.data_paths import point_data_at
    from rscotr.compat.parallel import wrap_model
    with tempfile.TemporaryDirectory() as tmp:
        raw, prepared = demo_data(args.demo_dir, tmp)
        train_cfg = cfg.data.train.deepcopy() if hasattr(cfg.data.train, 'deepcopy') \
            else dict(cfg.data.train)
        point_data_at(dict(train=train_cfg), raw, prepared, splits=('train', ))
        loader = build_multitask_loader(train_cfg, dict(type='round_robin'), dist=False,
                                        seed=args.seed)
        model = build(cfg, TASKS, args.device).train()
        optimizer = build_optimizer(model, cfg.optimizer)
        model = wrap_model(model, args.device)
        clip = (cfg.get('optimizer_config') or {}).get('grad_clip')
        steps = []
        for _ in range(args.cotrain_steps):
            sync(args.device)
            start = time.perf_counter()
            batch = next(loader)
            got = time.perf_counter()
            optimizer.zero_grad()
            outputs = model.train_step(batch, optimizer)
            outputs['loss'].backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.grad is not None], **clip)
            optimizer.step()
            sync(args.device)
            end = time.perf_counter()
            steps.append(dict(loader=batch['dataset'], wait_s=got - start, step_s=end - start))
        main_peak = peak_rss_gb()
        entries = [e for e in train_cfg.values() if e]
        settings = {name: dict(task=e['task'], samples_per_gpu=e.get('samples_per_gpu', 1),
                               workers_per_gpu=e.get('workers_per_gpu', 2))
                    for name, e in train_cfg.items() if e}
        del loader  # stop the workers, so that RUSAGE_CHILDREN counts them
    first = len(entries)  # first round: one step per loader, workers starting
    steady = steps[first:] or steps
    fraction = (lambda s: sum(x['wait_s'] for x in s) / sum(x['step_s'] for x in s))
    return dict(loaders=settings, steps=steps,
                data_wait_fraction=fraction(steady), steady_steps=len(steady),
                data_wait_fraction_with_startup=fraction(steps),
                main_process_peak_rss_gb=main_peak,
                largest_worker_peak_rss_gb=children_peak_rss_gb(),
                demo_data=prepared)


def measure(name: str, args: argparse.Namespace) -> Dict:
    """Run measurement ``name`` ('train:<task>:<precision>', 'infer', 'msda' or 'cotrain') here."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # mmcv logs every parameter at init_weights()
    logging.getLogger('mmcv').setLevel(logging.WARNING)
    cfg = load_config(args.config)
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if name.startswith('train:'):
        _, task, precision = name.split(':')
        result = measure_train(args, cfg, task, precision)
    elif name == 'infer':
        result = measure_infer(args, cfg)
    elif name == 'msda':
        result = measure_msda(args)
    else:
        result = measure_cotrain(args, cfg)
    result.update(peak_rss_gb=peak_rss_gb(), torch_threads=torch.get_num_threads(),
                  measure_s=time.perf_counter() - start)
    if args.device == 'cuda':
        result['peak_cuda_gb'] = torch.cuda.max_memory_allocated() / 2**30
    return result


# ---------------------------------------------------------------------- parent
def child(name: str, argv: Sequence[str], args: argparse.Namespace) -> Dict:
    """Measurement ``name`` in a fresh process (or here with ``--in-process``)."""
    if args.in_process:
        return measure(name, args)
    with tempfile.NamedTemporaryFile(suffix='.json') as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, osp.abspath(__file__), *argv, '--child', name,
                        '--child-out', out.name], check=True)
        result = json.load(open(out.name))
    result['wall_s'] = time.perf_counter() - start
    return result


def fmt(s: Dict) -> str:
    return f'{s["median_s"]:8.3f} s (min {s["min_s"]:.3f}, max {s["max_s"]:.3f}, n={s["runs"]})'


def report(results: Dict) -> Dict:
    """Print the results; return the flat summary keys."""
    m = results['machine']
    print(f'\nRSCoTr benchmark: {results["config"]} on {results["device"]}, '
          f'repeat {results["repeat"]}')
    print(f'machine: {m["cpu_model"]}, {m["cpu_cores"]} cores '
          f'({m["cpu_affinity"]} usable), torch {m["torch"]}, {results["torch_threads"]} '
          f'torch threads, load average {m["load_average"]} at start, '
          f'{results["load_average_end"]} at end')
    flat = dict(multitask_inference_ratio=None, msda_fwd_speedup=None, msda_fwd_bwd_speedup=None,
                msda_max_abs_diff=None, data_wait_fraction=None, cotrain_peak_rss_gb=None)
    train = results.get('train')
    if train:
        print('\ntraining step (forward + backward + clip + AdamW), random weights and data:')
        for precision, per_task in train.items():
            for task, r in per_task.items():
                memory = f'peak RSS {r["peak_rss_gb"]:.2f} GB'
                if 'peak_cuda_gb' in r:
                    memory += f', peak CUDA {r["peak_cuda_gb"]:.2f} GB'
                print(f'  {precision:4s} {task:3s} {r["batch"]:2d} x {r["size"]}px  {fmt(r)}  '
                      f'{memory}{"" if r["losses_finite"] else "  NON-FINITE LOSS"}')
                flat[f'train_{task}_{precision}_median_s'] = r['median_s']
                if precision == next(iter(train)):  # the first precision: unsuffixed keys
                    flat[f'train_{task}_median_s'] = r['median_s']
                    flat[f'train_{task}_peak_rss_gb'] = r['peak_rss_gb']
                if 'peak_cuda_gb' in r:
                    flat[f'train_{task}_{precision}_peak_cuda_gb'] = r['peak_cuda_gb']
            mean = statistics.mean(r['median_s'] for r in per_task.values())
            flat[f'train_round_robin_{precision}_mean_s'] = mean
            print(f'  {precision:4s} round robin (mean of the three tasks\' medians): '
                  f'{mean:.3f} s per step')
    r = results.get('infer')
    if r:
        flat['multitask_inference_ratio'] = r['multitask_inference_ratio']
        print(f'\nthree-task inference of one {r["size"]}x{r["size"]} image:')
        print(f'  shared model (simple_test_tasks)    {fmt(r["shared"])}')
        print(f'  three single-task models in a row   {fmt(r["single_task_models"])}')
        print(f'  ratio shared / single-task models   {r["multitask_inference_ratio"]:.3f} '
              f'(median of the paired rounds {[round(x, 3) for x in r["ratios"]]}; ratio of '
              f'medians {r["ratio_of_medians"]:.3f}, of minima {r["ratio_of_minima"]:.3f}; '
              f'target <= 0.5)')
        for label, key in (('shared', 'shared_components_s'),
                           ('single-task models', 'single_components_s')):
            comp = r[key]
            print(f'  {label}, median seconds by part: ' + ', '.join(
                f'{k} {comp[k]:.3f}' + (f' ({comp["calls"][k]} calls)' if k in comp['calls']
                                        else '') for k in ('backbone', 'neck', 'encoder', 'heads')))
        print('  shared: Swin and the neck run once for the three heads (cls reads Swin '
              'stage 4; det and seg the neck). Not shared: the 6-layer encoder runs once '
              'per encoder head (det, seg), since each head adds its own positional '
              'encoding and level embedding, and each head\'s decoder. Lower bound of the '
              'ratio with this design: (B + N + 2E + H) / (3B + 2N + 2E + H).')
        print(f'  reference sizes (nothing shared, one image each), total '
              f'{r["reference_sizes_total_median_s"]:.3f} s:')
        for task, s in r['reference_sizes'].items():
            print(f'    {task:3s} {s["size"]}px  {fmt(s)}')
        print(f'  peak RSS {r["peak_rss_gb"]:.2f} GB (4 models)')
        flat['infer_peak_rss_gb'] = r['peak_rss_gb']
    r = results.get('msda')
    if r:
        flat.update(msda_fwd_speedup=r['fwd_speedup'], msda_fwd_bwd_speedup=r['fwd_bwd_speedup'],
                    msda_max_abs_diff=r['max_abs_diff']['output'],
                    msda_max_rel_diff_grads=max(r['max_rel_diff'][k] for k in r['max_rel_diff']
                                                if k.startswith('grad')),
                    msda_peak_rss_gb=r['peak_rss_gb'])
        print(f'\nmulti-scale deformable attention: batch {r["batch"]}, levels {r["levels"]}, '
              f'{r["heads"]} heads x {r["dims"]} dims, {r["points"]} points')
        for mode in ('fwd', 'fwd_bwd'):
            print(f'  {mode:7s} mmcv pytorch {fmt(r["pytorch_" + mode])}')
            print(f'  {mode:7s} ours ({r["ours_backend"]:4s})  {fmt(r["ours_" + mode])}  '
                  f'speed-up {r[mode + "_speedup"]:.2f}x')
        print('  max abs diff (relative to the largest value) ' + ', '.join(
            f'{k} {v:.2e} ({r["max_rel_diff"][k]:.1e})' for k, v in r['max_abs_diff'].items()))
        print(f'  peak RSS {r["peak_rss_gb"]:.2f} GB')
    r = results.get('cotrain')
    if r:
        flat.update(data_wait_fraction=r['data_wait_fraction'],
                    data_wait_fraction_with_startup=r['data_wait_fraction_with_startup'],
                    cotrain_peak_rss_gb=r['main_process_peak_rss_gb'],
                    cotrain_worker_peak_rss_gb=r['largest_worker_peak_rss_gb'])
        print(f'\nco-training, round robin, loaders {r["loaders"]} (data {r["demo_data"]}):')
        for i, s in enumerate(r['steps']):
            print(f'  step {i} {s["loader"]:8s} wait {s["wait_s"]:7.3f} s of {s["step_s"]:7.3f} s')
        print(f'  data wait {100 * r["data_wait_fraction"]:.2f} % of the step time over the '
              f'{r["steady_steps"]} steps after the first round '
              f'({100 * r["data_wait_fraction_with_startup"]:.2f} % with the workers '
              f'starting)')
        print(f'  peak RSS: main process {r["main_process_peak_rss_gb"]:.2f} GB, largest '
              f'worker {r["largest_worker_peak_rss_gb"]:.2f} GB')
    print('\ntargets:')
    for key, (op, target) in TARGETS.items():
        value = flat.get(key)
        if value is None:
            continue
        ok = {'<=': value <= target, '>=': value >= target, '<': value < target}[op]
        print(f'  {key:28s} {value:.4g} {op} {target:g}: {"met" if ok else "MISSED"}')
    return flat


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.child:
        with open(args.child_out, 'w') as f:
            json.dump(measure(args.child, args), f)
        return {}
    argv = list(sys.argv[1:] if argv is None else argv)
    sizes = dict(REFERENCE_SIZES, **parse_task_ints(args.sizes))
    args.sizes = ','.join(f'{t}={s}' for t, s in sizes.items())
    argv += ['--sizes', args.sizes]
    results = dict(config=args.config, device=args.device, repeat=args.repeat,
                   peaks_per_measurement=not args.in_process,
                   machine=machine(), command=' '.join([sys.executable, *sys.argv]))
    if 'train' in args.only:
        precisions = args.precision or (['fp32', 'bf16'] if args.device == 'cuda' else ['fp32'])
        results['train'] = {p: {t: child(f'train:{t}:{p}', argv, args) for t in TASKS}
                            for p in precisions}
    for name in ('infer', 'msda', 'cotrain'):
        if name in args.only:
            results[name] = child(name, argv, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    results['torch_threads'] = torch.get_num_threads()
    results['load_average_end'] = [round(v, 2) for v in os.getloadavg()]
    flat = report(results)
    results.update(flat, cpu_model=results['machine']['cpu_model'],
                   cpu_cores=results['machine']['cpu_cores'],
                   load_average=results['machine']['load_average'])
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
