"""Plot the confusion matrix of scene classification on the cls test dataset.

The second argument is a checkpoint (the cls test dataset is run through the
model) or a results pickle of ``tools/test.py --out`` (``{dataset: results}``).

Examples::

    python tools/analysis/plot_confusion_matrix.py CONFIG work_dirs/x/latest.pth --out cm.png
    python tools/analysis/plot_confusion_matrix.py CONFIG results.pkl --out cm.png --counts
"""
import argparse
import os.path as osp
import pickle
import sys
from typing import List, Optional

import numpy as np


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmcv import DictAction
    parser = argparse.ArgumentParser(description='Confusion matrix of the cls test dataset')
    parser.add_argument('config', help='config file')
    parser.add_argument('source', metavar='CKPT|RESULTS.pkl',
                        help='checkpoint, or results pickle of tools/test.py --out')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--dataset', help='name of the cls test dataset '
                        '(default: the first cls entry of data.test)')
    parser.add_argument('--counts', action='store_true',
                        help='show image counts instead of row percentages')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for name, path in (('config', args.config), ('checkpoint/results', args.source)):
        if not osp.isfile(path):
            return _fail(f'{name} file not found: {path}')
    from mmcv import Config

    from rscotr.core.visualization.plots import confusion_matrix, plot_confusion_matrix
    from rscotr.datasets import build_task_loaders, parse_loader_cfgs

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    entries = [e for e in parse_loader_cfgs((cfg.get('data') or {}).get('test') or {})
               if e['task'] == 'cls']
    if args.dataset:
        entries = [e for e in entries if e['name'] == args.dataset]
    if not entries:
        return _fail('no classification dataset in data.test'
                     + (f' named {args.dataset!r}' if args.dataset else ''))
    loader = build_task_loaders(entries[:1], train=False)[0]
    dataset = loader.dataset

    if args.source.endswith(('.pkl', '.pickle')):
        with open(args.source, 'rb') as f:
            all_results = pickle.load(f)
        if not isinstance(all_results, dict) or loader.name not in all_results:
            keys = list(all_results) if isinstance(all_results, dict) else type(all_results)
            return _fail(f'{args.source} has no results of {loader.name!r} (has {keys})')
        results = all_results[loader.name]
    else:
        import torch

        from rscotr.apis import multitask_single_gpu_test
        from rscotr.apis.checkpoint import CheckpointError, load_model_checkpoint
        from rscotr.models import build_model
        from rscotr.compat.parallel import wrap_model
        if args.device == 'cuda' and not torch.cuda.is_available():
            return _fail('--device cuda but no GPU is available')
        model = build_model(cfg.model)
        if 'cls' not in model.heads:
            return _fail('the model has no cls head')
        try:
            load_model_checkpoint(model, args.source)
        except CheckpointError as err:
            return _fail(f'cannot load checkpoint {err}')
        model = wrap_model(model, args.device)
        results = multitask_single_gpu_test(model, [loader])[loader.name]

    if len(results) != len(dataset):
        return _fail(f'{len(results)} results for the {len(dataset)} images of {loader.name}')
    pred = np.array([int(np.argmax(r)) for r in results])
    gt = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    names = list(dataset.CLASSES)
    matrix = confusion_matrix(gt, pred, len(names))
    accuracy = 100.0 * np.trace(matrix) / max(matrix.sum(), 1)
    plot_confusion_matrix(matrix, names, args.out, normalize=not args.counts,
                          title=f'{loader.name}: top-1 accuracy {accuracy:.2f}% '
                          f'({len(gt)} images)')
    print(f'{loader.name}: {len(gt)} images, top-1 accuracy {accuracy:.2f}%')
    print(f'confusion matrix saved to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
