"""Run RSCoTr on one image with any of its heads and save the results.

Every head of the model runs, or those selected with ``--heads`` (head
names) or ``--tasks`` (task types: every head of the task). Writes, into
``--out-dir``, for each head ``<head>`` (the reference heads are named
``cls``, ``det``, ``seg``):

- ``<stem>_result.json``: per head, top-5 classes, boxes (class name,
  score), class pixel fractions and the path of the label map;
- ``<stem>_<head>.png`` for a detection head: the boxes and class names drawn
  on the image;
- ``<stem>_<head>.png`` and ``<stem>_<head>_labels.png`` for a segmentation
  head: the class colours blended over the image, and the label map (single
  channel, class indices).

Every file is written atomically. A config that cannot be read, a missing,
unreadable or non-image file, a checkpoint that is broken or of another
model, or an output folder that cannot be written ends with exit code 2, one
line per problem and nothing written; the inputs are checked before the model
is built.

Examples::

    python tools/inference_one_img.py CONFIG CKPT scene.jpg --tasks cls
    python tools/inference_one_img.py CONFIG CKPT scene.jpg --heads scene10 objects3
    python tools/inference_one_img.py CONFIG CKPT top_potsdam_2_13_RGBIR.tif \
        --tasks seg det --bands 4,1,2 --scale percentile --out-dir out/
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np

from rscotr.apis.image_io import (ImageReadError, atomic_write_bytes, encode_png, parse_bands,
                                  parse_scale, read_image)
from rscotr.datasets.tasks import TASKS
from rscotr.utils.cli import report_problems


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='RSCoTr inference on one image')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('image', help='JPEG / PNG / TIFF / GeoTIFF (3 or 4 bands, 8 or 16 bit)')
    parser.add_argument('--tasks', nargs='+', choices=TASKS,
                        help='run every head of these tasks (default: every head)')
    parser.add_argument('--heads', nargs='+', metavar='HEAD',
                        help='run these heads, by name (with --tasks: both selections)')
    parser.add_argument('--out-dir', default='.', help='output folder (default: .)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='keep boxes scoring above this (default 0.3)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--bands', help='1-based bands used by every task, e.g. 1,2,3 or '
                        '4,1,2 (default: the first 3 = RGB of an RGBIR file, or the '
                        "config's inference.bands.<task>)")
    parser.add_argument('--scale', default='auto',
                        help='to 8 bit: auto (16-bit data: 2-98 percentile stretch per band), '
                        'none, minmax, percentile[:LOW,HIGH] or divide:N (default auto)')
    return parser.parse_args(argv)


def build_outputs(img: np.ndarray, results: Dict, stem: str, out_dir: str, model,
                  args: argparse.Namespace) -> Dict[str, bytes]:
    """Every output file's bytes, by path (nothing is written here)."""
    from rscotr.core.visualization import draw_det_boxes, get_palette, overlay_seg
    outputs: Dict[str, bytes] = {}
    summary: Dict = dict(image=osp.abspath(args.image), image_size=list(img.shape[:2]),
                         config=osp.abspath(args.config),
                         checkpoint=osp.abspath(args.checkpoint),
                         tasks=list(results), score_thr=args.score_thr,
                         bands=args.bands, scale=args.scale,
                         head_tasks={h: model.heads[h].task for h in results})
    for head, result in results.items():
        task = model.heads[head].task
        if task == 'cls':
            summary[head] = {'top5': [{'label': name, 'score': score}
                                      for name, score in result['top5']]}
        elif task == 'det':
            summary[head] = result
            path = osp.join(out_dir, f'{stem}_{head}.png')
            drawn = draw_det_boxes(img, result, model.CLASSES[head], model.PALETTE.get(head))
            outputs[path] = encode_png(drawn)
            summary[f'{head}_image'] = osp.abspath(path)
        else:
            label_map = result['label_map']
            names = model.CLASSES[head]
            palette = get_palette(len(names), model.PALETTE.get(head))
            labels_path = osp.join(out_dir, f'{stem}_{head}_labels.png')
            overlay_path = osp.join(out_dir, f'{stem}_{head}.png')
            outputs[labels_path] = encode_png(label_map, rgb=False)
            outputs[overlay_path] = encode_png(overlay_seg(img, label_map, palette))
            summary[head] = {
                'class_fractions': result['class_fractions'],
                'label_map': osp.abspath(labels_path),
                'overlay': osp.abspath(overlay_path),
                'classes': list(names),
                'palette': palette.tolist(),
            }
    json_path = osp.join(out_dir, f'{stem}_result.json')
    outputs[json_path] = (json.dumps(summary, indent=2) + '\n').encode()
    return outputs


