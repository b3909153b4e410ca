"""Co-train RSCoTr (or one task through the same machinery) from a config.

Examples::

    python tools/train.py configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py
    python tools/train.py configs/demo/rscotr_demo.py --device cpu --work-dir work_dirs/demo
    bash tools/dist_train.sh configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py 8
    GPUS=16 bash tools/slurm_train.sh PARTITION rscotr \
        configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py work_dirs/rscotr

Before anything is built, the config file, ``--cfg-options``, every setting,
the data files of the datasets the run reads and the checkpoint files are
checked in one pass (:func:`rscotr.utils.config.load_config`,
:func:`rscotr.apis.checks.check_config`); the weights of ``load_from``,
``--resume-from`` and ``--load-task-pretrain`` are read once and fitted to the
model before any data loader starts.

Exit status: 0 when the run reached ``max_iters``; 2 for mistakes found before
the run starts (one ``error:`` line per problem, naming the file or key);
130 (SIGINT) or 143 (SIGTERM) when a signal stopped it after saving
``iter_<n>.pth`` and ``latest.pth`` (resume with ``--resume-from
<work_dir>/latest.pth``); 1 when a data error (a file removed or damaged
during the run, also in a loader worker) or a ``NonFiniteLossError`` stopped
it: one line on stderr, the traceback in the log file, the last checkpoint
intact.
"""
import argparse
import copy
import os.path as osp
import sys
import time
from typing import List, Optional

import mmcv
import torch
from mmcv.runner import get_dist_info, set_random_seed

from rscotr import __version__
from rscotr.apis import default_device, train_model
from rscotr.apis.checks import ConfigError, check_config
from rscotr.apis.lr_scaling import check_auto_scale_lr
from rscotr.apis.checkpoint import CheckpointError, check_task_pretrain_report, read_checkpoint
from rscotr.apis.runner import NonFiniteLossError
from rscotr.datasets.checks import data_error_line
from rscotr.models import build_model, load_task_pretrain
from rscotr.utils import get_root_logger, init_dist
from rscotr.utils.cli import load_config, parse_run_args, report_problems
from rscotr.utils.config import problem_lines
from rscotr.utils.io import atomic_write_bytes
from rscotr.utils.logger import log_traceback_to_file
# not mmcv.utils.collect_env: it calls mmcv.ops.get_compiling_cuda_version(),
# which kills the process on CUDA builds of mmcv 1.7 with current torch
from rscotr.compat.collect_env import collect_env


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Co-train RSCoTr')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder of logs and checkpoints '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume-from', help='checkpoint to resume from')
    parser.add_argument('--load-task-pretrain', metavar='PATH',
                        help='initialise from a DINO Swin-T detector checkpoint: of the '
                        'stage-1 config (configs/single_task/*stage1*), the release\'s '
                        'single-task DINO or mmdet 3.x\'s (README: Reproducing the paper)')
    parser.add_argument('--task-pretrain-head', metavar='HEAD', default='det',
                        help='the detection head that --load-task-pretrain initialises '
                        '(default: det)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the total batch over auto_scale_lr.base_batch_size '
                        '(sets auto_scale_lr.enable=True; README: GPUs)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--seed', type=int, help='random seed (default: random)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic cuDNN')
    return parse_run_args(parser, argv,
                          cfg_options_example='runner.max_iters=100 mixed_precision=bf16')


def init_seed(seed: Optional[int], device: str, distributed: bool) -> int:
    """The given seed, or a random one drawn on rank 0 and shared."""
    if seed is not None:
        return seed
    seed = int(torch.randint(2**31, (1, )).item())
    if distributed:
        from rscotr.utils import broadcast_int
        seed = broadcast_int(seed)
    return seed


def _fail(err: BaseException, code: int = 2) -> int:
    """Print every problem of ``err`` as one ``error:`` line; return ``code``."""
    return report_problems(problem_lines(err), code)


