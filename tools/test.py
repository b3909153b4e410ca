"""Evaluate a checkpoint on the test split of every dataset of the selected tasks.

For every selected dataset of ``data.test`` it runs the multi-task test loop
(:mod:`rscotr.apis.test`), evaluates with the dataset's own ``evaluate`` and
prints a summary table and, for class-wise metrics, a per-class table
(detection's per-class AP table comes from mmdet's evaluation log). All
metrics (``<dataset>.<metric>`` keys) go to ``<work_dir>/test_<timestamp>.json``
together with the config and checkpoint used.

Examples::

    python tools/test.py CONFIG CKPT                       # every dataset
    python tools/test.py CONFIG CKPT --tasks cls seg --out results.pkl
    python tools/test.py CONFIG CKPT --tasks det --show-dir vis/ --show-score-thr 0.5
    bash tools/dist_test.sh CONFIG CKPT 8 --tasks det      # distributed
    GPUS=8 bash tools/slurm_test.sh PARTITION JOB CONFIG CKPT --tasks det   # Slurm

``--out`` pickles ``{dataset name: per-image results}`` (segmentation as
label maps); ``--show-dir`` saves one picture per test image under
``<show_dir>/<dataset>/``.
"""
import argparse
import json
import os.path as osp
import pickle
import sys
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from rscotr.datasets.tasks import TASKS
from rscotr.utils.cli import parse_run_args, report_problems
from rscotr.utils.io import first_line


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate RSCoTr on the test datasets')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--tasks', nargs='+', metavar='TASK_OR_DATASET',
                        help='test datasets to evaluate: task types (cls, det, seg: every '
                        'dataset of the task) and/or dataset names of data.test (default: '
                        'every test dataset whose head the model has)')
    parser.add_argument('--work-dir', help='folder of the metrics json '
                        '(default: work_dir of the config, else work_dirs/<config name>)')
    parser.add_argument('--out', help='pickle the raw results ({dataset: results}) here')
    parser.add_argument('--show-dir', help='save pictures of the results here')
    parser.add_argument('--show-score-thr', type=float, default=0.3,
                        help='boxes above this score are drawn (default 0.3)')
    parser.add_argument('--tmpdir', help='folder for collecting results of several processes')
    parser.add_argument('--gpu-collect', action='store_true',
                        help='collect results over the process group instead of files')
    return parse_run_args(parser, argv, cfg_options_example='data.test.resisc.samples_per_gpu=64')


# ---------------------------------------------------------------------- progress
class ProgressDataLoader:
    """A test data loader that advances a progress bar (on rank 0) as batches arrive.

    Stands in for the ``DataLoader`` of a :class:`~rscotr.datasets.TaskLoader`:
    the test loop iterates it and reads ``batch_sampler`` and ``dataset``.
    """

    def __init__(self, dataloader, name: str, world_size: int, enabled: bool):
        self._loader = dataloader
        self.name = name
        self.world_size = world_size
        self.enabled = enabled

    def __getattr__(self, item):
        return getattr(self._loader, item)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        import mmcv
        bar = None
        if self.enabled:
            print(f'{self.name}: {len(self._loader.dataset)} images', flush=True)
            bar = mmcv.ProgressBar(len(self._loader.dataset))
        for indices, batch in zip(self._loader.batch_sampler, self._loader):
            # counted when loaded: the test loop stops at the sampler's end and
            # does not come back for the last batch
            if bar is not None:
                for _ in range(min(len(indices) * self.world_size,
                                   bar.task_num - bar.completed)):
                    bar.update()
                if bar.completed >= bar.task_num:
                    sys.stdout.write('\n')
            yield batch


def with_progress(loaders: Sequence, rank: int, world_size: int) -> List:
    from rscotr.datasets.multitask_loader import TaskLoader
    return [TaskLoader(loader.name, loader.task,
                       ProgressDataLoader(loader.dataloader, loader.name, world_size, rank == 0),
                       eval_cfg=loader.eval_cfg, head=loader.head) for loader in loaders]


