"""The segmentation head of the released RSCoTr: Mask2Former decoding, per-pixel loss.

The released code keeps Mask2Former's pixel decoder and masked-attention
decoder but trains no query matching: the mask logits of the last prediction
are turned into per-pixel class logits and trained with one softmax
cross-entropy, as an mmseg decode head is. Wiring as released:

- encoder pass: the neck levels fed coarse to fine (strides 64, 32, 16, 8),
  no padding mask, valid ratios of 1, this head's own level encoding;
- pixel decoder: mask features = 1x1 conv of the finest encoder level
  (stride 8); the decoder cycles over the 4 encoder levels, coarsest first;
- ``scheme=2`` (the reference): the Q mask logits are the class logits,
  channel ``k`` is class ``k`` (channels ``>= num_classes`` are never
  targets); ``scheme=1``: a per-query class branch ``cls_embed`` gives
  ``num_classes`` logits per query, and the class logits of a pixel are their
  sum over the queries weighted by the mask logits.
"""
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.losses import accuracy
from torch import Tensor

from ...core.mixed_precision import force_float32
from ..builder import MODELS, build_model
from .mask2former_head import MaskedAttentionSegHead

#: The released head's encoder pass (coarse to fine, no padding mask).
RELEASE_SEG_ENCODER_INPUTS = dict(
    positional_encoding=dict(type='SinePositionalEncoding', num_feats=128, normalize=True,
                             temperature=10000),
    num_levels=4, embed_dims=256, level_order='coarse_to_fine', mask_padding=False)


