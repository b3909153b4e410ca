"""Mask2Former-style segmentation heads on the shared encoder.

:class:`MaskedAttentionSegHead` is the one implementation of what both
segmentation heads share: the pixel decoder over the shared encoder's output,
the masked-attention transformer decoder with its learned queries, level
embeddings and sine key encodings, and the mask embeddings (the decoding
loop itself is mmdet 2.x's ``Mask2FormerHead.forward``, inherited). Two heads
differ only in what they do with the predictions:

- :class:`PerPixelMask2FormerHead` (``rscotr/models/heads/per_pixel_seg_head.py``):
  the head of the released RSCoTr: the last mask logits are per-pixel class
  logits trained with one softmax cross-entropy (the reference);
- :class:`Mask2FormerSegHead` (this file): standard Mask2Former: Hungarian
  matching of queries to class masks, point-sampled mask losses, deep
  supervision, softmax-class x sigmoid-mask inference (a variant).
"""
import copy
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

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

from ...core.mixed_precision import force_float32
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


class NoClassPrediction(nn.Module):
    """Stands in for ``cls_embed`` in a head that predicts no per-query classes.

    mmdet's ``Mask2FormerHead.forward_head`` calls ``self.cls_embed``; with
    this module the class predictions are ``None`` and nothing is computed.
    """

    def forward(self, x: Tensor) -> None:  # noqa: D102
        return None


