"""The project's root logger."""
import logging
from typing import Optional

from mmcv.utils import get_logger

LOGGER_NAME = 'rscotr'


def get_root_logger(log_file: Optional[str] = None,
                    log_level: int = logging.INFO) -> logging.Logger:
    """The ``rscotr`` logger (module loggers ``rscotr.*`` propagate to it).

    The first call configures it (a stream handler, plus a file handler on
    rank 0 when ``log_file`` is given); later calls return it unchanged.

    Args:
        log_file: Log file written by rank 0.
        log_level: Level of the logger; other ranks log errors only.
    """
    return get_logger(LOGGER_NAME, log_file=log_file, log_level=log_level)
