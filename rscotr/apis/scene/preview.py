"""A PNG picture of the outputs of scene inference, read back from its files."""
import json
from typing import Any, Dict, Optional

import numpy as np

from ...utils.io import PathLike, atomic_write_bytes
from ..image_io import encode_png
from .reading import SceneReader
from .writing import open_raster

__all__ = ['render_scene_preview']



def render_scene_preview(summary: Dict[str, Any], out_png: PathLike, max_side: int = 640,
                         max_boxes: int = 50, colors: Optional[int] = None) -> np.ndarray:
    """A PNG of the outputs of :func:`inference_scene`, read back from its files.

    Panels, side by side, each at most ``max_side`` pixels a side: the scene
    with the boxes (the best ``max_boxes``), the segmentation colours over the
    scene, and the coarse class map over the scene (each cell on its
    footprint; the most frequent classes named). Memory: the subsampled scene
    and label map only.

    Args:
        summary: Returned by :func:`inference_scene`.
        out_png: PNG path (written atomically).
        max_side: Panel size limit.
        max_boxes: Boxes drawn, best first.
        colors: Quantise the PNG to this many colours (Pillow's adaptive
            palette; much smaller files), None for full colour.

    Returns:
        np.ndarray: The (H, W, 3) uint8 RGB picture (also written to ``out_png``).
    """
    import cv2
    from rasterio.enums import Resampling

    from ...core.visualization import (draw_det_boxes, draw_text_box, label_map_to_color,
                                      overlay_seg)
    files = summary['files']
    opts = summary['options']
    bands = opts.get('bands') or {}
    task_bands = {t: bands.get(t) for t in opts['tasks']}
    scaling = opts.get('scaling') or {}
    reader = SceneReader(summary['scene']['path'], task_bands, scaling.get('scale', 'auto'))
    try:
        rgb, factor = reader.read_overview(max_side)
    finally:
        reader.close()
    h, w = rgb.shape[:2]
    panels = []
    if 'det' in files:
        with open(files['det']) as f:
            geojson = json.load(f)
        dets = [{'bbox': [v / factor for v in ft['properties']['bbox_px']],
                 'label': ft['properties']['label'], 'score': ft['properties']['score']}
                for ft in geojson['features'][:max_boxes]]
        drawn = draw_det_boxes(rgb, dets, geojson['rscotr']['classes'], thickness=1,
                               font_scale=0.35)
        shown = f' (best {len(dets)} shown)' if len(dets) < len(geojson['features']) else ''
        panels.append((drawn, f'det: {len(geojson["features"])} boxes{shown}'))
    else:
        panels.append((rgb, 'scene'))
    if 'seg' in files:
        with open_raster(files['seg']) as seg:
            labels = seg.read(1, out_shape=(h, w), resampling=Resampling.nearest)
            cmap = seg.colormap(1)
        palette = np.array([cmap[i][:3] for i in range(max(cmap) + 1)], dtype=np.uint8)
        panels.append((overlay_seg(rgb, labels, palette, alpha=0.6), 'seg'))
    if 'cls' in files:
        with open(files['cls_meta']) as f:
            meta = json.load(f)
        with open_raster(files['cls']) as cls_src:
            cells = cls_src.read(1)
        palette = np.asarray(meta['palette'], np.uint8)
        colours = label_map_to_color(cells, palette)
        g = meta['grid']
        half = g['overlap'] / 2.0
        # each cell on its footprint: the central step x step square of its tile
        rects = {(r, c): tuple(int(round((v * g['step'] + half) / factor))
                               for v in (c, r, c + 1, r + 1))
                 for r in range(g['rows']) for c in range(g['cols'])}
        canvas = rgb.copy()
        for (r, c), (x1, y1, x2, y2) in rects.items():
            cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1),
                          tuple(int(v) for v in colours[r, c]), -1)
        canvas = cv2.addWeighted(rgb, 0.4, canvas, 0.6, 0.0)
        for x1, y1, x2, y2 in rects.values():
            cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 0), 1)
        top = sorted(summary['counts'].get('cls', {}).items(), key=lambda kv: -kv[1])[:3]
        for i, (name, _) in enumerate(top):
            draw_text_box(canvas, name, (2, h - (3 - i) * 14 - 2),
                          palette[meta['classes'].index(name)], 0.35, 1)
        panels.append((canvas, f'cls: {g["rows"]}x{g["cols"]} tiles'))
    gap = 4
    out = np.full((h + 18, len(panels) * (w + gap) - gap, 3), 255, np.uint8)
    for i, (panel, title) in enumerate(panels):
        x = i * (w + gap)
        out[18:, x:x + w] = panel
        cv2.putText(out, title, (x + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    if colors is None:
        data = encode_png(out, compression=9)
    else:
        import io

        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(out).quantize(colors=int(colors)).save(buf, format='PNG', optimize=True)
        data = buf.getvalue()
    atomic_write_bytes(out_png, data)
    return out
