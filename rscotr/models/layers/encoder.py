"""The shared deformable encoder and the one preparation of its inputs.

Every head that uses the shared encoder owns an :class:`EncoderInputBuilder`
(its own sine positional encoding and learned level embedding) and calls it on
the neck levels; the model then runs the single :class:`SharedDeformableEncoder`
on the result. Nothing here is duplicated per head.
"""
from dataclasses import dataclass
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import (TransformerLayerSequence,
                                         build_positional_encoding)
from mmcv.runner import BaseModule
from torch import Tensor, nn

from ...ops import RSCoTrMSDeformAttn  # noqa: F401  (registers the attention used by the layers)
from ..builder import MODELS

import mmdet.models.utils.positional_encoding  # noqa: F401,E402 (registers SinePositionalEncoding)


@dataclass
class EncoderInputs:
    """Flattened multi-level features ready for the deformable encoder.

    ``N = sum(h_l * w_l)`` over the levels; all tensors are batch-first.

    Attributes:
        query: (bs, N, C) flattened features.
        query_pos: (bs, N, C) sine positional encoding plus level embedding.
        padding_mask: (bs, N) bool, True at padded positions.
        spatial_shapes: (num_levels, 2) long, (h, w) of every level.
        level_start_index: (num_levels,) long.
        valid_ratios: (bs, num_levels, 2), (w, h) share of each level that is
            not padding.
        reference_points: (bs, N, num_levels, 2) normalised (x, y) of every
            position, scaled into each level's valid area.
    """
    query: Tensor
    query_pos: Tensor
    padding_mask: Tensor
    spatial_shapes: Tensor
    level_start_index: Tensor
    valid_ratios: Tensor
    reference_points: Tensor

    def split_levels(self, flat: Tensor) -> List[Tensor]:
        """Undo the flattening: (bs, N, C) -> list of (bs, C, h_l, w_l)."""
        bs, _, c = flat.shape
        sizes = (self.spatial_shapes[:, 0] * self.spatial_shapes[:, 1]).tolist()
        return [
            x.transpose(1, 2).reshape(bs, c, int(h), int(w))
            for x, (h, w) in zip(flat.split(sizes, dim=1), self.spatial_shapes.tolist())
        ]


@dataclass
class EncoderOutput:
    """What a head receives from the shared encoder.

    Attributes:
        memory: (bs, N, C) encoder output.
        inputs: The :class:`EncoderInputs` it was computed from.
    """
    memory: Tensor
    inputs: EncoderInputs

    def memory_levels(self) -> List[Tensor]:
        """``memory`` as a list of (bs, C, h_l, w_l) maps."""
        return self.inputs.split_levels(self.memory)


def padding_masks(img_metas: Sequence[dict], batch_shape: Sequence[int],
                  device: torch.device) -> Tensor:
    """(bs, H, W) bool masks, True where the padded batch has no image."""
    h, w = batch_shape
    masks = torch.ones((len(img_metas), h, w), dtype=torch.bool, device=device)
    for i, meta in enumerate(img_metas):
        img_h, img_w = meta['img_shape'][:2]
        masks[i, :img_h, :img_w] = False
    return masks


def valid_ratio(mask: Tensor) -> Tensor:
    """(bs, h, w) padding mask -> (bs, 2) valid (w, h) ratios."""
    _, h, w = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1).float() / h
    valid_w = (~mask[:, 0, :]).sum(1).float() / w
    return torch.stack([valid_w, valid_h], -1)


def encoder_reference_points(spatial_shapes: Tensor, valid_ratios: Tensor) -> Tensor:
    """Centres of every position of every level, normalised by the valid area.

    Args:
        spatial_shapes: (num_levels, 2).
        valid_ratios: (bs, num_levels, 2).

    Returns:
        Tensor: (bs, N, num_levels, 2).
    """
    points = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        ys, xs = torch.meshgrid(
            torch.linspace(0.5, h - 0.5, h, dtype=valid_ratios.dtype, device=valid_ratios.device),
            torch.linspace(0.5, w - 0.5, w, dtype=valid_ratios.dtype, device=valid_ratios.device),
            indexing='ij')
        ys = ys.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        xs = xs.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        points.append(torch.stack((xs, ys), -1))
    points = torch.cat(points, 1)
    return points[:, :, None] * valid_ratios[:, None]


