"""Peak memory of tiled scene inference (rscotr.apis.scene) against scene size.

For every ``--sizes`` entry a synthetic RGB GeoTIFF scene of that side is
generated block by block (so generation never holds the scene in memory),
then a *fresh process* loads the model, runs one tile (the model's own peak),
runs :func:`~rscotr.apis.scene.inference_scene` on the scene and reports its
peak resident set size (``getrusage``). A table of scene size, tiles, time,
peak RSS and the RSS added by the scene is printed (and saved as JSON).

The model is the tiny demo RSCoTr (``configs/demo/rscotr_demo.py``) with
initialised, untrained weights unless ``--checkpoint`` is given: memory and
speed do not depend on training. ``--preview`` also runs all three tasks on
a generated Potsdam-style RGBIR tile (:func:`rscotr.datasets.demo_data.make_potsdam`)
and writes a PNG of the outputs (the README picture; use the checkpoint of
``make demo`` for a meaningful one).

Examples::

    python tools/analysis/scene_memory.py --sizes 1024 4096 8192 20000x2048 2048x20000
    python tools/analysis/scene_memory.py --sizes 1024 --preview docs/scene_example.png \
        --checkpoint work_dirs/demo/latest.pth
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import numpy as np

from rscotr.datasets.tasks import TASKS

DEFAULT_CONFIG = 'configs/demo/rscotr_demo.py'
#: Scene colours (RGB) of the generator.
GRASS, SOIL, ASPHALT, WATER = (88, 128, 64), (150, 126, 92), (112, 112, 116), (46, 72, 110)
ROOFS = ((176, 84, 64), (206, 206, 210), (150, 60, 50))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=_size, nargs='+', default=[(1024, 1024), (4096, 4096)],
                        help='scene sizes: SIDE (square) or WIDTHxHEIGHT')
    parser.add_argument('--tasks', nargs='+', default=['seg', 'det'],
                        choices=TASKS)
    parser.add_argument('--tile', type=int, default=512)
    parser.add_argument('--overlap', type=int, default=128)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--checkpoint', help='default: initialised, untrained weights')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default 1: fastest for the tiny model)')
    parser.add_argument('--work-dir', default='/tmp/rscotr_scene_memory',
                        help='scenes, outputs and the results JSON')
    parser.add_argument('--keep-scenes', action='store_true',
                        help='keep the generated scenes (they are deleted after each run)')
    parser.add_argument('--preview', help='also write a PNG of the outputs of all three tasks '
                        'on a generated Potsdam-style RGBIR tile here (segmentation on bands '
                        '4,1,2 = IRRG, as the demo model is trained)')
    parser.add_argument('--preview-size', type=int, default=1536, help='side of that tile')
    parser.add_argument('--preview-panel', type=int, default=400,
                        help='side of each panel of the picture')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--seg-bands', help=argparse.SUPPRESS)
    parser.add_argument('--child', nargs=2, metavar=('SCENE', 'OUT_DIR'), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _size(text: str) -> Tuple[int, int]:
    width, _, height = text.lower().partition('x')
    try:
        return int(width), int(height or width)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not SIDE or WIDTHxHEIGHT') from None


# ---------------------------------------------------------------------- scene generator
def _hash(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random integers in [0, 2^16) of integer grids."""
    v = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ (salt * 83492791)
    v = (v ^ (v >> 13)) * 1274126177
    return (v ^ (v >> 16)) & 0xFFFF


