"""Command-line arguments and error reports shared by the tools.

``tools/train.py`` and ``tools/test.py`` take the same device,
``--cfg-options`` and launcher arguments; they are defined once here::

    parser = argparse.ArgumentParser()
    args = parse_run_args(parser, argv, cfg_options_example='runner.max_iters=100')
    cfg = load_config(args.config, args.cfg_options)   # ConfigError: one line per mistake

Every tool reports the problems of its inputs the same way, one ``error:``
line each on stderr and exit status 2 (:func:`report_problems`).
``load_config`` and ``ConfigError`` live in :mod:`rscotr.utils.config`.
"""
import argparse
import os
import sys
from typing import Iterable, List, Optional

from .config import ConfigError, load_config

__all__ = ['LAUNCHERS', 'DEVICES', 'add_run_args', 'setup_launcher_env', 'parse_run_args',
           'report_problems', 'load_config', 'ConfigError']

#: ``--launcher`` choices: one process; torchrun (tools/dist_*.sh); srun (tools/slurm_*.sh).
LAUNCHERS = ('none', 'pytorch', 'slurm')
DEVICES = ('cuda', 'cpu')


def add_run_args(parser: argparse.ArgumentParser, cfg_options_example: str) -> None:
    """Add ``--device``, ``--cfg-options``, ``--launcher`` and the hidden ``--local_rank``.

    Args:
        parser: The tool's parser.
        cfg_options_example: A ``key=value`` shown in the help of ``--cfg-options``.
    """
    from mmcv import DictAction
    parser.add_argument('--device', choices=DEVICES, help='default: cuda when available')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override config keys, e.g. {cfg_options_example}')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher: none (one process), pytorch (torchrun, '
                        'tools/dist_*.sh) or slurm (srun, tools/slurm_*.sh)')
    # torch.distributed.launch passes --local_rank / --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def setup_launcher_env(args: argparse.Namespace) -> None:
    """Export ``LOCAL_RANK`` from ``--local_rank`` for the legacy launcher
    (torchrun and Slurm set it themselves: see :func:`rscotr.utils.dist.init_dist`)."""
    if args.launcher == 'pytorch' and 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def parse_run_args(parser: argparse.ArgumentParser, argv: Optional[List[str]],
                   cfg_options_example: str) -> argparse.Namespace:
    """Add the run arguments (:func:`add_run_args`), parse ``argv`` and set up the
    launcher's environment (:func:`setup_launcher_env`)."""
    add_run_args(parser, cfg_options_example=cfg_options_example)
    args = parser.parse_args(argv)
    setup_launcher_env(args)
    return args


def report_problems(problems: Iterable[str], code: int = 2) -> int:
    """Print every problem as one ``error:`` line on stderr; return ``code``
    (2: the inputs cannot work)."""
    for problem in problems:
        print(f'error: {problem}', file=sys.stderr)
    return code
