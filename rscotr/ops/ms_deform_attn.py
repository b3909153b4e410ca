"""Multi-scale deformable attention that runs on every device.

Three implementations, one per kind of tensor:

* CUDA tensors: mmcv's compiled CUDA kernel, when the installed mmcv-full was
  built with it and it runs (mmcv 1.7 would also pick it on a CPU-only build
  whenever CUDA is available, and break; here it is used only when it works);
* CPU tensors: our C++ kernel ``rscotr.ops._ms_deform_attn_cpu``
  (``csrc/ms_deform_attn_cpu.cpp``, built by ``setup.py``), 5-8x faster than
  mmcv's pure-PyTorch function, forward and backward, at the shapes of an
  800x800 image on 2 cores (``tools/analysis/bench_msda.py``);
* anything else (no kernel built, other devices): mmcv's pure-PyTorch
  ``multi_scale_deformable_attn_pytorch``, the reference.

Whether mmcv's CUDA kernel runs is found out by running it once per GPU
(:func:`rscotr.compat.mmcv_ops.mmcv_cuda_kernel_runs`), never by ``mmcv.ops.get_compiling_cuda_version()``
(which kills the process on CUDA builds with current torch). The sampling
always runs in float32 (or float64), with autocast off: under mixed precision
the half / bfloat16 inputs are cast up and the output back.

All give the same numbers (see ``tests/test_ops``). ``backend='pytorch'`` or the
environment variable ``RSCOTR_MSDA_BACKEND=pytorch`` forces the reference path
(for tests and benchmarks).
"""
import os
from contextlib import nullcontext
from functools import lru_cache
from types import ModuleType
from typing import Optional, Tuple

import torch
from mmcv.cnn.bricks.registry import ATTENTION
from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttention,
                                              MultiScaleDeformableAttnFunction,
                                              multi_scale_deformable_attn_pytorch)
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from ..compat.mmcv_ops import mmcv_cuda_kernel_runs

BACKENDS = ('auto', 'cuda', 'cpu', 'pytorch')
BACKEND_ENV = 'RSCOTR_MSDA_BACKEND'


def compiled_kernel_available(device: torch.device) -> bool:
    """Whether mmcv's compiled deformable-attention kernel covers ``device``.

    mmcv 1.7 ships a CUDA kernel only; there is no CPU kernel (ours is
    :func:`cpu_kernel_available`). On a GPU the kernel is run once to find
    out (:func:`~rscotr.compat.mmcv_ops.mmcv_cuda_kernel_runs`).
    """
    return device.type == 'cuda' and mmcv_cuda_kernel_runs(device)[0]


@lru_cache(maxsize=None)
def _cpu_extension() -> Optional[ModuleType]:
    try:
        from rscotr.ops import _ms_deform_attn_cpu
    except ImportError:
        return None
    return _ms_deform_attn_cpu


def cpu_kernel_available() -> bool:
    """Whether our C++ CPU kernel was built (``pip install`` with torch present)."""
    return _cpu_extension() is not None


class MSDeformAttnCPUFunction(Function):
    """Autograd function of our CPU kernel; arguments as :func:`multi_scale_deformable_attn`.

    The backward returns the gradients of ``value``, ``sampling_locations`` and
    ``attention_weights`` (first order only).
    """

    @staticmethod
    def forward(ctx, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
        ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations,
                              attention_weights)
        return _cpu_extension().forward(value, spatial_shapes, level_start_index,
                                        sampling_locations, attention_weights)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> Tuple[Optional[Tensor], ...]:
        grad_value, grad_locations, grad_weights = _cpu_extension().backward(
            *ctx.saved_tensors, grad_output)
        return grad_value, None, None, grad_locations, grad_weights


def _cpu_kernel_supports(*tensors: Tensor) -> bool:
    dtype = tensors[0].dtype
    return (dtype in (torch.float32, torch.float64)
            and all(t.device.type == 'cpu' and t.dtype == dtype for t in tensors))