def scene_block(x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8 of a synthetic town at scene pixels [y0, y0+h) x [x0, x0+w):
    fields, water, roads every 640 px, and houses in urban districts. A pure
    function of the coordinates, so blocks join seamlessly."""
    y, x = np.mgrid[y0:y0 + h, x0:x0 + w]
    district = _hash(x // 640, y // 640, 1) % 4  # 0, 1 urban, 2 fields, 3 park / water
    img = np.empty((h, w, 3), np.float32)
    img[:] = SOIL
    img[district == 2] = GRASS
    park = district == 3
    img[park] = GRASS
    pond = park & (((x % 640) - 320)**2 + ((y % 640) - 320)**2 < 150**2)
    img[pond] = WATER
    urban = district <= 1
    img[urban] = ASPHALT
    # houses: one per 80-px lot in urban districts
    lx, ly = x // 80, y // 80
    lot = _hash(lx, ly, 2)
    bw, bh = 24 + lot % 36, 24 + (lot >> 6) % 36
    ox, oy = x - lx * 80 - 8, y - ly * 80 - 8
    house = urban & (ox >= 0) & (oy >= 0) & (ox < bw) & (oy < bh) & (lot % 7 != 0)
    roofs = np.array(ROOFS, np.float32)[(lot >> 12) % 3]
    img[house] = roofs[house]
    # trees along the fields
    tree = (district == 2) & (((x % 40) - 20)**2 + ((y % 40) - 20)**2 < 36) & (lot % 3 == 0)
    img[tree] = (40, 90, 40)
    road = ((x % 640) < 20) | ((y % 640) < 20)
    img[road] = (80, 80, 84)
    img += (_hash(x, y, 3) % 17).astype(np.float32)[..., None] - 8  # texture
    return np.clip(img, 0, 255).astype(np.uint8)


def make_scene(path: str, width: int, height: int, block: int = 512) -> str:
    """Write a synthetic georeferenced RGB GeoTIFF (UTM 32N, 0.05 m) block by block."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    profile = dict(driver='GTiff', width=width, height=height, count=3, dtype='uint8',
                   crs='EPSG:32632', transform=from_origin(368000.0, 5807000.0, 0.05, 0.05),
                   tiled=True, blockxsize=256, blockysize=256, photometric='RGB',
                   BIGTIFF='IF_SAFER')
    with rasterio.open(path, 'w', **profile) as dst:
        for y0 in range(0, height, block):
            for x0 in range(0, width, block):
                w, h = min(block, width - x0), min(block, height - y0)
                dst.write(scene_block(x0, y0, w, h).transpose(2, 0, 1),
                          window=Window(x0, y0, w, h))
    return path


