"""The project's root logger."""
import logging
import sys
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


def log_traceback_to_file(logger: logging.Logger, message: str) -> None:
    """Log ``message`` with the traceback of the exception being handled to the
    logger's files only: the tools print one line on the console and keep the
    traceback in the log file."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None,
                               sys.exc_info())
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
