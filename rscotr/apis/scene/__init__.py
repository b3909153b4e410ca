"""Tiled inference on large scenes (GeoTIFF or any GDAL raster) with georeferenced outputs.

Example::

    from rscotr.apis import init_model, inference_scene
    model = init_model(CONFIG, CKPT, device='cuda')
    summary = inference_scene(model, 'top_potsdam_2_13_RGBIR.tif', 'out/',
                              tasks=['seg', 'det'], tile=512, overlap=128, bands=(4, 1, 2))
    summary['files']   # {'seg': 'out/top_potsdam_2_13_RGBIR_seg.tif', 'det': ..., ...}

Tiles
-----
The scene is cut into ``tile`` x ``tile`` windows at a step of
``tile - overlap`` pixels (:class:`TileGrid`). The last window of a row or
column is moved back so that it ends at the scene edge (no padding); a scene
smaller than one tile is zero-padded to a full tile. Every tile goes through
each task's test pipeline, exactly as :func:`~rscotr.apis.inference.inference_multitask`
prepares a single image (so the pipelines resize the tile to their test
size: choose ``tile`` close to the size the heads were trained at, 512 for
Potsdam segmentation, 800 for DIOR detection), and tasks whose inputs are
equal share one backbone pass.

- **seg**: the head's per-pixel class scores (softmax class x sigmoid mask,
  before the argmax: ``simple_test_scores``) of every tile are multiplied by
  a smooth window (:func:`blend_weights`: a cosine or linear ramp over the
  ``overlap`` pixels next to every tile edge that is inside the scene; weights
  of overlapping tiles sum to 1) and accumulated; the label is the argmax of
  the sum (:class:`SegBlender`).
- **det**: boxes above ``score_thr`` of every tile, moved to scene pixels, then
  merged (:func:`merge_tile_detections`): a box cut by an inner tile edge is
  dropped when a larger box of the same class from another tile covers it
  (the tile that saw the whole object), then class-wise NMS removes the
  duplicates found by several tiles. Objects larger than ``overlap`` can be
  cut by every tile that sees them: choose ``overlap`` above the largest
  object size.
- **cls**: the top-1 class and score of every tile, as a coarse map with one
  cell per tile. Cell ``(r, c)`` is the ``step`` x ``step`` square at the centre
  of tile ``(r, c)`` (map transform = scene transform x translation by
  ``overlap / 2`` x scale by ``step``).

Memory
------
Bounded by the tile size and the scene *width*, not by the scene height: the
scene is read tile by tile (rasterio windows, GDAL's block cache limited to
``gdal_cache_mb``), the segmentation scores are accumulated in a strip one
tile high ((num_classes, tile, width) float32: 5 x 512 x 20000 x 4 bytes =
195 MiB for a 20000-pixel-wide scene) and finished rows are written to the
label GeoTIFF (in whole blocks of 256 rows) as soon as no later tile touches
them; only the overlap band stays between tile rows. Boxes and the class map
grow with their counts only. Measured (``tools/analysis/scene_memory.py``,
tiny demo model, seg + det, tile 512, overlap 128): the scene adds 25 MB to
the peak RSS at 1024 x 1024, 159 MB at 8192 x 8192, 320 MB at 20000 x 2048,
43 MB at 2048 x 20000 and 329 MB at 20000 x 20000.

Bands and scaling
-----------------
As :func:`~rscotr.apis.image_io.read_image`: 1-based band numbers (``bands``,
default the first three: R, G, B of RGB / RGBIR scenes, or the config's
``inference.bands.<task>``), IRRG scenes are used as they are (the model sees
the bands in file order). ``scale='auto'`` keeps 8-bit data and stretches
other data per band between its 2nd and 98th percentile. The statistics of
``percentile`` / ``minmax`` (and ``auto`` on 16-bit data) come from a
subsample of the *whole scene* (:class:`SceneScaler`), so that all tiles are
scaled alike (per-tile statistics would show the tile grid in the results);
``none`` and ``divide:N`` are per pixel.

Outputs (in ``out_dir``, ``<stem>`` = scene file name without extension)
-----------------------------------------------------------------------
- ``<stem>_seg.tif``: uint8 class indices, one band, the scene's transform and
  CRS, the seg palette as colour table, class names in the ``classes`` tag;
- ``<stem>_det.geojson``: one polygon per box (the 4 pixel corners through the
  scene transform, so rotated transforms are honoured) in the scene CRS
  (named by the legacy ``crs`` member when it has an EPSG code), with
  ``label``, ``label_index``, ``score``, ``bbox_px`` (x1, y1, x2, y2 in scene
  pixels) and ``tile``;
- ``<stem>_cls.tif`` + ``<stem>_cls.json``: the coarse top-1 class map (uint8,
  colour table) and its class names, palette, grid and top-1 scores;
- ``<stem>_scene.json``: scene, options, tiles, timings, counts and files
  (written last).

A scene without georeferencing (no CRS, identity transform) gives outputs in
pixel coordinates (identity transform, no CRS), and the summary says so
(``"coordinates": "pixel"``). Every file is written under a temporary name
and renamed when complete.

Modules
-------
:mod:`.tiling` (tile grid, blending windows, the strip blender),
:mod:`.reading` (opening, scaling and reading windows of a scene),
:mod:`.detections` (boxes of a tile, merging across tiles),
:mod:`.writing` (label GeoTIFF, GeoJSON, class map), :mod:`.preview`
(a picture of the outputs) and :mod:`.driver` (the model on a tile, the tile
loop, :func:`inference_scene`).
"""
from .detections import merge_tile_detections, tile_detections
from .driver import inference_scene, run_tile
from .preview import render_scene_preview
from .reading import SceneReader, SceneScaler, is_georeferenced, open_scene
from .tiling import SegBlender, TileGrid, blend_weights, tile_offsets
from .writing import box_polygon

__all__ = [
    'inference_scene', 'TileGrid', 'tile_offsets', 'blend_weights', 'SegBlender',
    'SceneReader', 'SceneScaler', 'open_scene', 'run_tile',
    'tile_detections', 'merge_tile_detections', 'box_polygon', 'is_georeferenced',
    'render_scene_preview'
]
