"""Mask2Former pixel decoder on top of the shared deformable encoder.

mmdet's ``MSDeformAttnPixelDecoder`` owns a deformable encoder of its own. In
RSCoTr the segmentation head instead receives the output of the *shared*
encoder (run by the model with the head's own positional encoding and level
embedding), so this pixel decoder only keeps the FPN part: the finest
encoder level is fused with Swin stage 1 into the stride-4 mask features.
"""
from typing import Dict, List, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule, caffe2_xavier_init
from mmcv.runner import BaseModule
from torch import Tensor, nn

from ..builder import MODELS


@MODELS.register_module()
class SharedEncoderPixelDecoder(BaseModule):
    """FPN-style pixel decoder fed by the shared encoder's memory.

    ``forward`` reads ``feats['encoder'].memory_levels()`` (the encoded neck
    levels, strides 8/16/32/64, ``feat_channels`` each) and
    ``feats['backbone'][backbone_index]`` (Swin stage 1, ``in_channels``,
    stride 4). The stride-4 map is ``output_conv(lateral_conv(stage1) +
    upsample(memory[0]))``; a 1x1 conv turns it into the mask features.

    Args:
        in_channels: Channels of the fused backbone stage (96 for Swin-T).
        feat_channels: Channels of the encoder memory (256).
        out_channels: Channels of the mask features (256).
        decoder_levels: Indices into the encoder levels handed to the
            transformer decoder, coarse to fine; (2, 1, 0) = strides 32/16/8.
        backbone_index: Backbone stage fused at stride 4.
        norm_cfg: Norm of the lateral and output convs (GroupNorm 32).
        act_cfg: Activation of the output conv (ReLU).
        init_cfg: mmcv init config.
    """

    def __init__(self,
                 in_channels: int = 96,
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 decoder_levels: Sequence[int] = (2, 1, 0),
                 backbone_index: int = 0,
                 norm_cfg: dict = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.decoder_levels = tuple(decoder_levels)
        self.backbone_index = backbone_index
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
        """Xavier init of the convs, as mmdet's ``MSDeformAttnPixelDecoder``."""
        super().init_weights()
        caffe2_xavier_init(self.lateral_conv.conv, bias=0)
        caffe2_xavier_init(self.output_conv.conv, bias=0)
        caffe2_xavier_init(self.mask_feature, bias=0)

    def forward(self, feats: Dict) -> Tuple[Tensor, List[Tensor]]:
        """Mask features and the decoder's multi-scale memories.

        Args:
            feats: The head's feature dict (see
                :class:`~rscotr.models.heads.base.BaseTaskHead`); uses
                ``'backbone'`` and ``'encoder'``.

        Returns:
            tuple:

            - mask_features: (bs, out_channels, H/4, W/4).
            - memories: list of (bs, feat_channels, h_l, w_l) encoder levels
              at ``decoder_levels`` (coarse to fine by default).
        """
        memory = feats['encoder'].memory_levels()
        fine = feats['backbone'][self.backbone_index]
        x = self.lateral_conv(fine) + F.interpolate(
            memory[0], size=fine.shape[-2:], mode='bilinear', align_corners=False)
        mask_features = self.mask_feature(self.output_conv(x))
        return mask_features, [memory[i] for i in self.decoder_levels]


__all__ = ['SharedEncoderPixelDecoder']
