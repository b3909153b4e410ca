"""The scene driver: the model on one tile, the tile loop and the run summary.

:func:`inference_scene` reads the scene tile by tile (:mod:`.reading`), runs
the model on each tile (:func:`run_tile`), blends the segmentation scores
(:mod:`.tiling`), merges the boxes (:mod:`.detections`) and writes every
output under a temporary name (:mod:`.writing`), renaming all of them when
the run succeeded.
"""
import json
import os
import os.path as osp
import resource
import time
from contextlib import ExitStack
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...utils.io import PathLike, atomic_output, atomic_write_bytes
from ...utils.logger import get_root_logger
from ..image_io import BandsArg, parse_bands, parse_scale
from .detections import concat_tile_detections, merge_tile_detections, tile_detections
from .preview import render_scene_preview
from .reading import SceneReader, is_georeferenced, open_scene
from .tiling import WINDOWS, SegBlender, TileGrid
from .writing import LabelWriter, crs_info, detections_geojson, open_label_raster, write_class_map

__all__ = ['inference_scene', 'run_tile']



def run_tile(model: nn.Module, images: Dict[str, np.ndarray], tasks: Sequence[str],
             filename: Optional[str] = None) -> Dict[str, Any]:
    """Raw results of the heads named ``tasks`` on one tile, from the model's
    multi-task test.

    The heads that take the same input run in one
    :meth:`~rscotr.models.multitask.RSCoTr.simple_test_tasks` call with
    ``scores=True``: each head's ``simple_test_scores``, so that segmentation
    gives the per-class scores that the tiles are blended with.

    Args:
        model: From :func:`~rscotr.apis.inference.init_model`.
        images: ``{head: (H, W, 3) uint8}`` in band (RGB) order.
        tasks: Names of the heads to run.
        filename: Recorded in the metas.

    Returns:
        dict: By head name, by the head's task: ``cls``: (num_classes,)
        softmax scores; ``det``: per class (n, 5)
        arrays (x1, y1, x2, y2, score) in tile pixels; ``seg``:
        (num_classes [+ 1], H, W) float32 scores (numpy; the extra channel of
        a head with ``has_no_class_score``).

    Raises:
        TypeError: A segmentation head whose ``simple_test_scores`` gives no
            per-class score maps.
    """
    from ..inference import prepare_task_inputs
    module = getattr(model, 'module', model)
    device = next(module.parameters()).device
    out: Dict[str, Any] = {}
    with torch.no_grad():
        for group in prepare_task_inputs(module, images, tasks, filename):
            results = module.simple_test_tasks(group.img[None].to(device),
                                               [dict(group.img_meta)], group.tasks,
                                               rescale=True, scores=True)
            out.update((task, per_image[0]) for task, per_image in results.items())
    for head in out:
        if module.heads[head].task != 'seg':
            continue
        scores = out[head]
        if not isinstance(scores, torch.Tensor) or scores.dim() != 3:
            raise TypeError(f'{type(module.heads[head]).__name__}.simple_test_scores gives '
                            f'{getattr(scores, "shape", type(scores).__name__)} per image: '
                            'scene inference blends (num_classes, H, W) scores')
        out[head] = scores.float().cpu().numpy()
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def inference_scene(model: nn.Module,
                    scene_path: PathLike,
                    out_dir: PathLike,
                    tasks: Optional[Sequence[str]] = None,
                    tile: int = 512,
                    overlap: int = 128,
                    bands: BandsArg = None,
                    scale: str = 'auto',
                    score_thr: float = 0.3,
                    nms_iou: float = 0.5,
                    cover_thr: Optional[float] = 0.7,
                    window: str = 'cosine',
                    progress: bool = True,
                    gdal_cache_mb: int = 64,
                    preview: Optional[PathLike] = None) -> Dict[str, Any]:
    """Run ``tasks`` on a large scene tile by tile and write georeferenced results.

    Args:
        model: From :func:`~rscotr.apis.inference.init_model`.
        scene_path: GeoTIFF (or any raster GDAL reads; tiled or striped
            GeoTIFFs are read window by window): RGB, IRRG or RGBIR, 8 or 16 bit.
        out_dir: Output folder (created).
        tasks: Heads by name, or task types selecting their heads (default:
            every head; see :func:`~rscotr.apis.inference.check_tasks`), at
            most one head per task: the outputs are one raster / GeoJSON per
            task, named after the head (``<stem>_<head>.tif``).
        tile: Tile side in pixels.
        overlap: Pixels shared by neighbouring tiles.
        bands: 1-based band numbers for every task (``'4,1,2'``); default
            the config's ``inference.bands.<task>`` if the scene has them,
            else the first 3.
        scale: To uint8 (see :class:`SceneScaler`).
        score_thr: Boxes scoring above this are kept.
        nms_iou: IoU threshold of the class-wise NMS across tiles.
        cover_thr: Coverage above which a box cut by a tile edge is dropped
            (see :func:`merge_tile_detections`); None disables the step.
        window: Blending window of the segmentation (``cosine``, ``linear``, ``flat``).
        progress: Show a tqdm progress bar over tiles (stderr).
        gdal_cache_mb: GDAL block cache during the run (MB).
        preview: Also write a PNG preview of the outputs there
            (:func:`render_scene_preview`).

    Returns:
        dict: The summary written to ``<stem>_scene.json``.

    Raises:
        ImageReadError: The scene cannot be read, or lacks a requested band.
        ValueError: Bad options. KeyError: A task without head.
    """
    import rasterio

    from ..inference import check_tasks, resolve_class_names, task_bands_for
    start = time.perf_counter()
    module = getattr(model, 'module', model)
    heads = check_tasks(module, tasks)
    roles: Dict[str, str] = {}  # task -> the head that does it
    for head in heads:
        task = module.heads[head].task
        if task in roles:
            raise ValueError(f'the scene tool writes one output per task: the heads '
                             f'{roles[task]!r} and {head!r} are both {task!r} heads; choose '
                             'one with --heads')
        roles[task] = head
    tasks = list(roles)  # task types from here on; the model runs the heads
    parse_bands(bands)
    parse_scale(scale)
    TileGrid(1, 1, tile, overlap)  # option errors before any file access
    if window not in WINDOWS:
        raise ValueError(f'unknown blending window {window!r}; use one of {WINDOWS}')
    scene_path = os.fspath(scene_path)
    out_dir = os.fspath(out_dir)
    names = getattr(module, 'CLASSES', None)
    palettes = getattr(module, 'PALETTE', None) or {}
    if not isinstance(names, dict) or any(h not in names for h in heads):
        names, palettes = resolve_class_names(module.cfg, module)
    names = {t: names[h] for t, h in roles.items()}
    palettes = {t: palettes.get(h) for t, h in roles.items()}
    logger = get_root_logger()
    timings = dict(stats=0.0, read=0.0, model=0.0, seg_blend=0.0, det_merge=0.0, write=0.0)
    with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb)):
        src = open_scene(scene_path)
        count = src.count
        src.close()
        task_bands = task_bands_for(module.cfg, heads, bands, np.empty((1, 1, count), np.uint8))
        t0 = time.perf_counter()
        reader = SceneReader(scene_path, task_bands, scale)
        timings['stats'] = time.perf_counter() - t0
        try:
            # every output is written to a temporary file; all are moved to
            # their names when the run succeeds, all removed when it fails
            with ExitStack() as outputs:
                summary = _run_scene(module, reader, out_dir, roles, tile, overlap, score_thr,
                                     nms_iou, cover_thr, window, progress, names, palettes,
                                     timings, outputs)
        finally:
            reader.close()
        summary['options'].update(bands={t: list(reader.bands[h]) for t, h in roles.items()},
                                  scaling=reader.scaler.describe())
        if preview is not None:
            t0 = time.perf_counter()
            render_scene_preview(summary, preview)
            summary['files']['preview'] = osp.abspath(os.fspath(preview))
            timings['write'] += time.perf_counter() - t0
    timings['total'] = time.perf_counter() - start
    summary['timings_s'] = {k: round(v, 3) for k, v in timings.items()}
    summary['timings_s']['per_tile'] = round(timings['total'] / max(summary['tiles']['count'], 1),
                                             4)
    summary['peak_rss_mb'] = round(_peak_rss_mb(), 1)
    atomic_write_bytes(summary['files']['summary'],
                       (json.dumps(summary, indent=2) + '\n').encode())
    logger.info(f'inference_scene: {summary["tiles"]["count"]} tiles in '
                f'{timings["total"]:.1f} s; wrote {summary["files"]["summary"]}')
    return summary