@MODELS.register_module()
class PerPixelMask2FormerHead(MaskedAttentionSegHead):
    """Mask2Former-style decoder trained with a per-pixel cross-entropy (as released).

    Args:
        num_classes: Classes of the label maps (6 for Potsdam as released:
            clutter is class 5 and trained).
        scheme: 2: the mask logits are the class logits (needs
            ``num_queries >= num_classes``); 1: class logits per query
            weighted by the mask logits.
        in_channels: Unused by the released pixel decoder (kept for an FPN one).
        feat_channels: Channels of the encoder memory and of the decoder (256).
        out_channels: Channels of the mask features (256).
        num_queries: Decoder queries (100 in the reference).
        num_transformer_feat_level: Encoder levels the decoder cycles over (4).
        pixel_decoder: Config of the pixel decoder (released wiring by default).
        transformer_decoder: Config of the transformer decoder (9 layers of
            cross-attn, LN, self-attn, LN, FFN, LN when None).
        positional_encoding: Sine encoding of the decoder keys.
        encoder_inputs: This head's encoder pass (:data:`RELEASE_SEG_ENCODER_INPUTS`).
        ignore_index: Label the loss and the accuracy ignore (255: boundary
            and padding).
        loss_decode: Pixel loss (mmseg's softmax cross-entropy, weight 1).
        enforce_decoder_input_project: See :class:`MaskedAttentionSegHead`.
        init_cfg: mmcv init config.
    """

    def __init__(self,
                 num_classes: int = 6,
                 scheme: int = 2,
                 in_channels: int = 96,
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_queries: int = 100,
                 num_transformer_feat_level: int = 4,
                 pixel_decoder: dict = dict(type='SharedEncoderPixelDecoder',
                                            decoder_levels=(0, 1, 2, 3), backbone_index=None),
                 transformer_decoder: Optional[dict] = None,
                 positional_encoding: dict = dict(
                     type='SinePositionalEncoding', num_feats=128, normalize=True),
                 encoder_inputs: dict = RELEASE_SEG_ENCODER_INPUTS,
                 ignore_index: int = 255,
                 loss_decode: dict = dict(type='mmseg.CrossEntropyLoss', use_sigmoid=False,
                                          loss_weight=1.0),
                 enforce_decoder_input_project: bool = False,
                 init_cfg=None):
        if scheme not in (1, 2):
            raise ValueError(f'scheme must be 1 or 2, got {scheme!r}')
        if scheme == 2 and num_queries < num_classes:
            raise ValueError(f'scheme=2 uses the mask logits of the queries as class logits: '
                             f'num_queries ({num_queries}) must be >= num_classes ({num_classes})')
        super().__init__(
            in_channels=in_channels, feat_channels=feat_channels, out_channels=out_channels,
            num_queries=num_queries, num_transformer_feat_level=num_transformer_feat_level,
            pixel_decoder=pixel_decoder, encoder_inputs=encoder_inputs,
            cls_out_channels=num_classes if scheme == 1 else None,
            transformer_decoder=transformer_decoder, positional_encoding=positional_encoding,
            enforce_decoder_input_project=enforce_decoder_input_project, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.scheme = scheme
        self.ignore_index = ignore_index
        self.loss_decode = build_model(loss_decode)

    def seg_logits(self, feats: Dict, img_metas: List[dict]) -> Tensor:
        """Per-pixel class logits of the last prediction.

        Returns:
            Tensor: (bs, K, h, w) at the mask features' size (stride 8), with
            ``K = num_queries`` (scheme 2) or ``num_classes`` (scheme 1).
        """
        all_cls_scores, all_mask_preds = self(feats, img_metas)
        if self.scheme == 2:
            return all_mask_preds[-1]
        return torch.einsum('bqc,bqhw->bchw', all_cls_scores[-1], all_mask_preds[-1])

    # ------------------------------------------------------------------ training
    def forward_train(self, feats: Dict, img_metas: List[dict],  # type: ignore[override]
                      gt_semantic_seg: Tensor, **kwargs) -> Dict[str, Tensor]:
        """Loss of a batch: ``loss_ce`` and the pixel accuracy ``acc_seg`` (%)."""
        return self.loss(self.seg_logits(feats, img_metas), gt_semantic_seg)

    @force_float32
    def loss(self, seg_logit: Tensor, gt_semantic_seg: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy of the logits resized (bilinear) to the label maps.

        Args:
            seg_logit: (bs, K, h, w) logits.
            gt_semantic_seg: (bs, 1, H, W) or (bs, H, W) label maps of the
                padded batch; ``ignore_index`` pixels do not count.

        Returns:
            dict: ``loss_ce`` and ``acc_seg``.
        """
        if gt_semantic_seg.dim() == 4:
            gt_semantic_seg = gt_semantic_seg.squeeze(1)
        label = gt_semantic_seg.long()
        seg_logit = F.interpolate(seg_logit, size=label.shape[-2:], mode='bilinear',
                                  align_corners=False)
        return OrderedDict(
            loss_ce=self.loss_decode(seg_logit, label, ignore_index=self.ignore_index),
            acc_seg=accuracy(seg_logit, label, ignore_index=self.ignore_index))

    # ------------------------------------------------------------------ inference
    def simple_test_logits(self, feats: Dict, img_metas: List[dict],
                           rescale: bool = True) -> List[Tensor]:
        """Per-image logits at the original size, before the softmax.

        Returns:
            list: per image, a (K, H, W) tensor (``H, W`` = ``ori_shape`` with
            ``rescale``, else ``img_shape``).
        """
        logits = self.seg_logits(feats, img_metas)
        return [self.restore_map(logits[i:i + 1], meta, rescale)[0]
                for i, meta in enumerate(img_metas)]

    @property
    def has_no_class_score(self) -> bool:
        """Whether :meth:`simple_test_scores` adds a "no class" channel: scheme 2
        with more queries than classes, where a query channel that is no class
        can win the argmax of :meth:`simple_test`."""
        return self.scheme == 2 and self.num_queries > self.num_classes

    def simple_test_scores(self, feats: Dict, img_metas: List[dict],
                           rescale: bool = True) -> List[Tensor]:
        """Per-image probabilities whose argmax is :meth:`simple_test`'s label.

        The softmax over the K logits gives the ``num_classes`` class channels;
        with :attr:`has_no_class_score` one more channel (index
        ``num_classes``) holds the largest probability of the channels that
        are no class.

        Returns:
            list: per image, a (num_classes [+ 1], H, W) tensor.
        """
        scores = []
        for logit in self.simple_test_logits(feats, img_metas, rescale):
            prob = F.softmax(logit, dim=0)
            if self.has_no_class_score:
                prob = torch.cat((prob[:self.num_classes],
                                  prob[self.num_classes:].max(dim=0, keepdim=True).values))
            scores.append(prob)
        return scores

    def simple_test(self, feats: Dict, img_metas: List[dict],
                    rescale: bool = True) -> List[np.ndarray]:
        """Label maps in the format of mmseg's ``CustomDataset.evaluate``.

        The argmax runs over all K logits, as released (with scheme 2 an
        untrained model can predict a channel ``>= num_classes``, which the
        evaluation counts as wrong).

        Returns:
            list: per image, an (H, W) int64 array.
        """
        # max().indices: same result as argmax, much faster on large CPU maps
        return [logit.max(dim=0).indices.cpu().numpy()
                for logit in self.simple_test_logits(feats, img_metas, rescale)]


__all__ = ['PerPixelMask2FormerHead', 'RELEASE_SEG_ENCODER_INPUTS']