class MaskedAttentionSegHead(Mask2FormerHead, BaseTaskHead):
    """What both Mask2Former-style segmentation heads share (not registered).

    Inputs (``feats``, see :class:`BaseTaskHead`): ``'encoder'`` (the shared
    encoder's output over the 4 neck levels, computed with this head's
    :class:`EncoderInputBuilder`) and, for an FPN pixel decoder,
    ``'backbone'``. The pixel decoder gives mask features and the memories
    the transformer decoder cycles over, coarse to fine; before every layer
    and once before the first, the queries pass the decoder's post-norm, a
    3-layer MLP gives mask embeddings, and their dot products with the mask
    features are the mask logits; the next layer's cross-attention is masked
    where the sigmoid of those logits (resized to its memory) is below 0.5.

    Args:
        in_channels: Channels of the backbone stage an FPN pixel decoder
            fuses (Swin-T stage 1: 96); unused otherwise.
        feat_channels: Channels of the encoder memory and of the decoder (256).
        out_channels: Channels of the mask features (256).
        num_queries: Decoder queries.
        num_transformer_feat_level: Memories the decoder cycles over.
        pixel_decoder: Config of the pixel decoder; ``in_channels``,
            ``feat_channels`` and ``out_channels`` are filled in.
        enforce_decoder_input_project: Add 1x1 convs before the decoder even
            when the channels already match (identity otherwise).
        transformer_decoder: Config of the transformer decoder
            (:func:`default_seg_decoder` when None).
        positional_encoding: Sine positional encoding of the decoder keys.
        encoder_inputs: Config of this head's :class:`EncoderInputBuilder`.
        cls_out_channels: Outputs of the per-query class branch
            (``cls_embed``), or None for no class branch.
        init_cfg: mmcv init config.
    """

    task = 'seg'

    def __init__(self,
                 in_channels: int,
                 feat_channels: int,
                 out_channels: int,
                 num_queries: int,
                 num_transformer_feat_level: int,
                 pixel_decoder: dict,
                 encoder_inputs: dict,
                 cls_out_channels: Optional[int],
                 transformer_decoder: Optional[dict] = None,
                 positional_encoding: dict = dict(
                     type='SinePositionalEncoding', num_feats=128, normalize=True),
                 enforce_decoder_input_project: bool = False,
                 init_cfg=None):
        # mmdet's Mask2FormerHead.__init__ builds a pixel decoder with its own
        # deformable encoder (and asserts on that encoder's config). Here the
        # encoder is shared and lives in the model, so the parent's __init__ is
        # not called: the same parts are built below under the attribute names
        # its forward method uses.
        BaseTaskHead.__init__(self, encoder_inputs=encoder_inputs, init_cfg=init_cfg)
        if encoder_inputs.get('embed_dims', 256) != feat_channels:
            raise ValueError(f'encoder_inputs.embed_dims ({encoder_inputs.get("embed_dims")}) '
                             f'must equal feat_channels ({feat_channels})')
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
        self.cls_embed = (nn.Linear(feat_channels, cls_out_channels)
                          if cls_out_channels is not None else NoClassPrediction())
        self.mask_embed = nn.Sequential(
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, out_channels))

    def init_weights(self) -> None:
        """mmdet's Mask2Former init (caffe2-xavier convs, xavier-normal decoder
        matrices) plus this head's level embedding (normal(0, 1))."""
        Mask2FormerHead.init_weights(self)
        self.encoder_input_builder.init_weights()

    def forward(self, feats: Dict, img_metas: List[dict]) -> Tuple[List, List[Tensor]]:
        """Predictions of the initial queries and of every decoder layer.

        Args:
            feats: ``'encoder'`` output (and ``'backbone'`` stages for an FPN
                pixel decoder), see :class:`BaseTaskHead`.
            img_metas: Per-image meta dicts.

        Returns:
            tuple:

            - all_cls_scores: list of ``num_layers + 1`` class logits
              (bs, num_queries, cls_out_channels), or of None without a
              class branch.
            - all_mask_preds: list of ``num_layers + 1`` mask logits
              (bs, num_queries, h, w) at the mask features' size.
        """
        return super().forward(feats, img_metas)

    @staticmethod
    def restore_map(maps: Tensor, img_meta: dict, rescale: bool = True,
                    combine: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """Bring one image's prediction maps back to its image, as mmseg does.

        The maps are resized (bilinear) to the padded batch
        (``batch_input_shape``), cropped to ``img_shape``, passed through
        ``combine`` if given, resized to ``ori_shape`` when ``rescale`` and
        flipped back when the input was flipped.

        Args:
            maps: (1, K, h, w) maps at the mask features' size.
            img_meta: The image's meta dict.
            rescale: Resize to ``ori_shape`` (else stay at ``img_shape``).
            combine: Optional map (1, K, H, W) -> (1, K', H, W) applied at
                the cropped input size.

        Returns:
            Tensor: (1, K', H, W).
        """
        batch_shape = img_meta.get('batch_input_shape',
                                   img_meta.get('pad_shape', img_meta['img_shape']))
        maps = F.interpolate(maps, size=tuple(batch_shape[:2]), mode='bilinear',
                             align_corners=False)
        img_h, img_w = img_meta['img_shape'][:2]
        maps = maps[..., :img_h, :img_w]
        if combine is not None:
            maps = combine(maps)
        if rescale:
            maps = F.interpolate(maps, size=tuple(img_meta['ori_shape'][:2]), mode='bilinear',
                                 align_corners=False)
        if img_meta.get('flip', False):
            direction = img_meta.get('flip_direction', 'horizontal')
            maps = maps.flip(dims=(3, ) if direction == 'horizontal' else (2, ))
        return maps


@MODELS.register_module()
class Mask2FormerSegHead(MaskedAttentionSegHead):
    """Standard (matching-based) Mask2Former semantic-segmentation head.

    A variant of the reference (see ``configs/rscotr/variants/``): Hungarian
    matching of the queries to one mask per class present, point-sampled
    mask BCE and Dice, deep supervision, softmax-class x sigmoid-mask
    inference. Its pixel decoder fuses Swin stage 1 at stride 4 and its
    decoder cycles over the encoder levels of strides 32/16/8.

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
        pixel_decoder: Config of the pixel decoder.
        enforce_decoder_input_project: See :class:`MaskedAttentionSegHead`.
        transformer_decoder: Config of the transformer decoder
            (:func:`default_seg_decoder` when None).
        positional_encoding: Sine positional encoding of the decoder keys.
        encoder_inputs: Config of this head's :class:`EncoderInputBuilder`
            (sine encoding with temperature 10000, 4 levels, neck order).
        loss_cls: Class loss (CE, weight 2, no-object weight 0.1). Its
            ``class_weight`` defaults to ``[1] * num_classes + [0.1]``.
        loss_mask: Point-sampled mask loss (sigmoid BCE, weight 5).
        loss_dice: Point-sampled Dice loss (weight 5).
        train_cfg: Assigner, sampler and point sampling
            (:func:`default_seg_train_cfg` when None).
        init_cfg: mmcv init config.
    """

    def __init__(self,
                 in_channels: int = 96,
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_classes: int = 5,
                 ignore_index: int = 5,
                 num_queries: int = 100,
                 num_transformer_feat_level: int = 3,
                 pixel_decoder: dict = dict(type='SharedEncoderPixelDecoder',
                                            decoder_levels=(2, 1, 0), backbone_index=0),
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
                 init_cfg=None):
        super().__init__(
            in_channels=in_channels, feat_channels=feat_channels, out_channels=out_channels,
            num_queries=num_queries, num_transformer_feat_level=num_transformer_feat_level,
            pixel_decoder=pixel_decoder, encoder_inputs=encoder_inputs,
            cls_out_channels=num_classes + 1, transformer_decoder=transformer_decoder,
            positional_encoding=positional_encoding,
            enforce_decoder_input_project=enforce_decoder_input_project, init_cfg=init_cfg)
        self.num_things_classes = 0
        self.num_stuff_classes = num_classes
        self.num_classes = num_classes
        self.ignore_index = ignore_index

        self.train_cfg = ConfigDict(train_cfg or default_seg_train_cfg())
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

    @force_float32
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
        return [
            self.restore_map(mask_preds[i:i + 1], meta, rescale,
                             combine=lambda masks, i=i: self.semantic_logits(
                                 cls_scores[i:i + 1], masks))[0]
            for i, meta in enumerate(img_metas)]

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


__all__ = ['MaskedAttentionSegHead', 'Mask2FormerSegHead', 'NoClassPrediction',
           'default_seg_decoder', 'default_seg_train_cfg']
