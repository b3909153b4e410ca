"""DINO's deformable decoder: box queries, iterative refinement, look forward twice.

Each layer is an mmcv ``BaseTransformerLayer`` with
``operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')``:
self-attention among the queries (with the denoising mask), multi-scale
deformable cross-attention into the encoder memory around each query's
reference box, and an FFN. The positional query of a layer is an MLP of the
sine embedding of its reference box. After every layer the head's box branch
of that layer refines the reference box; the next layer gets it detached, but
the refined box itself (not detached) is what the next layer's prediction is
built on, so each box branch is also trained by the following layer's loss
("look forward twice").
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn.bricks.transformer import TransformerLayerSequence
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention
from mmdet.models.utils.transformer import inverse_sigmoid
from torch import Tensor, nn

from ...ops import RSCoTrMSDeformAttn  # noqa: F401 (registers the cross-attention)
from ..builder import MODELS

DECODER_OPERATION_ORDER = ('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')


def box_sine_embedding(boxes: Tensor, num_feats: int = 128,
                       temperature: float = 10000.0) -> Tensor:
    """Sine embedding of normalised boxes, as DINO embeds its reference boxes.

    Args:
        boxes: (..., 4) normalised (cx, cy, w, h).
        num_feats: Channels per coordinate (embed_dims / 2).
        temperature: Temperature of the frequencies.

    Returns:
        Tensor: (..., 4 * num_feats), the blocks in the order (cy, cx, w, h),
        each interleaving sin and cos.
    """
    dim_t = torch.arange(num_feats, dtype=boxes.dtype, device=boxes.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_feats)
    pos = boxes[..., None] * (2 * math.pi) / dim_t  # (..., 4, num_feats)
    pos = torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)
    cx, cy, w, h = pos.unbind(-2)
    return torch.cat((cy, cx, w, h), dim=-1)


@MODELS.register_module()
class DINODecoder(TransformerLayerSequence):
    """Deformable decoder with box reference points and look-forward-twice refinement.

    Args:
        transformerlayers: Config of one batch-first ``BaseTransformerLayer``
            (see :func:`default_decoder_layer`).
        num_layers: Number of layers (6 in the reference).
        query_pos_from_scaled_boxes: As released (True): the positional query
            embeds the reference box multiplied by the level-0 valid ratio
            (the box in the padded batch's frame). False: the box in the
            image's own frame, independent of the padding.
    """

    def __init__(self, transformerlayers: dict, num_layers: int,
                 query_pos_from_scaled_boxes: bool = True, init_cfg=None):
        super().__init__(transformerlayers=transformerlayers, num_layers=num_layers,
                         init_cfg=init_cfg)
        self.query_pos_from_scaled_boxes = bool(query_pos_from_scaled_boxes)
        first = self.layers[0]
        if not first.batch_first:
            raise ValueError('DINODecoder expects batch_first=True layers')
        if tuple(first.operation_order) != DECODER_OPERATION_ORDER:
            raise ValueError(f'DINODecoder expects operation_order {DECODER_OPERATION_ORDER}, '
                             f'got {first.operation_order}')
        dims = self.embed_dims
        self.ref_point_head = nn.Sequential(nn.Linear(2 * dims, dims), nn.ReLU(inplace=True),
                                            nn.Linear(dims, dims))
        self.norm = nn.LayerNorm(dims)

    def init_weights(self) -> None:
        super().init_weights()
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()

    def forward(self,  # type: ignore[override]
                query: Tensor,
                memory: Tensor,
                memory_mask: Tensor,
                reference_points: Tensor,
                spatial_shapes: Tensor,
                level_start_index: Tensor,
                valid_ratios: Tensor,
                reg_branches: Optional[Sequence[nn.Module]] = None,
                self_attn_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Decode the queries.

        Args:
            query: (bs, Q, C) content queries.
            memory: (bs, N, C) encoder output.
            memory_mask: (bs, N) bool, True at padded positions.
            reference_points: (bs, Q, 4) initial boxes, normalised (cx, cy, w, h)
                in the image (unpadded) frame, after the sigmoid.
            spatial_shapes: (num_levels, 2).
            level_start_index: (num_levels,).
            valid_ratios: (bs, num_levels, 2) valid (w, h) share of each level.
            reg_branches: One box branch per layer (at least ``num_layers``),
                each mapping (..., C) to a (..., 4) delta in logit space; no
                refinement when None.
            self_attn_mask: (Q, Q) bool, True where attention is not allowed.

        Returns:
            tuple: ``hidden`` (num_layers, bs, Q, C), the layer-normed output of
            every layer; ``references`` (num_layers + 1, bs, Q, 4), the reference
            box each layer started from (index 0) and the refined box after each
            layer, not detached (the box that layer ``l``'s prediction is built
            on is ``references[l]``).
        """
        scale = torch.cat((valid_ratios, valid_ratios), -1)[:, None]  # (bs, 1, L, 4)
        hidden, references = [], [reference_points]
        for lid, layer in enumerate(self.layers):
            points = reference_points[:, :, None] * scale  # (bs, Q, L, 4) per level
            query_pos = self.ref_point_head(box_sine_embedding(
                points[:, :, 0] if self.query_pos_from_scaled_boxes else reference_points,
                self.embed_dims // 2))
            query = layer(
                query,
                key=None,
                value=memory,
                query_pos=query_pos,
                attn_masks=[self_attn_mask, None],
                key_padding_mask=memory_mask,
                reference_points=points,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index)
            if reg_branches is not None:
                refined = (reg_branches[lid](query)
                           + inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
                reference_points = refined.detach()
            else:
                refined = reference_points
            hidden.append(self.norm(query))
            references.append(refined)
        return torch.stack(hidden), torch.stack(references)


def default_decoder_layer(embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                          num_points: int = 4, feedforward_channels: int = 2048) -> dict:
    """Config of one reference DINO decoder layer (used by configs and tests)."""
    return dict(
        type='BaseTransformerLayer',
        attn_cfgs=[
            dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=num_heads,
                 attn_drop=0.0, proj_drop=0.0, batch_first=True),
            dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=num_heads,
                 num_levels=num_levels, num_points=num_points, dropout=0.0, batch_first=True),
        ],
        ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                      num_fcs=2, ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)),
        operation_order=DECODER_OPERATION_ORDER,
        batch_first=True)


__all__ = ['DINODecoder', 'box_sine_embedding', 'default_decoder_layer']
