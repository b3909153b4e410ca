from .base import BaseTaskHead
from .cls_head import MultiLevelClsHead, SingleLevelClsHead
from .dino_head import DINOHead
from .mask2former_head import Mask2FormerSegHead, MaskedAttentionSegHead
from .per_pixel_seg_head import PerPixelMask2FormerHead

__all__ = ['BaseTaskHead', 'SingleLevelClsHead', 'MultiLevelClsHead', 'DINOHead',
           'MaskedAttentionSegHead', 'Mask2FormerSegHead', 'PerPixelMask2FormerHead']