def _last_checkpoint(work_dir: str) -> str:
    latest = osp.join(work_dir, 'latest.pth')
    if not osp.exists(latest):
        return 'no checkpoint was saved yet'
    return (f'the last checkpoint {latest} (-> {osp.basename(osp.realpath(latest))}) is intact: '
            f'resume with --resume-from {latest}')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
    except ConfigError as err:
        return _fail(err)
    if args.auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=True)
    if args.resume_from:
        cfg.resume_from = args.resume_from
    try:
        # every setting, data file and checkpoint file, in one pass, before anything is built
        # (train_model checks again, with the built model)
        check_config(cfg, validate=not args.no_validate, task_pretrain=args.load_task_pretrain)
        check_auto_scale_lr(cfg)
    except ConfigError as err:
        return _fail(err)

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

    distributed = args.launcher != 'none'
    if distributed:
        init_dist(args.launcher, device=cfg.device, **cfg.get('dist_params', {}))
    rank, world_size = get_dist_info()

    seed = init_seed(args.seed if args.seed is not None else cfg.get('seed'), cfg.device,
                     distributed)
    # different ranks draw different augmentations; the iteration strategy's
    # generator is seeded by cfg.seed and drawn on rank 0 only
    set_random_seed(seed + rank, deterministic=args.deterministic)
    cfg.seed = seed
    # formatted once (mmcv formats with yapf: seconds for a full-size config), with
    # the seed, for the work dir's copy, the log and the checkpoints' meta
    config_text = cfg.pretty_text

    mmcv.mkdir_or_exist(osp.abspath(cfg.work_dir))
    if rank == 0:
        dumped = osp.join(cfg.work_dir, osp.basename(args.config))
        if dumped.endswith('.py'):
            atomic_write_bytes(dumped, config_text.encode())
        else:
            cfg.dump(dumped)
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    log_file = osp.join(cfg.work_dir, f'{timestamp}.log')
    logger = get_root_logger(log_file=log_file, log_level=cfg.get('log_level', 'INFO'))

    env_info = '\n'.join(f'{k}: {v}' for k, v in collect_env().items())
    logger.info(f'environment:\n{env_info}\nrscotr: {__version__}')
    logger.info(f'distributed: {distributed} (world size {world_size}), device: {cfg.device}')
    logger.info(f'config:\n{config_text}')
    logger.info(f'seed {seed}, deterministic: {args.deterministic}')
    meta = dict(env_info=env_info, config=config_text, seed=seed,
                exp_name=osp.basename(args.config))

    model = build_model(copy.deepcopy(cfg.model))
    model.init_weights()
    try:  # a broken or foreign checkpoint fails now, in one line, not inside the runner
        if args.load_task_pretrain:
            report = load_task_pretrain(model, read_checkpoint(args.load_task_pretrain),
                                        logger=logger, source=args.load_task_pretrain,
                                        head=args.task_pretrain_head)
            check_task_pretrain_report(args.load_task_pretrain, report, len(model.state_dict()),
                                       head=args.task_pretrain_head)
    except (CheckpointError, ValueError) as err:
        return _fail(err)

    # SIGINT/SIGTERM: the run saves a checkpoint of the iteration in progress and
    # stops; the exit status is then 128 + signal (130, 143), as a shell reports it
    try:
        # resume_from / load_from are read and fitted before any loader starts
        stopped_by = train_model(model, cfg, distributed=distributed,
                                 validate=not args.no_validate, timestamp=timestamp, meta=meta)
    except (ConfigError, CheckpointError) as err:  # before the first step
        return _fail(err)
    except NonFiniteLossError as err:
        log_traceback_to_file(logger, 'the run stopped')
        return _fail(err, code=1)
    except Exception as err:  # noqa: BLE001  (a data error, also one of a loader worker)
        line = data_error_line(err)
        if line is None:
            raise
        log_traceback_to_file(logger, f'the run stopped on a data error: {line}')
        print(f'error: {line}; the run stopped, {_last_checkpoint(cfg.work_dir)} after '
              'fixing the data', file=sys.stderr)
        return 1
    if stopped_by is not None:
        return 128 + int(stopped_by)
    return 0


if __name__ == '__main__':
    sys.exit(main())
