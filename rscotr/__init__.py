"""RSCoTr: co-training Transformer for remote-sensing scene classification,
object detection and semantic segmentation."""
from .version import __version__

__all__ = ['__version__']
