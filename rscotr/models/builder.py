"""The one model registry of RSCoTr and its build helpers.

``MODELS`` is a child of mmcv's root model registry, so configs may reference
upstream modules by scope (``type='mmdet.SwinTransformer'``,
``type='mmcls.LabelSmoothLoss'``) next to our own (``type='RSCoTr'``).
"""
from mmcv.cnn import MODELS as MMCV_MODELS
from mmcv.utils import Registry

MODELS = Registry('models', parent=MMCV_MODELS, scope='rscotr')


def _import_upstream() -> None:
    """Import upstream model packages so their registries are reachable by scope."""
    import mmcls.models  # noqa: F401
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401


def build_model(cfg, default_args=None):
    """Build any model config of the project (the multi-task model or a part)."""
    _import_upstream()
    return MODELS.build(cfg, default_args=default_args)