# ---------------------------------------------------------------------- model
def untrained_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Initialised weights of ``config``'s model (as the tests' tiny checkpoint)."""
    import torch
    from mmcv import Config

    from rscotr.models import build_model
    torch.manual_seed(seed)
    model = build_model(Config.fromfile(config).model)
    model.init_weights()
    for head in model.heads.values():
        if not getattr(head, '_is_init', True):
            head.init_weights()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save({'state_dict': model.state_dict(), 'meta': {'seed': seed, 'untrained': True}},
               path)
    return path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> None:
    """Runs in a fresh process: model, one warm-up tile, then the scene."""
    import torch

    from rscotr.apis import inference_scene, init_model
    from rscotr.apis.scene import render_scene_preview
    torch.set_num_threads(args.threads)
    scene, out_dir = args.child
    options = {'inference.bands.seg': [int(b) for b in args.seg_bands.split(',')]} \
        if args.seg_bands else None
    model = init_model(args.config, args.checkpoint, cfg_options=options)
    rss_model = _rss_mb()
    warm = osp.join(out_dir, 'warmup', 'warmup.tif')
    make_scene(warm, args.tile, args.tile)
    inference_scene(model, warm, osp.dirname(warm), tasks=args.tasks, tile=args.tile,
                    overlap=args.overlap, progress=False)
    rss_tile = _rss_mb()
    start = time.perf_counter()
    summary = inference_scene(model, scene, out_dir, tasks=args.tasks, tile=args.tile,
                              overlap=args.overlap, score_thr=args.score_thr, progress=False)
    seconds = time.perf_counter() - start
    if args.preview:
        render_scene_preview(summary, args.preview, max_side=args.preview_panel, max_boxes=25,
                             colors=128)
    print(json.dumps(dict(rss_model_mb=rss_model, rss_model_and_tile_mb=rss_tile,
                          peak_rss_mb=_rss_mb(), seconds=seconds, tiles=summary['tiles'],
                          counts=summary['counts'], timings=summary['timings_s'])))


def run_child(args: argparse.Namespace, scene: str, out_dir: str, tasks: List[str],
              preview: str = None, seg_bands: str = None) -> Dict:
    cmd = [sys.executable, osp.abspath(__file__), '--child', scene, out_dir, '--config',
           args.config, '--checkpoint', args.checkpoint, '--tile', str(args.tile),
           '--overlap', str(args.overlap), '--threads', str(args.threads),
           '--score-thr', str(args.score_thr), '--tasks', *tasks]
    if preview:
        cmd += ['--preview', preview, '--preview-panel', str(args.preview_panel)]
    if seg_bands:
        cmd += ['--seg-bands', seg_bands]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'child failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    os.makedirs(args.work_dir, exist_ok=True)
    if args.checkpoint is None:
        args.checkpoint = untrained_checkpoint(args.config,
                                               osp.join(args.work_dir, 'untrained.pth'))
    rows = []
    print(f'tasks {" ".join(args.tasks)}, tile {args.tile}, overlap {args.overlap}, '
          f'{args.threads} torch threads, model {args.config}')
    header = (f'{"scene":>13} {"MPix":>6} {"GeoTIFF MB":>10} {"tiles":>6} {"time s":>7} '
              f'{"s/tile":>6} {"model MB":>8} {"+1 tile MB":>10} {"peak MB":>8} '
              f'{"scene adds MB":>13} {"strip MB":>8}')
    print(header)
    for width, height in args.sizes:
        name = f'{width}x{height}'
        scene = osp.join(args.work_dir, f'scene_{name}.tif')
        t0 = time.perf_counter()
        make_scene(scene, width, height)
        gen = time.perf_counter() - t0
        result = run_child(args, scene, osp.join(args.work_dir, f'out_{name}'), args.tasks)
        size_mb = osp.getsize(scene) / 2**20
        if not args.keep_scenes:
            os.remove(scene)
        strip = result['counts'].get('seg', {}).get('accumulator_mb', 0.0)
        row = dict(width=width, height=height, mpix=width * height / 1e6, geotiff_mb=size_mb,
                   generate_s=gen, **result)
        rows.append(row)
        print(f'{name:>13} {row["mpix"]:>6.1f} {size_mb:>10.0f} '
              f'{result["tiles"]["count"]:>6} {result["seconds"]:>7.1f} '
              f'{result["seconds"] / result["tiles"]["count"]:>6.2f} '
              f'{result["rss_model_mb"]:>8.0f} {result["rss_model_and_tile_mb"]:>10.0f} '
              f'{result["peak_rss_mb"]:>8.0f} '
              f'{result["peak_rss_mb"] - result["rss_model_and_tile_mb"]:>13.0f} '
              f'{strip:>8.1f}', flush=True)
    with open(osp.join(args.work_dir, 'scene_memory.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    if args.preview:
        from rscotr.datasets.demo_data import make_potsdam
        root = osp.join(args.work_dir, 'preview', 'Potsdam')
        make_potsdam(root, seed=1, tile_size=args.preview_size, train_tiles=(),
                     val_tiles=('2_13', ))
        scene = osp.join(root, '4_Ortho_RGBIR', 'top_potsdam_2_13_RGBIR.tif')
        result = run_child(args, scene, osp.join(args.work_dir, 'preview', 'out'),
                           list(TASKS), preview=osp.abspath(args.preview),
                           seg_bands='4,1,2')
        side = args.preview_size
        print(f'preview of a generated {side}x{side} RGBIR tile ({result["tiles"]["count"]} '
              f'tiles, {result["seconds"]:.1f} s) -> {args.preview} '
              f'({osp.getsize(args.preview) / 1024:.0f} KB)')
    print(f'results: {osp.join(args.work_dir, "scene_memory.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
