"""One picture of a model's predictions for all three tasks on validation images.

Panels (each task's images are picked by index, never by how well the model does):

- classification: four images spread over the validation set (so over its
  classes), each with the top-3 classes and the ground truth;
- detection: the first validation image with at least ``--min-objects``
  objects, predictions (score above ``--score-thr``) beside the ground truth;
- segmentation: the first validation patch, the prediction and the ground
  truth laid over it (pixels without a label, clutter among them under the
  5-class protocol, are darkened in the ground truth).

The model runs through :func:`rscotr.apis.inference_multitask`, as on any
image; the picture is written atomically. ``run_demo.sh`` calls it after the
evaluation::

    python tools/misc/demo_predictions.py configs/demo/rscotr_demo.py \\
        work_dirs/demo/latest.pth --out work_dirs/demo/predictions.png \\
        --metrics work_dirs/demo/metrics.json

Exit codes: 0 written, 2 bad arguments or inputs (missing checkpoint, a
task without validation data).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

#: Metrics named in the title (key, label, format), when ``--metrics`` is given.
TITLE_METRICS = (('resisc.accuracy_top-1', 'RESISC45 top-1', '{:.1f} %'),
                 ('dior.bbox_mAP', 'DIOR mAP@0.5', '{:.3f}'),
                 ('potsdam.mIoU', 'Potsdam mIoU', '{:.3f}'))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default='work_dirs/demo/predictions.png', help='PNG to write')
    parser.add_argument('--split', default='val', choices=('val', 'test'),
                        help='datasets of the config to take the images from')
    parser.add_argument('--metrics', help="test json of tools/test.py: its figures go in the "
                        "picture's title")
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections with a score above this are drawn')
    parser.add_argument('--min-objects', type=int, default=3,
                        help='detection: first image with at least this many objects')
    parser.add_argument('--panel', type=int, default=320, help='side of each panel in pixels')
    return parser.parse_args(argv)


def _entries(cfg: 'mmcv.Config', split: str) -> Dict[str, Tuple[str, Dict]]:
    """``{task: (dataset name, dataset config)}``: the first entry of each task."""
    out: Dict[str, Tuple[str, Dict]] = {}
    for name, entry in (cfg.data.get(split) or {}).items():
        if entry and entry['task'] not in out:
            out[entry['task']] = (name, entry['dataset'])
    return out


def _spread(n_items: int, count: int) -> List[int]:
    """``count`` indices spread evenly over ``range(n_items)`` (fewer if there are fewer)."""
    return sorted({int(i) for i in np.linspace(0, n_items - 1, min(count, n_items)).round()})


def cls_panel(model: 'torch.nn.Module', dataset: Any, side: int, count: int = 4) -> np.ndarray:
    """Images spread over ``dataset``, each with its top-3 classes and the ground truth."""
    from rscotr.apis import inference_multitask
    from rscotr.apis.image_io import read_image
    from rscotr.core.visualization import (dataset_image_path, draw_cls_topk, fit_to_square,
                                           tile_images)
    names = list(dataset.CLASSES)
    gt_labels = dataset.get_gt_labels()
    cell = side // 2 - 1
    drawn = []
    for idx in _spread(len(dataset), count):
        path = dataset_image_path(dataset, idx)
        top = inference_multitask(model, path, tasks=['cls'])['cls']['top5'][:3]
        img = read_image(path)
        # draw on the cell's size so that the text is legible
        img = fit_to_square(img, cell)
        drawn.append(draw_cls_topk(img, top, names[int(gt_labels[idx])]))
    return tile_images(drawn, cell, cols=2)


def det_panels(model: 'torch.nn.Module', dataset: Any, score_thr: float,
               min_objects: int) -> Tuple[str, np.ndarray, np.ndarray]:
    """(image name, predictions, ground truth) of the first image with enough objects."""
    from rscotr.apis import inference_multitask
    from rscotr.apis.image_io import read_image
    from rscotr.core.visualization import dataset_image_path, draw_det_boxes
    names = list(dataset.CLASSES)
    counts = [len(dataset.get_ann_info(i)['labels']) for i in range(len(dataset))]
    if not counts:
        raise ValueError('the detection dataset is empty')
    enough = [i for i, n in enumerate(counts) if n >= min_objects]
    idx = enough[0] if enough else int(np.argmax(counts))
    path = dataset_image_path(dataset, idx)
    img = read_image(path)
    ann = dataset.get_ann_info(idx)
    gt = [{'bbox': [float(v) for v in box], 'label': names[int(label)]}
          for box, label in zip(ann['bboxes'], ann['labels'])]
    pred = inference_multitask(model, path, tasks=['det'], score_thr=score_thr)['det']
    return (osp.basename(path), draw_det_boxes(img, pred, names),
            draw_det_boxes(img, gt, names))


def seg_panels(model: 'torch.nn.Module',
               dataset: Any) -> Tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(image name, image, prediction, ground truth) of the first patch."""
    from rscotr.apis import inference_multitask
    from rscotr.apis.image_io import read_image
    from rscotr.core.visualization import dataset_image_path, get_palette, overlay_seg
    names = list(dataset.CLASSES)
    palette = get_palette(len(names), dataset.PALETTE)
    path = dataset_image_path(dataset, 0)
    img = read_image(path)
    pred = inference_multitask(model, path, tasks=['seg'])['seg']['label_map']
    gt = np.asarray(dataset.get_gt_seg_map_by_idx(0))
    return (osp.basename(path), img, overlay_seg(img, pred, palette),
            overlay_seg(img, gt, palette))