def print_summary(img: np.ndarray, results: Dict, written: List[str],
                  args: argparse.Namespace, model) -> None:
    print(f'{args.image}: {img.shape[1]}x{img.shape[0]}')
    for head, result in results.items():
        task = model.heads[head].task
        if task == 'cls':
            top = ', '.join(f'{name} {score:.3f}' for name, score in result['top5'])
            print(f'  {head}: {top}')
        elif task == 'det':
            counts: Dict[str, int] = {}
            for det in result:
                counts[det['label']] = counts.get(det['label'], 0) + 1
            detail = ', '.join(f'{n} {name}' for name, n in sorted(counts.items(),
                                                                   key=lambda kv: -kv[1]))
            print(f'  {head}: {len(result)} boxes above {args.score_thr}'
                  + (f' ({detail})' if detail else ''))
        else:
            fractions = sorted(result['class_fractions'].items(), key=lambda kv: -kv[1])
            print(f'  {head}: ' + ', '.join(f'{name} {100 * f:.1f}%' for name, f in fractions
                                            if f > 0))
    for path in written:
        print(f'  wrote {path}')


def check_inputs(args: argparse.Namespace):
    """Every input checked before the model is built, every problem listed.

    Returns:
        tuple: (config, image as read for drawing, problems: one line each).
    """
    from rscotr.apis.checkpoint import CheckpointError, check_checkpoint_file
    from rscotr.utils.config import ConfigError, load_config, problem_lines
    from rscotr.utils.io import output_dir_problem
    problems: List[str] = []
    cfg = img = None
    try:
        parse_bands(args.bands)
        parse_scale(args.scale)
    except ValueError as e:
        problems.append(str(e))
    options_ok = not problems
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        problems += problem_lines(e)
    if cfg is not None and args.heads:
        from rscotr.models.multitask.rscotr import head_tasks_of_config
        heads = head_tasks_of_config(dict((cfg.get('model') or {}).get('heads') or {}))
        unknown = [h for h in args.heads if h not in heads]
        if unknown:
            problems.append(f'--heads {" ".join(unknown)}: no such head in {args.config}; '
                            'heads: ' + ', '.join(f'{n} ({t})' for n, t in heads.items()))
    try:
        check_checkpoint_file(args.checkpoint)
    except CheckpointError as e:
        problems.append(f'cannot load checkpoint {e}')
    if options_ok:
        try:  # also read for drawing
            img = read_image(args.image, bands=args.bands, scale=args.scale)
        except ImageReadError as e:
            problems.append(f'cannot read image {e}')
    problem = output_dir_problem(args.out_dir)
    if problem:
        problems.append(f'--out-dir {args.out_dir}: {problem}; choose a folder you can write to')
    return cfg, img, problems


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # config, checkpoint file, image and output folder: a bad one fails fast
    cfg, img, problems = check_inputs(args)
    if problems:
        return report_problems(problems)

    from rscotr.apis.checkpoint import CheckpointError
    from rscotr.apis.inference import inference_multitask, init_model
    try:
        model = init_model(cfg, args.checkpoint, device=args.device)
        # the API reads the file itself: per-task bands of the config
        # (inference.bands) apply when --bands is not given
        selection = (list(args.heads or []) + list(args.tasks or [])) or None
        results = inference_multitask(model, args.image, tasks=selection,
                                      score_thr=args.score_thr, bands=args.bands,
                                      scale=args.scale)
    except CheckpointError as e:
        return report_problems([f'cannot load checkpoint {e}'])
    except (KeyError, ValueError, RuntimeError) as e:
        return report_problems([str(e).strip('"\'')])

    stem = osp.splitext(osp.basename(args.image))[0]
    outputs = build_outputs(img, results, stem, args.out_dir, model, args)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    try:
        for path, data in outputs.items():
            atomic_write_bytes(path, data)
            written.append(path)
    except OSError as e:
        for path in written:  # all or nothing
            os.remove(path)
        return report_problems([f'cannot write {args.out_dir}: {e}'])
    print_summary(img, results, written, args, model)
    return 0


if __name__ == '__main__':
    sys.exit(main())
