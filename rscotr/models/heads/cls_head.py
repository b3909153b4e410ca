"""Scene-classification heads: single-level (pooled Swin stage 4) and multi-level (encoder memory)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcls.models.utils.augment import Augments
from torch import Tensor, nn

from ...core.mixed_precision import force_float32
from ..builder import MODELS, build_model
from .base import BaseTaskHead


class _ClsHeadMixin:
    """Loss, batch augments and test output shared by both classification heads."""

    task = 'cls'

    def _init_cls(self, num_classes: int, loss: dict, train_augments: Optional[List[dict]],
                  topk: Sequence[int]) -> None:
        if num_classes <= 0:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.loss_module = build_model(loss)
        self.augments = Augments(train_augments) if train_augments else None
        self.topk = tuple(k for k in topk if k <= num_classes)

    def batch_augment(self, img: Tensor, gt: Dict) -> Tuple[Tensor, Dict]:
        """Mixup/CutMix on the input batch (training only); labels become soft."""
        if self.augments is None or 'gt_label' not in gt:
            return img, gt
        # mmcls's CutMix pastes in place: work on a copy, the batch stays intact
        img, label = self.augments(img.clone(), gt['gt_label'])
        return img, dict(gt, gt_label=label)

    @force_float32
    def loss(self, cls_score: Tensor, gt_label: Tensor) -> Dict[str, Tensor]:
        """Classification loss and (for hard labels) top-k accuracy.

        Args:
            cls_score: (bs, num_classes) logits.
            gt_label: (bs,) class indices or (bs, num_classes) soft labels.
        """
        losses = {'loss_cls': self.loss_module(cls_score, gt_label, avg_factor=len(cls_score))}
        if gt_label.dim() == 1:
            with torch.no_grad():
                pred = cls_score.topk(max(self.topk), dim=1).indices
                hit = pred.eq(gt_label[:, None])
                for k in self.topk:
                    losses[f'accuracy_top-{k}'] = hit[:, :k].any(1).float().mean() * 100
        return losses

    def forward_train(self, feats: Dict, img_metas: List[dict], gt_label: Tensor,
                      **kwargs) -> Dict[str, Tensor]:
        return self.loss(self(feats, img_metas), gt_label)

    def simple_test(self, feats: Dict, img_metas: List[dict], rescale: bool = True) -> list:
        """Per-image softmax score vectors (numpy, (num_classes,)), as mmcls evaluates them."""
        scores = F.softmax(self(feats, img_metas), dim=1)
        return list(scores.detach().cpu().numpy())


@MODELS.register_module()
class SingleLevelClsHead(_ClsHeadMixin, BaseTaskHead):
    """Global average pool of one backbone stage -> (dropout) -> linear.

    The reference head pools Swin stage 4 (768 ch) and never touches the neck
    or the shared encoder.

    Args:
        num_classes: Number of scene classes (45 for RESISC45).
        in_channels: Channels of the pooled stage.
        in_index: Which backbone stage to pool (-1: the last).
        loss: Loss config; label-smoothing CE 0.1 in the reference.
        train_augments: mmcls batch augments (Mixup/CutMix) used in training.
        dropout: Dropout before the linear layer.
        topk: Accuracies logged in training.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 in_index: int = -1,
                 loss: dict = dict(type='mmcls.LabelSmoothLoss', label_smooth_val=0.1,
                                   mode='original', loss_weight=1.0),
                 train_augments: Optional[List[dict]] = None,
                 dropout: float = 0.0,
                 topk: Sequence[int] = (1, 5),
                 init_cfg=dict(type='Normal', layer='Linear', std=0.01)):
        super().__init__(encoder_inputs=None, init_cfg=init_cfg)
        self._init_cls(num_classes, loss, train_augments, topk)
        self.in_index = in_index
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, feats: Dict, img_metas: Optional[List[dict]] = None) -> Tensor:
        """(bs, C, h, w) stage -> (bs, num_classes) logits."""
        x = feats['backbone'][self.in_index]
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


@MODELS.register_module()
class MultiLevelClsHead(_ClsHeadMixin, BaseTaskHead):
    """Classifies from the shared encoder's output over the neck levels.

    As released (the defaults): the head runs its own encoder pass exactly as
    the released segmentation head does (levels coarse to fine, no padding
    mask, its own level encoding), global-average-pools the encoder output of
    one level (``pool_level=1``: the second coarsest, stride 32) and applies a
    linear classifier. ``pool_level=None`` averages the memory over the valid
    positions of every level instead, and ``norm=True`` adds a LayerNorm
    before the classifier (an earlier variant of this project).

    Args:
        num_classes: Number of scene classes.
        encoder_inputs: This head's :class:`EncoderInputBuilder` config.
        embed_dims: Channels of the memory.
        pool_level: Encoder level (position in this head's encoder pass) to
            pool, or None for all levels.
        norm: LayerNorm before the classifier.
        loss, train_augments, dropout, topk: As :class:`SingleLevelClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 encoder_inputs: dict = dict(
                     positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                              normalize=True, temperature=10000),
                     num_levels=4, embed_dims=256, level_order='coarse_to_fine',
                     mask_padding=False),
                 embed_dims: int = 256,
                 pool_level: Optional[int] = 1,
                 norm: bool = False,
                 loss: dict = dict(type='mmcls.LabelSmoothLoss', label_smooth_val=0.1,
                                   mode='original', loss_weight=1.0),
                 train_augments: Optional[List[dict]] = None,
                 dropout: float = 0.0,
                 topk: Sequence[int] = (1, 5),
                 init_cfg=(dict(type='TruncNormal', layer='Linear', std=0.02),
                           dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0))):
        super().__init__(encoder_inputs=encoder_inputs,
                         init_cfg=list(init_cfg) if init_cfg is not None else None)
        self._init_cls(num_classes, loss, train_augments, topk)
        num_levels = self.encoder_input_builder.num_levels
        if pool_level is not None and not -num_levels <= pool_level < num_levels:
            raise ValueError(f'pool_level {pool_level} is not one of the {num_levels} levels')
        self.pool_level = pool_level
        self.norm = nn.LayerNorm(embed_dims) if norm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(embed_dims, num_classes)

    def forward(self, feats: Dict, img_metas: Optional[List[dict]] = None) -> Tensor:
        """Encoder output (bs, N, C) -> pooled (bs, C) -> (bs, num_classes) logits."""
        enc = feats['encoder']
        if self.pool_level is None:
            valid = (~enc.inputs.padding_mask).to(enc.memory.dtype)[..., None]
            pooled = (enc.memory * valid).sum(1) / valid.sum(1).clamp(min=1)
        else:
            pooled = enc.memory_levels()[self.pool_level].mean(dim=(2, 3))
        return self.fc(self.dropout(self.norm(pooled)))