# ---------------------------------------------------------------------- tables
def _number(value) -> Optional[float]:
    if isinstance(value, (bool, str)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def fmt(row):
        return '| ' + ' | '.join(str(v).ljust(w) for v, w in zip(row, widths)) + ' |'

    return '\n'.join([line, fmt(header), line] + [fmt(r) for r in rows] + [line])


def dataset_tables(name: str, task: str, metrics: Dict, class_names: Sequence[str]) -> str:
    """Summary table, plus a per-class table for ``<metric>.<class>`` keys and
    class-length arrays."""
    prefix = name + '.'
    own = OrderedDict((k[len(prefix):], v) for k, v in metrics.items() if k.startswith(prefix))
    classes = [str(c) for c in class_names]
    summary, per_class = [], OrderedDict()
    for key, value in own.items():
        metric, _, cls_name = key.partition('.')
        if cls_name and cls_name in classes:
            per_class.setdefault(metric, {})[cls_name] = value
        elif isinstance(value, (list, tuple, np.ndarray)) and len(value) == len(classes) \
                and len(classes) > 1:
            per_class[key] = dict(zip(classes, value))
        elif _number(value) is not None:
            summary.append((key, f'{_number(value):.4f}'))
        elif isinstance(value, str) and 'copypaste' not in key:
            summary.append((key, value))
    text = [f'{name} ({task})', format_table(summary, ('metric', 'value'))]
    if per_class:
        columns = list(per_class)
        rows = [[c] + [f'{float(per_class[m][c]):.4f}' if _number(per_class[m].get(c))
                       is not None else '-' for m in columns] for c in classes]
        text += ['per class:', format_table(rows, ['class'] + columns)]
    return '\n'.join(text)


# ---------------------------------------------------------------------- outputs
def _finite(value):
    """NaN / infinite floats -> None (strict JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def show_results(loaders: Sequence, results: Dict[str, list], show_dir: str,
                 score_thr: float) -> None:
    """One picture per image: ``<show_dir>/<dataset>/<image stem>.png``."""
    import mmcv

    from rscotr.apis.image_io import ImageReadError, read_image, write_png_atomic
    from rscotr.apis.inference import format_cls_result, format_det_result
    from rscotr.core.visualization import dataset_image_path, draw_task_result
    for loader in loaders:
        dataset = loader.dataset
        names = list(dataset.CLASSES)
        palette = getattr(dataset, 'PALETTE', None)
        gt_labels = dataset.get_gt_labels() if loader.task == 'cls' else None
        out_dir = osp.join(show_dir, loader.name)
        print(f'{loader.name}: saving pictures to {out_dir}')
        bar = mmcv.ProgressBar(len(results[loader.name]))
        for idx, result in enumerate(results[loader.name]):
            path = dataset_image_path(dataset, idx)
            try:
                img = read_image(path)
            except ImageReadError as e:
                print(f'\nwarning: skipping {e}', file=sys.stderr)
                continue
            gt = None
            if loader.task == 'cls':
                result = format_cls_result(result, names)
                gt = names[int(gt_labels[idx])]
            elif loader.task == 'det':
                result = format_det_result(result, names, score_thr)
            drawn = draw_task_result(loader.task, img, result, names, palette, gt_label=gt)
            stem = osp.splitext(osp.basename(path))[0]
            write_png_atomic(osp.join(out_dir, f'{stem}.png'), drawn)
            bar.update()
        sys.stdout.write('\n')


def check_inputs(args: argparse.Namespace):
    """Options, config, checkpoint file, ``--tasks`` and the files of the selected test
    datasets, checked before anything is built.

    Returns:
        tuple: (config, loader entries of the selected test datasets, problems:
        one line each).
    """
    import torch

    from rscotr.apis.checkpoint import CheckpointError, check_checkpoint_file
    from rscotr.datasets import parse_loader_cfgs
    from rscotr.datasets.checks import check_dataset_files
    from rscotr.utils.config import ConfigError, load_config, problem_lines
    from rscotr.utils.io import output_dir_problem
    problems: List[str] = []
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        problems.append(f'--out {args.out}: must be a .pkl or .pickle file')
    if args.device == 'cuda' and not torch.cuda.is_available():
        problems.append('--device cuda but no GPU is available; use --device cpu')
    try:
        check_checkpoint_file(args.checkpoint)
    except CheckpointError as err:
        problems.append(str(err))
    for option, folder in (('--work-dir', args.work_dir), ('--show-dir', args.show_dir),
                           ('--out', osp.dirname(args.out) if args.out else None)):
        problem = output_dir_problem(folder or '.') if folder is not None else None
        if problem:
            problems.append(f'{option} {folder}: {problem}; choose a folder you can write to')
    try:
        cfg = load_config(args.config, args.cfg_options)
    except ConfigError as err:
        return None, [], problems + problem_lines(err)
    test_cfg = (cfg.get('data') or {}).get('test')
    if not test_cfg:
        return cfg, [], problems + [f'{args.config}: the config has no data.test datasets; add '
                                    'data.test (README: Testing a checkpoint)']
    from rscotr.models.multitask.rscotr import head_tasks_of_config
    try:
        heads = head_tasks_of_config(dict((cfg.get('model') or {}).get('heads') or {}))
        all_entries = parse_loader_cfgs(test_cfg)
    except (KeyError, ValueError, TypeError) as err:
        return cfg, [], problems + [f'model.heads / data.test: {first_line(err)}']
    # the test datasets whose head the model has
    usable = [e for e in all_entries if e.get('head', e['task']) in heads]
    names = [e['name'] for e in all_entries]
    head_tasks = sorted(set(t for t in heads.values() if t))
    wanted = list(args.tasks or [])
    unknown = [t for t in wanted if t not in TASKS and t not in names]
    if unknown:
        problems.append(f'--tasks {" ".join(unknown)}: neither tasks ({list(TASKS)}) nor test '
                        f'datasets of {args.config} ({names})')
    missing = [t for t in wanted if t in TASKS and t not in head_tasks]
    if missing:
        problems.append(f'--tasks {" ".join(missing)}: the model of {args.config} has no head '
                        f'for task(s) {missing} (heads: {dict(heads)}); choose --tasks among '
                        f'{head_tasks} or dataset names')
    no_head = [e['name'] for e in all_entries if e['name'] in wanted and e not in usable]
    if no_head:
        problems.append(f'--tasks {" ".join(no_head)}: the model has no head for these '
                        f'datasets (heads: {list(heads)})')
    entries = [e for e in usable if not wanted or e['task'] in wanted or e['name'] in wanted]
    if not entries and not (missing or unknown or no_head):
        problems.append(f'--tasks {" ".join(wanted)}: {args.config} has no test dataset of '
                        f'task(s) {wanted} in data.test; add one or choose other --tasks')
    for entry in entries:
        problems += check_dataset_files(dict(entry['dataset']), entry['task'],
                                        f'data.test.{entry["name"]}.dataset')
    return cfg, entries, problems


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import mmcv
    import torch
    from mmcv.runner import get_dist_info

    from rscotr.apis import multitask_multi_gpu_test, multitask_single_gpu_test
    from rscotr.apis.checkpoint import CheckpointError, load_model_checkpoint
    from rscotr.core.evaluation import evaluate_multitask
    from rscotr.datasets import build_task_loaders
    from rscotr.datasets.checks import DataError, data_error_line
    from rscotr.models import build_model
    from rscotr.utils import get_root_logger, init_dist
    from rscotr.utils.io import atomic_write_bytes
    from rscotr.utils.logger import log_traceback_to_file
    from rscotr.compat.parallel import wrap_model

    # every input is checked before anything is built, every problem listed
    cfg, entries, problems = check_inputs(args)
    if problems:
        return report_problems(problems)
    from mmdet.utils import setup_multi_processes
    setup_multi_processes(cfg)
    device = args.device or cfg.get('device') or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg.model)
    tasks = [t for t in TASKS if any(e['task'] == t for e in entries)]

    distributed = args.launcher != 'none'
    if distributed:
        init_dist(args.launcher, device=device, **cfg.get('dist_params', {}))
    rank, world_size = get_dist_info()

    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    if rank == 0:
        mmcv.mkdir_or_exist(osp.abspath(work_dir))
    logger = get_root_logger(log_file=osp.join(work_dir, f'test_{timestamp}.log'),
                             log_level=cfg.get('log_level', 'INFO'))

    try:
        load_model_checkpoint(model, args.checkpoint, logger=logger)
    except CheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    try:
        loaders = build_task_loaders(entries, train=False, dist=distributed,
                                     seed=cfg.get('seed'))
    except (DataError, ValueError, KeyError, OSError) as err:  # annotations that do not parse
        log_traceback_to_file(logger, 'the test datasets cannot be built')
        print(f'error: the test datasets cannot be built: {first_line(err)}', file=sys.stderr)
        return 2
    loaders = with_progress(loaders, rank, world_size)
    model = wrap_model(model, device, distributed)
    # label maps (not per-image statistics) are needed to save or draw segmentation results
    pre_eval = not (args.out or args.show_dir)
    try:
        if distributed:
            results = multitask_multi_gpu_test(model, loaders, tmpdir=args.tmpdir,
                                               gpu_collect=args.gpu_collect,
                                               pre_eval=pre_eval)
        else:
            results = multitask_single_gpu_test(model, loaders, pre_eval=pre_eval)
    except Exception as err:  # noqa: BLE001
        line = data_error_line(err)
        if line is None:
            raise
        log_traceback_to_file(logger, 'the test stopped on a data error')
        print(f'error: {line}', file=sys.stderr)
        return 1
    if rank != 0:
        return 0

    if args.out:
        atomic_write_bytes(args.out, pickle.dumps(dict(results),
                                                  protocol=pickle.HIGHEST_PROTOCOL))
        print(f'raw results of {list(results)} saved to {args.out}')

    metrics: Dict = OrderedDict()
    for loader in loaders:
        # mmdet logs its per-class AP table; the other tables are printed below
        eval_logger = logger if loader.task == 'det' else 'silent'
        metrics.update(evaluate_multitask(results, [loader], logger=eval_logger))
    for loader in loaders:
        print()
        print(dataset_tables(loader.name, loader.task, metrics, loader.dataset.CLASSES))

    json_path = osp.join(work_dir, f'test_{timestamp}.json')
    summary = dict(config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                   timestamp=timestamp, tasks=tasks, cfg_options=args.cfg_options,
                   datasets={loader.name: dict(task=loader.task, images=len(loader.dataset))
                             for loader in loaders},
                   metrics=_finite(metrics),
                   # the resolved config (bases merged, --cfg-options applied)
                   config_dict=_finite({key: cfg[key] for key in cfg.keys()}))
    atomic_write_bytes(json_path, (json.dumps(summary, indent=2, default=_json_default,
                                              allow_nan=False)
                                   + '\n').encode())
    print(f'\nmetrics of {list(results)} saved to {json_path}')

    if args.show_dir:
        show_results(loaders, results, args.show_dir, args.show_score_thr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
