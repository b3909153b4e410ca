"""Georeferenced outputs of scene inference: label GeoTIFF, boxes as GeoJSON, class map.

Every output is opened on a temporary path (the caller's
:func:`~rscotr.utils.io.atomic_output`) and takes the scene's transform and
CRS when the scene is georeferenced, else pixel coordinates (identity
transform, no CRS).
"""
import json
import os.path as osp
import warnings
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .tiling import TileGrid

__all__ = [
    'LABEL_BLOCK', 'LabelWriter', 'box_polygon', 'crs_info', 'colormap', 'open_raster',
    'open_label_raster', 'detections_geojson', 'write_class_map'
]

#: Rows per block of the label GeoTIFF (and rows written at once).
LABEL_BLOCK = 256


class LabelWriter:
    """Writes label rows to band 1 of a rasterio dataset in whole blocks of rows,
    and counts the labels."""

    def __init__(self, dst, block_rows: int = LABEL_BLOCK):
        self.dst = dst
        self.block_rows = block_rows
        self.next_row = 0
        self.pending: List[np.ndarray] = []
        self.counts = np.zeros(256, dtype=np.int64)

    def __call__(self, y0: int, labels: np.ndarray) -> None:
        if y0 != self.next_row + sum(len(p) for p in self.pending):
            raise RuntimeError('label rows must arrive in order')
        self.counts += np.bincount(labels.ravel(), minlength=256)
        self.pending.append(labels)
        buffered = sum(len(p) for p in self.pending)
        if buffered >= self.block_rows:
            self._write(buffered - buffered % self.block_rows)

    def _write(self, rows: int) -> None:
        from rasterio.windows import Window
        block = np.concatenate(self.pending, axis=0) if len(self.pending) > 1 else self.pending[0]
        self.dst.write(block[:rows], 1, window=Window(0, self.next_row, block.shape[1], rows))
        self.next_row += rows
        self.pending = [block[rows:]] if rows < len(block) else []

    def close(self) -> None:
        buffered = sum(len(p) for p in self.pending)
        if buffered:
            self._write(buffered)


def box_polygon(box: Sequence[float], transform) -> List[List[float]]:
    """Closed, counter-clockwise ring of a pixel box's corners through ``transform``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    ring = [transform * (x, y) for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]
    signed = sum(ring[i][0] * ring[(i + 1) % 4][1] - ring[(i + 1) % 4][0] * ring[i][1]
                 for i in range(4))
    if signed < 0:
        ring = ring[::-1]
    ring.append(ring[0])
    return [[float(x), float(y)] for x, y in ring]


def crs_info(src) -> Dict[str, Any]:
    """``crs`` (string), ``epsg`` (int or None) and ``crs_wkt`` of a raster."""
    if src.crs is None:
        return {'crs': None, 'epsg': None, 'crs_wkt': None}
    epsg = src.crs.to_epsg()
    return {'crs': src.crs.to_string(), 'epsg': epsg, 'crs_wkt': src.crs.to_wkt()}


def colormap(palette: np.ndarray) -> Dict[int, Tuple[int, int, int, int]]:
    """GeoTIFF colour table of an (N, 3) palette (at most 256 entries)."""
    return {i: (int(c[0]), int(c[1]), int(c[2]), 255) for i, c in enumerate(palette[:256])}


def open_raster(path: str, mode: str = 'r', **profile):
    """``rasterio.open`` without the warning about rasters in pixel coordinates."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


def open_label_raster(path: str, src, georef: bool, grid: TileGrid, names: Sequence[str],
                      palette: np.ndarray):
    """Create the label GeoTIFF of a scene at ``path`` (open for writing).

    One uint8 band of the scene's size (Deflate, tiled in
    :data:`LABEL_BLOCK` blocks when the scene is large enough, BigTIFF if
    needed), the scene's transform and CRS when ``georef``, ``palette`` as
    colour table and the class names in the ``classes`` tag.

    Returns:
        tuple: ``(rasterio dataset, rows per written block)``.
    """
    block = LABEL_BLOCK if grid.width >= LABEL_BLOCK and grid.height >= LABEL_BLOCK else None
    options = dict(tiled=True, blockxsize=block, blockysize=block) if block else {}
    profile = dict(driver='GTiff', width=grid.width, height=grid.height, count=1,
                   dtype='uint8', compress='deflate', BIGTIFF='IF_SAFER', **options)
    if georef:
        profile.update(crs=src.crs, transform=src.transform)
    dst = open_raster(path, 'w', **profile)
    dst.write_colormap(1, colormap(palette))
    dst.set_band_description(1, 'class index')
    dst.update_tags(classes=json.dumps(list(names)))
    return dst, block or LABEL_BLOCK


