"""Command-line arguments shared by ``tools/train.py`` and ``tools/test.py``.

Both tools take the same device, ``--cfg-options`` and launcher arguments;
they are defined once here::

    parser = argparse.ArgumentParser()
    add_run_args(parser, cfg_options_example='runner.max_iters=100')
    args = parser.parse_args(argv)
    setup_launcher_env(args)
    cfg = load_config(args.config, args.cfg_options)   # ConfigError: one line per mistake

``load_config`` and ``ConfigError`` live in :mod:`rscotr.utils.config`.
"""
import argparse
import os

from .config import ConfigError, load_config

__all__ = ['LAUNCHERS', 'DEVICES', 'add_run_args', 'setup_launcher_env', 'load_config',
           'ConfigError']

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