def multi_scale_deformable_attn(value: Tensor,
                                spatial_shapes: Tensor,
                                level_start_index: Tensor,
                                sampling_locations: Tensor,
                                attention_weights: Tensor,
                                im2col_step: int = 64,
                                backend: Optional[str] = None) -> Tensor:
    """Multi-scale deformable attention on any device.

    Bilinear sampling with ``align_corners=False`` (sample at pixel
    ``loc * size - 0.5``) and zeros outside each level.

    Args:
        value: (bs, num_value, num_heads, head_dims).
        spatial_shapes: (num_levels, 2), (h, w) of each level.
        level_start_index: (num_levels,), start of each level in ``value``.
        sampling_locations: (bs, num_query, num_heads, num_levels, num_points, 2),
            normalised (x, y) in [0, 1].
        attention_weights: (bs, num_query, num_heads, num_levels, num_points).
        im2col_step: Step of the compiled CUDA kernel.
        backend: ``'auto'`` (the fastest implementation available for the
            tensors), ``'cuda'`` (mmcv's CUDA kernel), ``'cpu'`` (our CPU
            kernel) or ``'pytorch'`` (mmcv's pure-PyTorch reference). None
            reads ``$RSCOTR_MSDA_BACKEND``, default ``'auto'``. A kernel that is
            forced but cannot run these tensors raises ``RuntimeError``.

    Returns:
        Tensor: (bs, num_query, num_heads * head_dims).
    """
    backend = backend or os.environ.get(BACKEND_ENV) or 'auto'
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    out_dtype = value.dtype
    # the sampling runs in float32 (float64 stays): half / bfloat16 inputs, as
    # autocast makes them, are cast up and the output back to value's dtype
    dtype = torch.float64 if all(t.dtype == torch.float64 for t in
                                 (value, sampling_locations, attention_weights)) \
        else torch.float32
    value, sampling_locations, attention_weights = (
        t.to(dtype) for t in (value, sampling_locations, attention_weights))
    no_autocast = torch.autocast(device_type=value.device.type, enabled=False) \
        if value.device.type in ('cpu', 'cuda') else nullcontext()
    with no_autocast:
        output = _dispatch(backend, value, spatial_shapes, level_start_index,
                           sampling_locations, attention_weights, im2col_step)
    return output.to(out_dtype)


def _dispatch(backend: str, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
              sampling_locations: Tensor, attention_weights: Tensor,
              im2col_step: int) -> Tensor:
    """Run the implementation ``backend`` picks (see :func:`multi_scale_deformable_attn`)."""
    if backend == 'pytorch':  # no kernel is looked at, nor probed
        return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations,
                                                   attention_weights)
    tensors = (value, sampling_locations, attention_weights)
    use_cuda = backend in ('auto', 'cuda') and compiled_kernel_available(value.device)
    use_cpu = backend in ('auto', 'cpu') and cpu_kernel_available() \
        and _cpu_kernel_supports(*tensors)
    if (backend == 'cuda' and not use_cuda) or (backend == 'cpu' and not use_cpu):
        raise RuntimeError(
            f'multi-scale deformable attention backend {backend!r} cannot run '
            f'{value.dtype} tensors on {value.device} (mmcv CUDA kernel: '
            f'{mmcv_cuda_kernel_runs(value.device)[1]}; CPU kernel built: '
            f'{cpu_kernel_available()})')
    if use_cuda:
        return MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                      sampling_locations, attention_weights,
                                                      im2col_step)
    if use_cpu:
        return MSDeformAttnCPUFunction.apply(value, spatial_shapes, level_start_index,
                                             sampling_locations, attention_weights)
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations,
                                               attention_weights)


@ATTENTION.register_module()
class RSCoTrMSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's ``MultiScaleDeformableAttention`` with a device-safe kernel choice.

    Same parameters and initialisation as the parent (so checkpoints of mmdet
    Deformable DETR / DINO models load unchanged); only the sampling kernel is
    chosen by :func:`multi_scale_deformable_attn`.
    """

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Attend from ``query`` to the multi-level ``value``.

        Args:
            query: (num_query, bs, C), or (bs, num_query, C) if ``batch_first``.
            value: Flattened multi-level features, same layout as ``query``;
                ``query`` itself when None.
            identity: Residual added to the output; ``query`` when None.
            query_pos: Positional encoding added to ``query``.
            key_padding_mask: (bs, num_value), True at padded positions.
            reference_points: (bs, num_query, num_levels, 2) normalised points,
                or (bs, num_query, num_levels, 4) normalised (cx, cy, w, h) boxes.
            spatial_shapes: (num_levels, 2).
            level_start_index: (num_levels,).

        Returns:
            Tensor: same shape as ``query``.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads,
                                                    self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(bs, num_query, self.num_heads, self.num_levels,
                                           self.num_points)
        ref = reference_points[:, :, None, :, None, :]
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: normalise by (w, h)
            wh = spatial_shapes.flip(-1).to(offsets.dtype)
            locations = ref + offsets / wh[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            # offsets are relative to the reference box size
            locations = ref[..., :2] + offsets / self.num_points * ref[..., 2:] * 0.5
        else:
            raise ValueError('reference_points must end in 2 (points) or 4 (boxes), '
                             f'got shape {tuple(reference_points.shape)}')
        output = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations,
                                             weights, self.im2col_step)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
