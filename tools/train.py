"""Co-train RSCoTr (or one task through the same machinery) from a config.

Examples::

    python tools/train.py configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py
    python tools/train.py configs/demo/rscotr_demo.py --device cpu --work-dir work_dirs/demo
    bash tools/dist_train.sh configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py 8

Exit status: 0 when the run reached ``max_iters``; 130 (SIGINT) or 143
(SIGTERM) when a signal stopped it after saving ``iter_<n>.pth`` and
``latest.pth`` (resume with ``--resume-from <work_dir>/latest.pth``); 1 when a
``NonFiniteLossError`` or a config/data error stopped it.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import mmcv
import torch
from mmcv import Config, DictAction
from mmcv.runner import get_dist_info, set_random_seed
from mmcv.utils import collect_env

from rscotr import __version__
from rscotr.apis import default_device, train_model
from rscotr.apis.checks import ConfigError, check_config
from rscotr.apis.checkpoint import (CheckpointError, check_resume_checkpoint,
                                   check_task_pretrain_report, read_checkpoint)
from rscotr.models import build_model, load_task_pretrain
from rscotr.utils import get_root_logger, init_dist


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Co-train RSCoTr')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder of logs and checkpoints '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume-from', help='checkpoint to resume from')
    parser.add_argument('--load-task-pretrain', metavar='PATH',
                        help='initialise from an mmdet DINO Swin-T checkpoint '
                        '(DESIGN.md section 2, task pretraining)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help='default: cuda when available')
    parser.add_argument('--seed', type=int, help='random seed (default: random)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic cuDNN')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. runner.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (pytorch: torchrun / tools/dist_train.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def init_seed(seed: Optional[int], device: str, distributed: bool) -> int:
    """The given seed, or a random one drawn on rank 0 and shared."""
    if seed is not None:
        return seed
    seed = int(torch.randint(2**31, (1, )).item())
    if distributed:
        from rscotr.utils import broadcast_int
        seed = broadcast_int(seed)
    return seed


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        check_config(cfg)  # before anything is built (train_model checks the built model)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    from mmdet.utils import setup_multi_processes
    setup_multi_processes(cfg)

    cfg.device = args.device or cfg.get('device') or default_device()
    if cfg.device == 'cuda' and not torch.cuda.is_available():
        print('error: --device cuda but no GPU is available', file=sys.stderr)
        return 2
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.resume_from:
        cfg.resume_from = args.resume_from

    distributed = args.launcher != 'none'
    if distributed:
        init_dist(args.launcher, device=cfg.device, **cfg.get('dist_params', {}))
    rank, world_size = get_dist_info()

    mmcv.mkdir_or_exist(osp.abspath(cfg.work_dir))
    if rank == 0:
        cfg.dump(osp.join(cfg.work_dir, osp.basename(args.config)))
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    log_file = osp.join(cfg.work_dir, f'{timestamp}.log')
    logger = get_root_logger(log_file=log_file, log_level=cfg.get('log_level', 'INFO'))

    env_info = '\n'.join(f'{k}: {v}' for k, v in collect_env().items())
    logger.info(f'environment:\n{env_info}\nrscotr: {__version__}')
    logger.info(f'distributed: {distributed} (world size {world_size}), device: {cfg.device}')
    logger.info(f'config:\n{cfg.pretty_text}')

    seed = init_seed(args.seed if args.seed is not None else cfg.get('seed'), cfg.device,
                     distributed)
    # different ranks draw different augmentations; the iteration strategy's
    # generator is seeded by cfg.seed and drawn on rank 0 only
    set_random_seed(seed + rank, deterministic=args.deterministic)
    cfg.seed = seed
    logger.info(f'seed {seed}, deterministic: {args.deterministic}')
    meta = dict(env_info=env_info, config=cfg.pretty_text, seed=seed,
                exp_name=osp.basename(args.config))

    model = build_model(copy.deepcopy(cfg.model))
    model.init_weights()
    try:  # a broken or foreign checkpoint fails now, in one line, not inside the runner
        if args.load_task_pretrain:
            read_checkpoint(args.load_task_pretrain)
            report = load_task_pretrain(model, args.load_task_pretrain, logger=logger)
            check_task_pretrain_report(args.load_task_pretrain, report, len(model.state_dict()))
        if cfg.get('resume_from'):
            check_resume_checkpoint(model, cfg.resume_from, logger)
        elif cfg.get('load_from'):
            read_checkpoint(cfg.load_from)
    except CheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    # SIGINT/SIGTERM: the run saves a checkpoint of the iteration in progress and
    # stops; the exit status is then 128 + signal (130, 143), as a shell reports it
    stopped_by = train_model(model, cfg, distributed=distributed,
                             validate=not args.no_validate, timestamp=timestamp, meta=meta)
    if stopped_by is not None:
        return 128 + int(stopped_by)
    return 0


if __name__ == '__main__':
    sys.exit(main())
