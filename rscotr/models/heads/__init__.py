from .base import BaseTaskHead

__all__ = ['BaseTaskHead']
from .cls_head import MultiLevelClsHead, SingleLevelClsHead  # noqa: E402

__all__ += ['SingleLevelClsHead', 'MultiLevelClsHead']
from .dino_head import DINOHead  # noqa: F401
from .mask2former_head import Mask2FormerSegHead  # noqa: F401
