"""Mask2Former-style pixel decoder on top of the shared deformable encoder.

mmdet's ``MSDeformAttnPixelDecoder`` owns a deformable encoder of its own. In
RSCoTr the segmentation head instead receives the output of the *shared*
encoder (run by the model with the head's own positional encoding and level
embedding), so this pixel decoder only makes the mask features and hands the
encoded levels to the transformer decoder. Two wirings are options of the one
class:

- as released (``backbone_index=None``): the mask features are a 1x1 conv of
  the finest encoder level (stride 8); no lateral or output convs;
- FPN (``backbone_index=0``): the finest encoder level is upsampled and fused
  with Swin stage 1 into stride-4 mask features, as standard Mask2Former does.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule, caffe2_xavier_init
from mmcv.runner import BaseModule
from torch import Tensor, nn

from ..builder import MODELS


@MODELS.register_module()
class SharedEncoderPixelDecoder(BaseModule):
    """Pixel decoder fed by the shared encoder's output.

    ``forward`` reads ``feats['encoder'].memory_levels()`` (the encoded neck
    levels, ``feat_channels`` each, in the order the head's encoder pass fed
    them) and, with ``backbone_index`` set, ``feats['backbone'][backbone_index]``
    (Swin stage 1, ``in_channels``, stride 4).

    - ``backbone_index=None``: mask features = ``mask_feature(finest level)``.
    - ``backbone_index=i``: mask features =
      ``mask_feature(output_conv(lateral_conv(stage_i) + upsample(finest level)))``.

    The finest level is the encoder level with the most positions.

    Args:
        in_channels: Channels of the fused backbone stage (96 for Swin-T);
            unused without ``backbone_index``.
        feat_channels: Channels of the encoder memory (256).
        out_channels: Channels of the mask features (256).
        decoder_levels: Indices into the encoder levels handed to the
            transformer decoder, coarse to fine: ``(0, 1, 2, 3)`` for a
            coarse-to-fine encoder pass (strides 64/32/16/8, as released),
            ``(2, 1, 0)`` for a fine-to-coarse one (strides 32/16/8).
        backbone_index: Backbone stage fused at stride 4, or None.
        norm_cfg: Norm of the lateral and output convs (GroupNorm 32).
        act_cfg: Activation of the output conv (ReLU).
        init_cfg: mmcv init config.
    """

    def __init__(self,
                 in_channels: int = 96,
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 decoder_levels: Sequence[int] = (0, 1, 2, 3),
                 backbone_index: Optional[int] = None,
                 norm_cfg: dict = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.decoder_levels = tuple(decoder_levels)
        self.backbone_index = backbone_index
        if backbone_index is not None:
            use_bias = norm_cfg is None
            self.lateral_conv = ConvModule(
                in_channels, feat_channels, kernel_size=1, bias=use_bias, norm_cfg=norm_cfg,
                act_cfg=None)
            self.output_conv = ConvModule(
                feat_channels, feat_channels, kernel_size=3, padding=1, bias=use_bias,
                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.mask_feature = nn.Conv2d(feat_channels, out_channels, kernel_size=1)

    @property
    def num_outs(self) -> int:
        """Number of levels handed to the transformer decoder."""
        return len(self.decoder_levels)

    def init_weights(self) -> None:
        """caffe2-xavier init of the convs (bias 0), as mmdet's ``MSDeformAttnPixelDecoder``."""
        super().init_weights()
        if self.backbone_index is not None:
            caffe2_xavier_init(self.lateral_conv.conv, bias=0)
            caffe2_xavier_init(self.output_conv.conv, bias=0)
        caffe2_xavier_init(self.mask_feature, bias=0)

    def forward(self, feats: Dict) -> Tuple[Tensor, List[Tensor]]:
        """Mask features and the decoder's multi-scale memories.

        Args:
            feats: The head's feature dict (see
                :class:`~rscotr.models.heads.base.BaseTaskHead`); uses
                ``'encoder'`` and, with ``backbone_index``, ``'backbone'``.

        Returns:
            tuple:

            - mask_features: (bs, out_channels, h, w) at the finest encoder
              level's size (stride 8), or at the fused stage's (stride 4).
            - memories: list of (bs, feat_channels, h_l, w_l) encoder levels
              at ``decoder_levels``.
        """
        memory = feats['encoder'].memory_levels()
        finest = max(memory, key=lambda m: m.shape[-2] * m.shape[-1])
        if self.backbone_index is None:
            mask_features = self.mask_feature(finest)
        else:
            fine = feats['backbone'][self.backbone_index]
            x = self.lateral_conv(fine) + F.interpolate(
                finest, size=fine.shape[-2:], mode='bilinear', align_corners=False)
            mask_features = self.mask_feature(self.output_conv(x))
        return mask_features, [memory[i] for i in self.decoder_levels]


__all__ = ['SharedEncoderPixelDecoder']
