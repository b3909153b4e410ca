"""Run RSCoTr on a large scene (GeoTIFF) tile by tile and write georeferenced results.

Writes, into ``--out-dir`` (``<stem>`` = the scene's file name without extension):

- ``<stem>_seg.tif``: the label map (uint8 class indices, colour table), with
  the scene's transform and CRS;
- ``<stem>_det.geojson``: the boxes as polygons in the scene's CRS, with class
  name, score and pixel box;
- ``<stem>_cls.tif`` + ``<stem>_cls.json``: the top-1 scene class of every
  tile as a coarse map, its class names and scores;
- ``<stem>_scene.json``: tiles, timings, counts and files (written last);
- ``--preview PNG``: a picture of the outputs.

See :mod:`rscotr.apis.scene` for the tiling, blending and merging. A config
that cannot be read, a missing or unreadable scene, a checkpoint that is
broken or of another model, or an output folder that cannot be written ends
with exit code 2 and one line per problem; the inputs are checked before the
model is built.

Examples::

    python tools/inference_scene.py CONFIG CKPT top_potsdam_2_13_RGBIR.tif \
        --tasks seg det --tile 512 --overlap 128 --bands 4,1,2 --out-dir out/
    python tools/inference_scene.py CONFIG CKPT scene.tif --device cuda --preview out/scene.png
    python tools/inference_scene.py CONFIG CKPT top_potsdam_2_13_RGBIR.tif \
        --cfg-options inference.bands.seg=4,1,2   # IRRG for seg, RGB for cls and det
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

from mmcv import DictAction

from rscotr.apis.image_io import ImageReadError, parse_bands, parse_scale
from rscotr.datasets.tasks import TASKS
from rscotr.utils.cli import report_problems


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='RSCoTr tiled inference on a large scene')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('scene', help='GeoTIFF (or any raster GDAL reads): RGB, IRRG or RGBIR, '
                        '8 or 16 bit')
    parser.add_argument('--tasks', nargs='+', choices=TASKS,
                        help='run the head of these tasks (default: every head)')
    parser.add_argument('--heads', nargs='+', metavar='HEAD',
                        help='run these heads, by name, at most one per task (outputs '
                        '<stem>_<head>.tif / .geojson)')
    parser.add_argument('--tile', type=int, default=512, help='tile side in pixels (default 512)')
    parser.add_argument('--overlap', type=int, default=128,
                        help='pixels shared by neighbouring tiles (default 128)')
    parser.add_argument('--bands', help='1-based bands used by every task, e.g. 1,2,3 or 4,1,2 '
                        "(default: the first 3, or the config's inference.bands.<task>)")
    parser.add_argument('--scale', default='auto',
                        help='to 8 bit: auto (16-bit data: 2-98 percentile stretch per band, '
                        'statistics of the whole scene), none, minmax, percentile[:LOW,HIGH] '
                        'or divide:N (default auto)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='keep boxes scoring above this (default 0.3)')
    parser.add_argument('--nms-iou', type=float, default=0.5,
                        help='IoU of the class-wise NMS across tiles (default 0.5)')
    parser.add_argument('--window', default='cosine', choices=('cosine', 'linear', 'flat'),
                        help='segmentation blending window (default cosine)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--threads', type=int,
                        help="torch CPU threads (default: torch's; use 1 on a busy machine)")
    parser.add_argument('--out-dir', default='.', help='output folder (default: .)')
    parser.add_argument('--preview', help='also write a PNG picture of the outputs here')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, e.g. inference.bands.seg=4,1,2 (IRRG for the '
                        'seg head only, of an RGBIR scene)')
    return parser.parse_args(argv)


def print_summary(summary: Dict) -> None:
    scene, tiles = summary['scene'], summary['tiles']
    if not scene['georeferenced']:
        where = 'pixel coordinates (no georeferencing)'
    else:
        where = scene['crs'] or 'georeferenced, no CRS'
    print(f'{scene["path"]}: {scene["width"]}x{scene["height"]}, {scene["bands"]} band(s) '
          f'{scene["dtype"]}, {where}')
    print(f'  {tiles["count"]} tiles ({tiles["rows"]}x{tiles["cols"]}) in '
          f'{summary["timings_s"]["total"]:.1f} s, peak RSS {summary["peak_rss_mb"]:.0f} MB')
    counts = summary['counts']
    if 'seg' in counts:
        fractions = sorted(counts['seg']['fractions'].items(), key=lambda kv: -kv[1])
        print('  seg: ' + ', '.join(f'{n} {100 * f:.1f}%' for n, f in fractions if f > 0))
    if 'det' in counts:
        det = counts['det']
        detail = ', '.join(f'{n} {name}' for name, n in det['per_class'].items())
        print(f'  det: {det["kept"]} boxes after merging {det["after_score_thr"]} tile boxes'
              + (f' ({detail})' if detail else ''))
    if 'cls' in counts:
        top = sorted(counts['cls'].items(), key=lambda kv: -kv[1])[:5]
        print('  cls: ' + ', '.join(f'{name} {n}' for name, n in top) + ' (tiles)')
    for key, path in summary['files'].items():
        print(f'  wrote {path}')


def check_inputs(args: argparse.Namespace):
    """Every input checked before the model is built, every problem listed.

    Returns:
        tuple: (config with ``--cfg-options``, problems: one line each).
    """
    from rscotr.apis.checkpoint import CheckpointError, check_checkpoint_file
    from rscotr.apis.scene import TileGrid, open_scene
    from rscotr.utils.config import ConfigError, load_config, problem_lines
    from rscotr.utils.io import output_dir_problem
    problems: List[str] = []
    cfg = None
    try:
        parse_bands(args.bands)
        parse_scale(args.scale)
        TileGrid(1, 1, args.tile, args.overlap)
    except ValueError as e:
        problems.append(str(e))
    try:
        cfg = load_config(args.config, args.cfg_options)
    except ConfigError as e:
        problems += problem_lines(e)
    try:
        check_checkpoint_file(args.checkpoint)
    except CheckpointError as e:
        problems.append(f'cannot load checkpoint {e}')
    try:
        open_scene(args.scene).close()
    except ImageReadError as e:
        problems.append(f'cannot read scene {e}')
    for option, folder in (('--out-dir', args.out_dir),
                           ('--preview', osp.dirname(args.preview) if args.preview else None)):
        problem = output_dir_problem(folder or '.') if folder is not None else None
        if problem:
            problems.append(f'{option} {folder}: {problem}; choose a folder you can write to')
    return cfg, problems


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # options, config, checkpoint file, scene and output folders: a bad one fails fast
    cfg, problems = check_inputs(args)
    if problems:
        return report_problems(problems)

    import torch

    from rscotr.apis.checkpoint import CheckpointError
    from rscotr.apis.inference import init_model
    from rscotr.apis.scene import inference_scene
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = init_model(cfg, args.checkpoint, device=args.device)
        selection = (list(args.heads or []) + list(args.tasks or [])) or None
        summary = inference_scene(model, args.scene, args.out_dir, tasks=selection,
                                  tile=args.tile, overlap=args.overlap, bands=args.bands,
                                  scale=args.scale, score_thr=args.score_thr,
                                  nms_iou=args.nms_iou, window=args.window,
                                  progress=not args.no_progress, preview=args.preview)
    except ImageReadError as e:
        return report_problems([f'cannot read scene {e}'])
    except CheckpointError as e:
        return report_problems([f'cannot load checkpoint {e}'])
    except (KeyError, ValueError, RuntimeError, OSError) as e:
        return report_problems([str(e).strip('"\'')])
    print_summary(summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
