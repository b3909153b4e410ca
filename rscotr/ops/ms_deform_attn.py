"""Multi-scale deformable attention that runs on every device.

mmcv-full 1.7 dispatches to its compiled kernel whenever CUDA is available and
the tensor is on the GPU, which breaks on a CPU-only build (no CUDA kernel), and
it has no CPU kernel at all. Here the compiled kernel is used only when the
build really has it for the tensor's device; otherwise the pure-PyTorch path
runs. Both give the same numbers (see ``tests/test_ops``).
"""
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.registry import ATTENTION
from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttention,
                                              MultiScaleDeformableAttnFunction,
                                              multi_scale_deformable_attn_pytorch)
from torch import Tensor


@lru_cache(maxsize=None)
def mmcv_has_cuda_ops() -> bool:
    """Whether the installed mmcv-full was compiled with its CUDA kernels."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        version = get_compiling_cuda_version()
    except (ImportError, AttributeError, RuntimeError):
        return False
    return bool(version) and version != 'not available'


def compiled_kernel_available(device: torch.device) -> bool:
    """Whether mmcv's compiled deformable-attention kernel covers ``device``.

    mmcv 1.7 ships a CUDA kernel only; there is no CPU kernel.
    """
    return device.type == 'cuda' and mmcv_has_cuda_ops()


def ms_deform_attn_bag(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                       sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """Multi-scale deformable attention as one weighted ``embedding_bag``.

    Bilinear sampling (``align_corners=False``, zeros outside, as
    ``grid_sample`` and mmcv's kernels) is written as a weighted sum of the
    4 neighbouring value rows of every sampling point; the bilinear weights
    and the attention weights are folded into one weight per row, and all
    levels, points and corners of a (batch, query, head) are reduced by a
    single ``F.embedding_bag(mode='sum')`` call. No per-level ``grid_sample``
    and no (bs * heads, dims, queries, points) intermediates.

    Args and returns: as :func:`multi_scale_deformable_attn`.
    """
    bs, num_value, num_heads, dims = value.shape
    _, num_query, _, num_levels, num_points, _ = sampling_locations.shape
    shapes = spatial_shapes.view(1, 1, 1, num_levels, 1, 2)
    height, width = shapes[..., 0], shapes[..., 1]
    # pixel coordinates of the samples, (bs, q, heads, levels, points)
    px = sampling_locations[..., 0] * width - 0.5
    py = sampling_locations[..., 1] * height - 0.5
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    x0, y0 = x0.long(), y0.long()
    start = level_start_index.view(1, 1, 1, num_levels, 1)
    idx, wts = [], []
    for dx, dy, bw in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                       (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        idx.append(start + yi.clamp(min=0).minimum(height - 1) * width
                   + xi.clamp(min=0).minimum(width - 1))
        wts.append(bw * attention_weights * inside)
    # rows of the (bs * heads * num_value, dims) value table
    head_base = torch.arange(bs * num_heads, device=value.device).view(bs, 1, num_heads, 1, 1)
    idx = torch.stack(idx, -1) + (head_base * num_value)[..., None]
    wts = torch.stack(wts, -1)
    table = value.permute(0, 2, 1, 3).reshape(bs * num_heads * num_value, dims)
    bag = num_levels * num_points * 4
    out = F.embedding_bag(idx.reshape(-1, bag), table, mode='sum',
                          per_sample_weights=wts.reshape(-1, bag).to(table.dtype))
    return out.view(bs, num_query, num_heads * dims)


def multi_scale_deformable_attn(value: Tensor,
                                spatial_shapes: Tensor,
                                level_start_index: Tensor,
                                sampling_locations: Tensor,
                                attention_weights: Tensor,
                                im2col_step: int = 64) -> Tensor:
    """Multi-scale deformable attention on any device.

    Args:
        value: (bs, num_value, num_heads, head_dims).
        spatial_shapes: (num_levels, 2), (h, w) of each level.
        level_start_index: (num_levels,), start of each level in ``value``.
        sampling_locations: (bs, num_query, num_heads, num_levels, num_points, 2),
            normalised (x, y) in [0, 1].
        attention_weights: (bs, num_query, num_heads, num_levels, num_points).
        im2col_step: Step of the compiled CUDA kernel.

    Returns:
        Tensor: (bs, num_query, num_heads * head_dims).
    """
    if compiled_kernel_available(value.device):
        return MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                      sampling_locations, attention_weights,
                                                      im2col_step)
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
