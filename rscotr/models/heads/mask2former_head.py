"""Mask2Former semantic-segmentation head on the shared encoder.

The transformer decoder, queries, class/mask embeddings, Hungarian matching,
point-sampled losses and deep supervision are mmdet 2.x's ``Mask2FormerHead``
(inherited). What differs:

- the pixel decoder is :class:`~rscotr.models.layers.SharedEncoderPixelDecoder`:
  it has no encoder of its own but reads the shared encoder's output, which the
  model computes with this head's :class:`EncoderInputBuilder`;
- ground truth is an mmseg label map, turned into one binary mask per class
  present (labels ``>= num_classes`` and ``ignore_index`` give no mask);
- inference is semantic (as mmseg 1.x's Mask2Former wrapper): softmax class
  scores without the no-object column times sigmoid masks, argmax per pixel.
"""
import copy
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv import ConfigDict
from mmcv.cnn import Conv2d
from mmcv.cnn.bricks.transformer import (build_positional_encoding,
                                         build_transformer_layer_sequence)
from mmcv.runner import ModuleList
from mmdet.core import build_assigner, build_sampler
from mmdet.models.builder import build_loss
from mmdet.models.dense_heads import Mask2FormerHead
from torch import Tensor, nn

from ..builder import MODELS, build_model
from .base import BaseTaskHead


def default_seg_decoder(embed_dims: int = 256, num_heads: int = 8,
                        feedforward_channels: int = 2048, num_layers: int = 9) -> dict:
    """Config of the Mask2Former transformer decoder (reference: 256/8/2048/9).

    Each layer is [masked cross-attn -> LN -> self-attn -> LN -> FFN -> LN]
    (sequence-first, as mmdet's ``Mask2FormerHead`` runs it).
    """
    return dict(
        type='DetrTransformerDecoder',
        return_intermediate=True,
        num_layers=num_layers,
        transformerlayers=dict(
            type='DetrTransformerDecoderLayer',
            attn_cfgs=dict(type='MultiheadAttention', embed_dims=embed_dims,
                           num_heads=num_heads, attn_drop=0.0, proj_drop=0.0,
                           dropout_layer=None, batch_first=False),
            ffn_cfgs=dict(embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                          num_fcs=2, act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                          dropout_layer=None, add_identity=True),
            feedforward_channels=feedforward_channels,
            operation_order=('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')),
        init_cfg=None)


def default_seg_train_cfg(num_points: int = 12544) -> dict:
    """Matching and point sampling of the reference (costs 2/5/5, 12544 points)."""
    return dict(
        num_points=num_points,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='MaskHungarianAssigner',
            cls_cost=dict(type='ClassificationCost', weight=2.0),
            mask_cost=dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
            dice_cost=dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)),
        sampler=dict(type='MaskPseudoSampler'))


