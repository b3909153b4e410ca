"""Time multi-scale deformable attention on the CPU: our C++ kernel vs mmcv's pure PyTorch.

Reference shapes: batch 2, the four levels of an 800x800 image after a
stride-8/16/32/64 neck ((100, 100), (50, 50), (25, 25), (13, 13), so 13294
values and, as in the encoder, 13294 queries), 8 heads of 32 dims, 4 points.
Sampling locations are uniform in [-0.05, 1.05] (a few fall outside) and the
attention weights are a softmax over levels and points.

Both implementations run side by side in one process, alternating, and the
medians of the forward and of forward + backward (grads of value, locations
and weights) are printed with the speed-ups and the largest differences.

Example::

    python tools/analysis/bench_msda.py --repeat 5 --threads 2
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch

from rscotr.ops.ms_deform_attn import cpu_kernel_available, multi_scale_deformable_attn

LEVELS = ((100, 100), (50, 50), (25, 25), (13, 13))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5, help='timed runs of each (median)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s default)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--heads', type=int, default=8)
    parser.add_argument('--dims', type=int, default=32, help='channels per head')
    parser.add_argument('--points', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def make_inputs(args: argparse.Namespace,
                levels: Sequence[Tuple[int, int]] = LEVELS) -> Dict[str, torch.Tensor]:
    """Inputs of :func:`run` for ``levels`` ((h, w) of each level; as many queries as values).

    ``args`` gives ``batch``, ``heads``, ``dims``, ``points`` and ``seed``.
    """
    gen = torch.Generator().manual_seed(args.seed)
    shapes = torch.tensor(levels)
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    num_value = num_query = int(shapes.prod(1).sum())
    num_levels = len(levels)
    sample = (args.batch, num_query, args.heads, num_levels, args.points)
    weights = torch.randn(*sample[:3], num_levels * args.points, generator=gen).softmax(-1)
    return dict(
        value=torch.randn(args.batch, num_value, args.heads, args.dims, generator=gen),
        spatial_shapes=shapes,
        level_start_index=start,
        sampling_locations=torch.rand(*sample, 2, generator=gen) * 1.1 - 0.05,
        attention_weights=weights.view(sample),
        grad_output=torch.randn(args.batch, num_query, args.heads * args.dims, generator=gen))


def run(backend: str, inputs: Dict[str, torch.Tensor], backward: bool) -> List[torch.Tensor]:
    """Output (and the three gradients with ``backward``) of one implementation."""
    leaves = [inputs[k].detach().requires_grad_(backward)
              for k in ('value', 'sampling_locations', 'attention_weights')]
    out = multi_scale_deformable_attn(leaves[0], inputs['spatial_shapes'],
                                      inputs['level_start_index'], leaves[1], leaves[2],
                                      backend=backend)
    if not backward:
        return [out]
    out.backward(inputs['grad_output'])
    return [out.detach()] + [t.grad for t in leaves]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not cpu_kernel_available():
        raise SystemExit('the CPU kernel rscotr.ops._ms_deform_attn_cpu is not built '
                         '(see tools/install.sh)')
    inputs = make_inputs(args)
    backends = {'mmcv pytorch': 'pytorch', 'rscotr cpu': 'cpu'}
    times = {(name, mode): [] for name in backends for mode in ('fwd', 'fwd+bwd')}
    with torch.no_grad():  # warm-up
        for backend in backends.values():
            run(backend, inputs, backward=False)
    for _ in range(args.repeat):  # alternate, so both see the same machine load
        for name, backend in backends.items():
            with torch.no_grad():
                times[name, 'fwd'].append(timed(lambda: run(backend, inputs, backward=False)))
            times[name, 'fwd+bwd'].append(timed(lambda: run(backend, inputs, backward=True)))
    ref, ours = (run(backends[name], inputs, backward=True) for name in backends)

    num_value = inputs['value'].shape[1]
    print(f'multi-scale deformable attention, CPU, {torch.get_num_threads()} threads: '
          f'batch {args.batch}, levels {list(LEVELS)} ({num_value} values = queries), '
          f'{args.heads} heads x {args.dims} dims, {args.points} points; '
          f'median of {args.repeat}')
    for mode in ('fwd', 'fwd+bwd'):
        med = {name: statistics.median(times[name, mode]) for name in backends}
        print(f'  {mode:8s} mmcv pytorch {med["mmcv pytorch"]:7.3f} s   '
              f'rscotr cpu {med["rscotr cpu"]:7.3f} s   '
              f'speed-up {med["mmcv pytorch"] / med["rscotr cpu"]:5.2f}x')
    names = ('output', 'grad value', 'grad locations', 'grad weights')
    for name, a, b in zip(names, ours, ref):
        err, scale = (a - b).abs().max().item(), b.abs().max().item()
        print(f'  max abs diff {name:15s} {err:.2e} (max abs {scale:.2e}, '
              f'relative {err / scale:.1e})')


if __name__ == '__main__':
    main()