class EncoderInputBuilder(BaseModule):
    """A head's own positional encoding and level embedding for the shared encoder.

    Two ways of feeding the neck levels exist in the released RSCoTr, and both
    are options here:

    - DINO (``level_order='fine_to_coarse'``, ``mask_padding=True``): the levels
      in neck order (strides 8, 16, 32, 64), padded positions masked, valid
      ratios and reference points from each image's ``img_shape``;
    - the segmentation head and the multi-level classifier
      (``level_order='coarse_to_fine'``, ``mask_padding=False``): encoder
      position ``i`` takes neck level ``3 - i`` (strides 64, 32, 16, 8), an
      all-False padding mask, valid ratios of 1, reference points at the cell
      centres divided by the level's size.

    The level embedding is indexed by encoder position, so ``level_embed[0]``
    belongs to the coarsest level in the second case.

    Args:
        positional_encoding: Config of an mmcv positional encoding, e.g.
            ``dict(type='SinePositionalEncoding', num_feats=128, normalize=True,
            offset=-0.5, temperature=20)``.
        num_levels: Number of feature levels.
        embed_dims: Channels of the features.
        level_order: ``'fine_to_coarse'`` (neck order) or ``'coarse_to_fine'``.
        mask_padding: Mask the padded part of the batch (False: every position
            counts as image, as the released segmentation head does).
    """

    LEVEL_ORDERS = ('fine_to_coarse', 'coarse_to_fine')

    def __init__(self, positional_encoding: dict, num_levels: int = 4, embed_dims: int = 256,
                 level_order: str = 'fine_to_coarse', mask_padding: bool = True,
                 init_cfg=None):
        super().__init__(init_cfg)
        if level_order not in self.LEVEL_ORDERS:
            raise ValueError(f'level_order must be one of {self.LEVEL_ORDERS}, '
                             f'got {level_order!r}')
        self.positional_encoding = build_positional_encoding(positional_encoding)
        self.num_levels = num_levels
        self.embed_dims = embed_dims
        self.level_order = level_order
        self.mask_padding = bool(mask_padding)
        self.level_embed = nn.Parameter(torch.empty(num_levels, embed_dims))

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.normal_(self.level_embed)

    def forward(self, mlvl_feats: Sequence[Tensor], img_metas: Sequence[dict]) -> EncoderInputs:
        """Flatten ``mlvl_feats`` (list of (bs, C, h_l, w_l)) into :class:`EncoderInputs`.

        ``mlvl_feats`` are in neck order (fine to coarse) whatever
        ``level_order`` is. ``img_metas`` need ``img_shape`` (the unpadded
        size) and ``batch_input_shape`` (the padded batch size, set by the
        model) when ``mask_padding``.
        """
        if len(mlvl_feats) != self.num_levels:
            raise ValueError(f'expected {self.num_levels} feature levels, got {len(mlvl_feats)}')
        if self.level_order == 'coarse_to_fine':
            mlvl_feats = list(mlvl_feats)[::-1]
        bs = mlvl_feats[0].size(0)
        device = mlvl_feats[0].device
        img_masks = None
        if self.mask_padding:
            img_masks = padding_masks(img_metas, img_metas[0]['batch_input_shape'], device)
        feats, masks, pos, shapes, ratios = [], [], [], [], []
        for lvl, feat in enumerate(mlvl_feats):
            h, w = feat.shape[-2:]
            if img_masks is None:
                mask = torch.zeros((bs, h, w), dtype=torch.bool, device=device)
            else:
                mask = F.interpolate(img_masks[None].float(), size=(h, w))[0].bool()
            lvl_pos = self.positional_encoding(mask) + self.level_embed[lvl].view(1, -1, 1, 1)
            feats.append(feat.flatten(2).transpose(1, 2))
            pos.append(lvl_pos.flatten(2).transpose(1, 2))
            masks.append(mask.flatten(1))
            shapes.append((h, w))
            ratios.append(valid_ratio(mask))
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(1),
                                       (spatial_shapes[:, 0] * spatial_shapes[:, 1]).cumsum(0)[:-1]))
        valid_ratios = torch.stack(ratios, 1).to(feats[0].dtype)
        return EncoderInputs(
            query=torch.cat(feats, 1),
            query_pos=torch.cat(pos, 1).to(feats[0].dtype),
            padding_mask=torch.cat(masks, 1),
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reference_points=encoder_reference_points(spatial_shapes, valid_ratios))


@MODELS.register_module()
class SharedDeformableEncoder(TransformerLayerSequence):
    """The deformable encoder shared by all heads (batch-first).

    Args:
        num_layers: Number of layers (6 in the reference).
        transformerlayers: Config of one mmcv ``BaseTransformerLayer`` with
            ``operation_order=('self_attn', 'norm', 'ffn', 'norm')`` and a
            multi-scale deformable self-attention.
    """

    def __init__(self, transformerlayers: dict, num_layers: int, init_cfg=None):
        super().__init__(transformerlayers=transformerlayers, num_layers=num_layers,
                         init_cfg=init_cfg)
        if not self.layers[0].batch_first:
            raise ValueError('SharedDeformableEncoder expects batch_first=True layers')

    def init_weights(self) -> None:
        super().init_weights()
        for m in self.modules():
            if hasattr(m, 'sampling_offsets') and hasattr(m, 'init_weights') and m is not self:
                m.init_weights()

    def forward(self, inputs: EncoderInputs) -> EncoderOutput:  # type: ignore[override]
        """Run every layer over ``inputs``; returns :class:`EncoderOutput`."""
        query = inputs.query
        for layer in self.layers:
            query = layer(
                query=query,
                key=None,
                value=None,
                query_pos=inputs.query_pos,
                query_key_padding_mask=inputs.padding_mask,
                key_padding_mask=inputs.padding_mask,
                reference_points=inputs.reference_points,
                spatial_shapes=inputs.spatial_shapes,
                level_start_index=inputs.level_start_index)
        return EncoderOutput(memory=query, inputs=inputs)


def default_encoder_layer(embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                          num_points: int = 4, feedforward_channels: int = 2048) -> dict:
    """Config of one reference encoder layer (used by configs and tests)."""
    return dict(
        type='BaseTransformerLayer',
        attn_cfgs=dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=num_heads,
                       num_levels=num_levels, num_points=num_points, dropout=0.0,
                       batch_first=True),
        ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                      num_fcs=2, ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)),
        operation_order=('self_attn', 'norm', 'ffn', 'norm'),
        batch_first=True)


__all__ = ['EncoderInputs', 'EncoderOutput', 'EncoderInputBuilder', 'SharedDeformableEncoder',
           'encoder_reference_points', 'padding_masks', 'valid_ratio', 'default_encoder_layer']