def detections_geojson(cat: Dict[str, np.ndarray], keep: np.ndarray,
                       class_names: Sequence[str], src, georef: bool, grid: TileGrid
                       ) -> Tuple[Dict[str, Any], Dict[str, int]]:
    """A GeoJSON FeatureCollection of the kept boxes, and the boxes per class.

    Args:
        cat: ``boxes`` (n, 4) xyxy scene pixels, ``scores``, ``labels`` and
            ``tiles`` (flat tile index) of every box.
        keep: Indices of the boxes to write, in order.
        class_names: Names of the labels.
        src: The scene (rasterio dataset): transform, CRS and name.
        georef: Whether the scene is georeferenced.
        grid: The tile grid (to name a box's tile as ``[row, col]``).

    Returns:
        tuple: ``(geojson dict, {class name: boxes}, most boxes first)``.
    """
    transform = src.transform
    features = []
    per_class: Dict[str, int] = {}
    for i in keep:
        box = [round(float(v), 2) for v in cat['boxes'][i]]
        label = int(cat['labels'][i])
        name = class_names[label]
        per_class[name] = per_class.get(name, 0) + 1
        tile_index = int(cat['tiles'][i])
        features.append({
            'type': 'Feature',
            'geometry': {'type': 'Polygon', 'coordinates': [box_polygon(box, transform)]},
            'properties': {'label': name, 'label_index': label,
                           'score': round(float(cat['scores'][i]), 5), 'bbox_px': box,
                           'tile': [tile_index // grid.cols, tile_index % grid.cols]}})
    crs = crs_info(src) if georef else {'crs': None, 'epsg': None, 'crs_wkt': None}
    geojson: Dict[str, Any] = {'type': 'FeatureCollection',
                               'name': osp.splitext(osp.basename(src.name))[0] + '_det'}
    if crs['epsg'] is not None:
        geojson['crs'] = {'type': 'name',
                          'properties': {'name': f'urn:ogc:def:crs:EPSG::{crs["epsg"]}'}}
    geojson['rscotr'] = {'coordinates': 'map' if georef else 'pixel', 'crs': crs['crs'],
                         'crs_wkt': crs['crs_wkt'], 'classes': list(class_names)}
    geojson['features'] = features
    return geojson, dict(sorted(per_class.items(), key=lambda kv: -kv[1]))


def write_class_map(path: str, side_path: str, cls_index: np.ndarray, cls_score: np.ndarray,
                    class_names: Sequence[str], palette: np.ndarray, grid: TileGrid, src,
                    georef: bool) -> None:
    """Write the coarse top-1 class map (one cell per tile) and its JSON side file.

    Args:
        path: GeoTIFF to write (uint8 or uint16 class indices; a colour
            table when uint8).
        side_path: JSON with the class names, palette, grid, transform, CRS
            and top-1 scores.
        cls_index: (rows, cols) top-1 class of every tile.
        cls_score: (rows, cols) its score.
        class_names: Class names.
        palette: (N, 3) colours.
        grid: The tile grid (:meth:`TileGrid.cell_transform`).
        src: The scene (rasterio dataset).
        georef: Whether the scene is georeferenced.
    """
    transform = grid.cell_transform(src.transform)
    profile = dict(driver='GTiff', width=grid.cols, height=grid.rows, count=1,
                   dtype=cls_index.dtype.name, transform=transform)
    if georef:
        profile['crs'] = src.crs
    with open_raster(path, 'w', **profile) as dst:
        dst.write(cls_index, 1)
        if cls_index.dtype == np.uint8:
            dst.write_colormap(1, colormap(palette))
        dst.set_band_description(1, 'top-1 class index')
        dst.update_tags(classes=json.dumps(list(class_names)))
    side = dict(classes=list(class_names), palette=palette.tolist(),
                grid=dict(rows=grid.rows, cols=grid.cols, tile=grid.tile, step=grid.step,
                          overlap=grid.overlap, tile_x=grid.xs, tile_y=grid.ys),
                transform=list(transform)[:6], crs=crs_info(src)['crs'],
                coordinates='map' if georef else 'pixel',
                top1_score=np.round(cls_score, 4).tolist())
    with open(side_path, 'w') as f:
        json.dump(side, f)
