from .base import BaseTaskHead

__all__ = ['BaseTaskHead']
from .cls_head import MultiLevelClsHead, SingleLevelClsHead  # noqa: E402

__all__ += ['SingleLevelClsHead', 'MultiLevelClsHead']