def _run_scene(module: nn.Module, reader: SceneReader, out_dir: str, roles: Dict[str, str],
               tile: int, overlap: int, score_thr: float, nms_iou: float,
               cover_thr: Optional[float], window: str, progress: bool,
               names: Dict, palettes: Dict, timings: Dict[str, float],
               outputs: ExitStack) -> Dict[str, Any]:
    """The tile loop and the outputs (temporary files entered into ``outputs``).

    ``roles``: ``{task: head name}``; ``names`` and ``palettes`` by task.
    """
    tasks = list(roles)
    from tqdm import tqdm

    from ...core.visualization import get_palette
    src = reader.src
    grid = TileGrid(reader.height, reader.width, tile, overlap)
    georef = is_georeferenced(src)
    stem = osp.splitext(osp.basename(reader.path))[0]
    os.makedirs(out_dir, exist_ok=True)
    files = {'summary': osp.abspath(osp.join(out_dir, f'{stem}_scene.json'))}
    seg_blender = seg_writer = seg_dst = None
    if 'seg' in tasks:
        seg_path = osp.join(out_dir, f'{stem}_{roles["seg"]}.tif')
        tmp = outputs.enter_context(atomic_output(seg_path))
        seg_names = names['seg']
        seg_palette = get_palette(len(seg_names), palettes.get('seg'))
        seg_dst, block_rows = open_label_raster(tmp, src, georef, grid, seg_names, seg_palette)
        seg_writer = LabelWriter(seg_dst, block_rows)
        extra = int(bool(getattr(module.heads[roles['seg']], 'has_no_class_score', False)))
        seg_blender = SegBlender(grid, len(seg_names) + extra, seg_writer, window,
                                 no_class_index=len(seg_names) if extra else None)
        files['seg'] = osp.abspath(seg_path)
    det_parts: List[Dict[str, np.ndarray]] = []
    raw_boxes = 0
    cls_index = cls_score = None
    if 'cls' in tasks:
        cls_index = np.zeros((grid.rows, grid.cols), np.uint8 if len(names['cls']) <= 256
                             else np.uint16)
        cls_score = np.zeros((grid.rows, grid.cols), np.float32)
    try:
        bar = tqdm(total=len(grid), unit='tile', desc=osp.basename(reader.path),
                   disable=not progress, leave=False)
        for row in range(grid.rows):
            for col in range(grid.cols):
                x0, y0, w, h = grid.window(row, col)
                t0 = time.perf_counter()
                images = reader.read(x0, y0, w, h, pad_to=grid.tile)
                t1 = time.perf_counter()
                out = run_tile(module, images, list(roles.values()), reader.path)
                out = {module.heads[head].task: value for head, value in out.items()}
                t2 = time.perf_counter()
                timings['read'] += t1 - t0
                timings['model'] += t2 - t1
                if 'seg' in out:
                    seg_blender.add(out['seg'][:, :h, :w], row, col)
                if 'det' in out:
                    part = tile_detections(out['det'], (x0, y0, w, h),
                                           grid.inner_edges(row, col), score_thr)
                    raw_boxes += sum(len(b) for b in out['det'])
                    part['tiles'] = np.full(len(part['scores']), row * grid.cols + col, np.int64)
                    det_parts.append(part)
                if 'cls' in out:
                    scores = np.asarray(out['cls']).ravel()
                    cls_index[row, col] = int(scores.argmax())
                    cls_score[row, col] = float(scores.max())
                timings['seg_blend'] += time.perf_counter() - t2
                bar.update(1)
            if seg_blender is not None:
                t0 = time.perf_counter()
                seg_blender.flush(grid.ys[row + 1] if row + 1 < grid.rows else grid.height)
                timings['seg_blend'] += time.perf_counter() - t0
        bar.close()
        if seg_dst is not None:
            seg_writer.close()
            seg_dst.close()
            seg_dst = None
    finally:
        if seg_dst is not None:
            seg_dst.close()

    summary: Dict[str, Any] = {
        'scene': dict(path=osp.abspath(reader.path), width=grid.width, height=grid.height,
                      bands=src.count, dtype=src.dtypes[0], nodata=src.nodata,
                      georeferenced=georef, coordinates='map' if georef else 'pixel',
                      transform=list(src.transform)[:6] if georef else None, **crs_info(src)),
        'options': dict(tasks=list(tasks), heads=dict(roles), tile=grid.tile,
                        overlap=grid.overlap, step=grid.step, score_thr=score_thr,
                        nms_iou=nms_iou, cover_thr=cover_thr, window=window),
        'tiles': dict(rows=grid.rows, cols=grid.cols, count=len(grid)),
        'counts': {},
        'files': files,
    }
    if not georef:
        summary['scene']['note'] = ('the scene has no georeferencing: outputs are in pixel '
                                    'coordinates (identity transform, no CRS)')
    if seg_blender is not None:
        counts = seg_writer.counts[:len(names['seg'])]
        total = max(int(counts.sum()), 1)
        summary['counts']['seg'] = {
            'pixels': {n: int(c) for n, c in zip(names['seg'], counts)},
            'fractions': {n: round(float(c) / total, 6) for n, c in zip(names['seg'], counts)},
            'accumulator_mb': round(seg_blender.nbytes / 2**20, 1)}
    t0 = time.perf_counter()
    if 'det' in tasks:
        det_path = osp.join(out_dir, f'{stem}_{roles["det"]}.geojson')
        cat = concat_tile_detections(det_parts)
        keep = merge_tile_detections(cat['boxes'], cat['scores'], cat['labels'], cat['tiles'],
                                     cat['cut'], nms_iou, cover_thr)
        geojson, per_class = detections_geojson(cat, keep, names['det'], src, georef, grid)
        summary['counts']['det'] = {
            'after_score_thr': int(len(cat['scores'])),
            'cut_by_tile_edges': int(cat['cut'].sum()), 'kept': int(len(keep)),
            'per_class': per_class, 'raw': raw_boxes}
        timings['det_merge'] += time.perf_counter() - t0
        tmp = outputs.enter_context(atomic_output(det_path))
        with open(tmp, 'w') as f:
            json.dump(geojson, f)
        files['det'] = osp.abspath(det_path)
    t0 = time.perf_counter()
    if 'cls' in tasks:
        cls_names = names['cls']
        cls_path = osp.join(out_dir, f'{stem}_{roles["cls"]}.tif')
        side_path = osp.join(out_dir, f'{stem}_{roles["cls"]}.json')
        palette = get_palette(len(cls_names), palettes.get('cls'))
        write_class_map(outputs.enter_context(atomic_output(cls_path)),
                        outputs.enter_context(atomic_output(side_path)), cls_index, cls_score,
                        cls_names, palette, grid, src, georef)
        hist = np.bincount(cls_index.ravel().astype(np.int64), minlength=len(cls_names))
        summary['counts']['cls'] = {cls_names[i]: int(c) for i, c in enumerate(hist) if c}
        files['cls'] = osp.abspath(cls_path)
        files['cls_meta'] = osp.abspath(side_path)
    timings['write'] += time.perf_counter() - t0
    return summary
