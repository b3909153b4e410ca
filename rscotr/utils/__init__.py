from .dist import broadcast_int, get_dist_info, init_dist, is_distributed
from .logger import get_root_logger

__all__ = ['get_root_logger', 'init_dist', 'is_distributed', 'broadcast_int', 'get_dist_info']
