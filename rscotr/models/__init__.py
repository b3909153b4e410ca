from . import heads, layers, multitask  # noqa: F401  (register modules)
from .builder import MODELS, build_model
from .multitask import load_task_pretrain

__all__ = ['MODELS', 'build_model', 'load_task_pretrain']