def title_of(metrics_file: Optional[str]) -> Optional[str]:
    """One line of the test figures in ``metrics_file`` (None without a file)."""
    if not metrics_file:
        return None
    with open(metrics_file) as f:
        metrics = json.load(f)['metrics']
    parts = [f'{label} {fmt.format(metrics[key])}' for key, label, fmt in TITLE_METRICS
             if isinstance(metrics.get(key), (int, float))]
    return 'test data: ' + ', '.join(parts) if parts else None


def draw_predictions(model: 'torch.nn.Module', split: str = 'val', score_thr: float = 0.3,
                     min_objects: int = 3, side: int = 320,
                     title: Optional[str] = None) -> np.ndarray:
    """The picture: classification, detection and segmentation panels.

    Args:
        model: From :func:`rscotr.apis.init_model` (its ``cfg`` names the datasets).
        split: ``'val'`` or ``'test'``: the datasets of ``model.cfg.data`` to use.
        score_thr: Detections with a score above this are drawn.
        min_objects: Detection shows the first image with at least this many objects.
        side: Side of each panel in pixels.
        title: Line of text above the panels.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB; 3 panels per row.

    Raises:
        ValueError: The config has no ``split`` dataset for one of the
            model's tasks.
    """
    from rscotr.core.visualization import panel_grid
    from rscotr.datasets import TASKS, build_task_dataset
    entries = _entries(model.cfg, split)
    tasks = [t for t in TASKS if t in model.heads]
    missing = [t for t in tasks if t not in entries]
    if missing:
        raise ValueError(f'data.{split} has no dataset for the task(s) {missing}')
    datasets = {t: build_task_dataset(entries[t][1], t) for t in tasks}
    panels: List[Tuple[str, np.ndarray]] = []
    if 'cls' in datasets:
        panels.append((f'{entries["cls"][0]} {split}: top-3 / gt',
                       cls_panel(model, datasets['cls'], side)))
    if 'det' in datasets:
        name, pred, gt = det_panels(model, datasets['det'], score_thr, min_objects)
        panels += [(f'{entries["det"][0]} {split} {name}: predicted', pred),
                   (f'{entries["det"][0]} {split} {name}: ground truth', gt)]
    if 'seg' in datasets:
        name, img, pred, gt = seg_panels(model, datasets['seg'])
        panels += [(f'{entries["seg"][0]} {split} {name}', img),
                   (f'{entries["seg"][0]}: predicted', pred),
                   (f'{entries["seg"][0]}: ground truth', gt)]
    return panel_grid(panels, side, cols=3, title=title)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for path in (args.config, args.checkpoint, args.metrics):
        if path and not osp.isfile(path):
            print(f'error: {path} does not exist', file=sys.stderr)
            return 2
    from rscotr.apis import init_model
    from rscotr.apis.image_io import encode_png
    from rscotr.utils.io import atomic_write_bytes
    model = init_model(args.config, args.checkpoint, device='cpu')
    try:
        picture = draw_predictions(model, args.split, args.score_thr, args.min_objects,
                                   args.panel, title_of(args.metrics))
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    atomic_write_bytes(args.out, encode_png(picture, compression=9))
    print(f'predictions on {args.split} images: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