@MODELS.register_module()
class Mask2FormerSegHead(Mask2FormerHead, BaseTaskHead):
    """Mask2Former semantic-segmentation head fed by the shared encoder.

    Inputs (``feats``, see :class:`BaseTaskHead`): ``'backbone'`` (Swin stage 1
    is fused at stride 4) and ``'encoder'`` (the shared encoder's output over
    the 4 neck levels, strides 8/16/32/64). The transformer decoder cycles over
    the encoder levels of strides 32/16/8 with masked cross-attention.

    Args:
        in_channels: Channels of the backbone stage fused by the pixel
            decoder (Swin-T stage 1: 96).
        feat_channels: Channels of the encoder memory and of the decoder (256).
        out_channels: Channels of the mask features (256).
        num_classes: Trained classes (5 for Potsdam).
        ignore_index: Label without a mask target (5 = clutter); every label
            ``>= num_classes`` (e.g. 255 padding) is ignored as well.
        num_queries: Decoder queries (100).
        num_transformer_feat_level: Encoder levels the decoder cycles over (3).
        pixel_decoder: Config of the pixel decoder; ``in_channels``,
            ``feat_channels`` and ``out_channels`` are filled in.
        enforce_decoder_input_project: Add 1x1 convs before the decoder even
            when the channels already match.
        transformer_decoder: Config of the transformer decoder
            (:func:`default_seg_decoder` when None).
        positional_encoding: Sine positional encoding of the decoder keys.
        encoder_inputs: Config of this head's :class:`EncoderInputBuilder`
            (sine encoding with temperature 10000, 4 levels).
        loss_cls: Class loss (CE, weight 2, no-object weight 0.1). Its
            ``class_weight`` defaults to ``[1] * num_classes + [0.1]``.
        loss_mask: Point-sampled mask loss (sigmoid BCE, weight 5).
        loss_dice: Point-sampled Dice loss (weight 5).
        train_cfg: Assigner, sampler and point sampling
            (:func:`default_seg_train_cfg` when None).
        test_cfg: Unused (semantic inference has no options).
        init_cfg: mmcv init config.
    """

    task = 'seg'

    def __init__(self,
                 in_channels: int = 96,
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_classes: int = 5,
                 ignore_index: int = 5,
                 num_queries: int = 100,
                 num_transformer_feat_level: int = 3,
                 pixel_decoder: dict = dict(type='SharedEncoderPixelDecoder'),
                 enforce_decoder_input_project: bool = False,
                 transformer_decoder: Optional[dict] = None,
                 positional_encoding: dict = dict(
                     type='SinePositionalEncoding', num_feats=128, normalize=True),
                 encoder_inputs: dict = dict(
                     positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                              normalize=True, temperature=10000),
                     num_levels=4, embed_dims=256),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=False,
                                       loss_weight=2.0, reduction='mean'),
                 loss_mask: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                        reduction='mean', loss_weight=5.0),
                 loss_dice: dict = dict(type='DiceLoss', use_sigmoid=True, activate=True,
                                        reduction='mean', naive_dice=True, eps=1.0,
                                        loss_weight=5.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=None):
        # mmdet's Mask2FormerHead.__init__ builds a pixel decoder with its own
        # deformable encoder (and asserts on that encoder's config). Here the
        # encoder is shared and lives in the model, so the parent's __init__ is
        # not called: the same parts are built below under the attribute names
        # its forward/loss methods use.
        BaseTaskHead.__init__(self, encoder_inputs=encoder_inputs, init_cfg=init_cfg)
        if encoder_inputs.get('embed_dims', 256) != feat_channels:
            raise ValueError(f'encoder_inputs.embed_dims ({encoder_inputs.get("embed_dims")}) '
                             f'must equal feat_channels ({feat_channels})')
        self.num_things_classes = 0
        self.num_stuff_classes = num_classes
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.num_queries = num_queries
        self.num_transformer_feat_level = num_transformer_feat_level

        self.pixel_decoder = build_model(dict(
            pixel_decoder, in_channels=in_channels, feat_channels=feat_channels,
            out_channels=out_channels))
        if self.pixel_decoder.num_outs != num_transformer_feat_level:
            raise ValueError(f'the pixel decoder gives {self.pixel_decoder.num_outs} levels, '
                             f'num_transformer_feat_level is {num_transformer_feat_level}')

        transformer_decoder = ConfigDict(transformer_decoder or default_seg_decoder())
        self.num_heads = transformer_decoder.transformerlayers.attn_cfgs.num_heads
        self.num_transformer_decoder_layers = transformer_decoder.num_layers
        self.transformer_decoder = build_transformer_layer_sequence(transformer_decoder)
        self.decoder_embed_dims = self.transformer_decoder.embed_dims
        self.decoder_input_projs = ModuleList([
            Conv2d(feat_channels, self.decoder_embed_dims, kernel_size=1)
            if self.decoder_embed_dims != feat_channels or enforce_decoder_input_project
            else nn.Identity()
            for _ in range(num_transformer_feat_level)])
        self.decoder_positional_encoding = build_positional_encoding(positional_encoding)
        self.query_embed = nn.Embedding(num_queries, feat_channels)
        self.query_feat = nn.Embedding(num_queries, feat_channels)
        self.level_embed = nn.Embedding(num_transformer_feat_level, feat_channels)
        self.cls_embed = nn.Linear(feat_channels, num_classes + 1)
        self.mask_embed = nn.Sequential(
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, out_channels))

        self.train_cfg = ConfigDict(train_cfg or default_seg_train_cfg())
        self.test_cfg = test_cfg
        self.assigner = build_assigner(self.train_cfg.assigner)
        self.sampler = build_sampler(self.train_cfg.sampler, context=self)
        self.num_points = self.train_cfg.get('num_points', 12544)
        self.oversample_ratio = self.train_cfg.get('oversample_ratio', 3.0)
        self.importance_sample_ratio = self.train_cfg.get('importance_sample_ratio', 0.75)

        loss_cls = copy.deepcopy(loss_cls)
        if loss_cls.get('class_weight') is None:
            loss_cls['class_weight'] = [1.0] * num_classes + [0.1]
        if len(loss_cls['class_weight']) != num_classes + 1:
            raise ValueError('loss_cls.class_weight needs num_classes + 1 entries '
                             '(the last one is the no-object class)')
        self.class_weight = loss_cls['class_weight']
        self.loss_cls = build_loss(loss_cls)
        self.loss_mask = build_loss(loss_mask)
        self.loss_dice = build_loss(loss_dice)

    def init_weights(self) -> None:
        """mmdet's Mask2Former init plus this head's level embedding."""
        Mask2FormerHead.init_weights(self)
        self.encoder_input_builder.init_weights()

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Dict, img_metas: List[dict]) -> Tuple[List[Tensor], List[Tensor]]:
        """Class and mask predictions of the initial queries and every decoder layer.

        Args:
            feats: ``'backbone'`` stages and ``'encoder'`` output (see
                :class:`BaseTaskHead`).
            img_metas: Per-image meta dicts.

        Returns:
            tuple:

            - all_cls_scores: list of ``num_layers + 1`` tensors
              (bs, num_queries, num_classes + 1); the last column is no-object.
            - all_mask_preds: list of ``num_layers + 1`` mask logits
              (bs, num_queries, H/4, W/4).
        """
        return super().forward(feats, img_metas)

    # ------------------------------------------------------------------ training
    def semantic_targets(self, gt_semantic_seg: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """One binary mask per class present in each label map.

        Args:
            gt_semantic_seg: (bs, 1, H, W) or (bs, H, W) integer label maps.

        Returns:
            tuple: per image, labels (n,) long and masks (n, H, W) long, for
            the n trained classes present (ignored labels give no mask).
        """
        if gt_semantic_seg.dim() == 4:
            gt_semantic_seg = gt_semantic_seg.squeeze(1)
        labels_list, masks_list = [], []
        for seg in gt_semantic_seg.long():
            labels = torch.unique(seg)
            labels = labels[(labels >= 0) & (labels < self.num_classes)
                            & (labels != self.ignore_index)]
            labels_list.append(labels)
            masks_list.append((seg[None] == labels[:, None, None]).long())
        return labels_list, masks_list

    def forward_train(self, feats: Dict, img_metas: List[dict],  # type: ignore[override]
                      gt_semantic_seg: Tensor) -> Dict[str, Tensor]:
        """Losses of a batch.

        Args:
            feats: See :meth:`forward`.
            img_metas: Per-image meta dicts.
            gt_semantic_seg: (bs, 1, H, W) long label maps of the padded batch
                (mmseg pipelines).

        Returns:
            dict: ``loss_cls``, ``loss_mask``, ``loss_dice`` of the last layer
            and ``d{i}.loss_*`` of the initial queries (d0) and the other layers.
        """
        all_cls_scores, all_mask_preds = self(feats, img_metas)
        gt_labels, gt_masks = self.semantic_targets(gt_semantic_seg)
        return self.loss(all_cls_scores, all_mask_preds, gt_labels, gt_masks, img_metas)

    def loss(self, all_cls_scores: List[Tensor], all_mask_preds: List[Tensor],
             gt_labels_list: List[Tensor], gt_masks_list: List[Tensor],
             img_metas: List[dict]) -> Dict[str, Tensor]:
        """mmdet's deep-supervised Mask2Former losses, as scalars.

        Args:
            all_cls_scores: Output of :meth:`forward`.
            all_mask_preds: Output of :meth:`forward`.
            gt_labels_list: Per image (n,) class indices.
            gt_masks_list: Per image (n, H, W) binary masks of the padded input.
            img_metas: Per-image meta dicts.

        Returns:
            dict: ``loss_cls``, ``loss_mask``, ``loss_dice`` (last layer) and
            ``d{i}.loss_*`` (i = 0 for the initial queries, then layers 1..L-1).
        """
        losses = super().loss(all_cls_scores, all_mask_preds, gt_labels_list, gt_masks_list,
                              img_metas)
        # mmdet averages the mask terms by a (1,)-shaped factor: make them 0-dim
        return OrderedDict((k, v.reshape(())) for k, v in losses.items())

    # ------------------------------------------------------------------ inference
    def semantic_logits(self, cls_score: Tensor, mask_pred: Tensor) -> Tensor:
        """Per-pixel class scores: softmax(class)[:-1] weighted by sigmoid(mask).

        Args:
            cls_score: (bs, num_queries, num_classes + 1).
            mask_pred: (bs, num_queries, h, w) mask logits.

        Returns:
            Tensor: (bs, num_classes, h, w).
        """
        cls_prob = F.softmax(cls_score, dim=-1)[..., :-1]
        return torch.einsum('bqc,bqhw->bchw', cls_prob, mask_pred.sigmoid())

    def simple_test_scores(self, feats: Dict, img_metas: List[dict],
                           rescale: bool = True) -> List[Tensor]:
        """Per-image class scores, before the argmax of :meth:`simple_test`.

        Mask logits are resized to the padded input, cropped to ``img_shape``
        and combined with the class scores (:meth:`semantic_logits`); with
        ``rescale`` the scores are resized to ``ori_shape``; flipped inputs are
        flipped back (as mmseg).

        Returns:
            list: per image, a (num_classes, H, W) tensor (``H, W`` =
            ``ori_shape`` with ``rescale``, else ``img_shape``).
        """
        all_cls_scores, all_mask_preds = self(feats, img_metas)
        cls_scores, mask_preds = all_cls_scores[-1], all_mask_preds[-1]
        results = []
        for i, meta in enumerate(img_metas):
            batch_shape = meta.get('batch_input_shape', meta.get('pad_shape', meta['img_shape']))
            masks = F.interpolate(mask_preds[i:i + 1], size=tuple(batch_shape[:2]),
                                  mode='bilinear', align_corners=False)
            img_h, img_w = meta['img_shape'][:2]
            seg_logit = self.semantic_logits(cls_scores[i:i + 1], masks[..., :img_h, :img_w])
            if rescale:
                seg_logit = F.interpolate(seg_logit, size=tuple(meta['ori_shape'][:2]),
                                          mode='bilinear', align_corners=False)
            if meta.get('flip', False):
                direction = meta.get('flip_direction', 'horizontal')
                seg_logit = seg_logit.flip(dims=(3, ) if direction == 'horizontal' else (2, ))
            results.append(seg_logit[0])
        return results

    def simple_test(self, feats: Dict, img_metas: List[dict],
                    rescale: bool = True) -> List[np.ndarray]:
        """Label maps in the format of mmseg's ``CustomDataset.evaluate``.

        Returns:
            list: per image, an (H, W) int64 array of labels in
            ``[0, num_classes)``: the argmax of :meth:`simple_test_scores`.
        """
        # max().indices: same result as argmax, much faster on large CPU maps
        return [scores.max(dim=0).indices.cpu().numpy()
                for scores in self.simple_test_scores(feats, img_metas, rescale)]


__all__ = ['Mask2FormerSegHead', 'default_seg_decoder', 'default_seg_train_cfg']
