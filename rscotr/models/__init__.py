from .builder import BACKBONES, HEADS, LOSSES, MODELS, NECKS, build_head, build_model
from . import heads, layers, multitask  # noqa: F401  (register modules)

__all__ = ['MODELS', 'BACKBONES', 'NECKS', 'HEADS', 'LOSSES', 'build_model', 'build_head']
from .multitask import load_task_pretrain  # noqa: E402

__all__ += ['load_task_pretrain']
