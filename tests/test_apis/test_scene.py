"""Tests of tiled scene inference (rscotr.apis.scene) and tools/inference_scene.py."""
import json
import os

import cv2
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from rscotr.apis import inference_scene
from rscotr.apis.image_io import ImageReadError, prepare_image
from rscotr.apis.inference import inference_multitask, init_model
from rscotr.apis.scene import (SceneReader, SegBlender, TileGrid, blend_weights, box_polygon,
                               merge_tile_detections, tile_detections, tile_offsets)

from ..tiny_rscotr import save_tiny_checkpoint, tool_main, write_geotiff, write_tiny_config

TILE, OVERLAP = 64, 16
H, W = 170, 200
NUM_DET_CLASSES = 20




@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_scene')
    config = write_tiny_config(str(root / 'tiny.py'))
    ckpt = save_tiny_checkpoint(config, str(root / 'tiny.pth'))
    return dict(config=config, ckpt=ckpt, model=init_model(config, ckpt))


def _scene_rgb(h=H, w=W, seed=0):
    """Smooth random colours: the tiny untrained model predicts several classes on it."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (max(h // 14, 2), max(w // 14, 2), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    img = _scene_rgb()
    path = str(tmp_path_factory.mktemp('scene') / 'area_51.tif')
    return write_geotiff(path, img.transpose(2, 0, 1)), img


@pytest.fixture(scope='module')
def sharp_model(tiny):
    """The tiny model with its mask embeddings scaled up: the untrained model
    otherwise predicts one class per tile, and a comparison of label maps
    would only check the placement of whole tiles."""
    model = init_model(tiny['config'], tiny['ckpt'])
    with torch.no_grad():
        model.heads['seg'].mask_embed[-1].weight.mul_(50.0)
    return model


@pytest.fixture(scope='module')
def full_run(sharp_model, scene, tmp_path_factory):
    """One run of all three tasks on the georeferenced 200x170 scene."""
    out = str(tmp_path_factory.mktemp('scene_out'))
    summary = inference_scene(sharp_model, scene[0], out, tile=TILE, overlap=OVERLAP,
                              score_thr=0.02, progress=False)
    return summary


# ---------------------------------------------------------------------- grid and blending
def test_tile_grid():
    assert tile_offsets(200, 64, 48) == [0, 48, 96, 136]
    assert tile_offsets(64, 64, 48) == [0] and tile_offsets(40, 64, 48) == [0]
    grid = TileGrid(H, W, TILE, OVERLAP)
    assert (grid.rows, grid.cols, len(grid), grid.step) == (4, 4, 16, 48)
    assert grid.ys == [0, 48, 96, 106]
    assert grid.window(3, 3) == (136, 106, 64, 64)
    assert grid.inner_edges(0, 0) == (False, True, False, True)
    assert grid.inner_edges(1, 3) == (True, True, True, False)
    small = TileGrid(40, 50, 64, 16)
    assert small.window(0, 0) == (0, 0, 50, 40) and small.inner_edges(0, 0) == (False,) * 4
    t = Affine(0.5, 0, 100, 0, -0.5, 200)
    assert grid.cell_transform(t) == t * Affine.translation(8, 8) * Affine.scale(48)
    for tile, overlap in ((64, 64), (64, -1), (8, 0)):
        with pytest.raises(ValueError):
            TileGrid(100, 100, tile, overlap)


@pytest.mark.parametrize('kind', ['linear', 'cosine'])
def test_blend_weights_sum_to_one_in_overlaps(kind):
    a = blend_weights(1, 64, 16, kind, (False, False, False, True))[0]
    b = blend_weights(1, 64, 16, kind, (False, False, True, False))[0]
    assert (a > 0).all() and (b > 0).all()
    np.testing.assert_allclose(a[48:] + b[:16], 1.0, atol=1e-6)
    assert (a[:48] == 1).all() and (b[16:] == 1).all()
    assert np.all(np.diff(a[48:]) < 0)  # falls towards the edge
    assert (blend_weights(5, 7, 16, 'flat') == 1).all()
    assert (blend_weights(5, 7, 0, kind) == 1).all()
    with pytest.raises(ValueError):
        blend_weights(5, 5, 2, 'gauss')


@pytest.mark.parametrize('tile,overlap', [(64, 16), (64, 40), (32, 0)])
def test_strip_blender_equals_full_scene_accumulation(tile, overlap):
    """The strip accumulator (flushing finished rows) gives the labels of a
    whole-scene accumulator, row by row in order."""
    grid = TileGrid(H, W, tile, overlap)
    rng = np.random.RandomState(0)
    scores = {rc: rng.rand(5, *grid.window(*rc)[:1:-1]).astype(np.float32) for rc in grid}
    full = np.zeros((5, H, W), np.float32)
    for row, col in grid:
        x0, y0, w, h = grid.window(row, col)
        weights = blend_weights(h, w, overlap, 'cosine', grid.inner_edges(row, col))
        full[:, y0:y0 + h, x0:x0 + w] += scores[row, col] * weights
    chunks = []
    blender = SegBlender(grid, 5, lambda y0, labels: chunks.append((y0, labels)), 'cosine')
    for row in range(grid.rows):
        for col in reversed(range(grid.cols)):  # any order within a row
            blender.add(scores[row, col], row, col)
        blender.flush(grid.ys[row + 1] if row + 1 < grid.rows else H)
    assert [y0 for y0, _ in chunks] == list(np.cumsum([0] + [len(c) for _, c in chunks])[:-1])
    labels = np.concatenate([c for _, c in chunks])
    assert labels.shape == (H, W) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, full.argmax(0))
    assert blender.nbytes == 5 * min(tile, H) * W * 4


def test_blender_boundary_in_middle_of_overlap():
    """Two tiles sure of different classes meet in the middle of their overlap."""
    grid = TileGrid(64, 112, 64, 16)  # tiles at x 0 and 48: overlap 48..64
    labels = []
    blender = SegBlender(grid, 2, lambda y0, lab: labels.append(lab), 'linear')
    left, right = np.zeros((2, 64, 64), np.float32), np.zeros((2, 64, 64), np.float32)
    left[0], right[1] = 0.9, 0.8
    left[1], right[0] = 0.1, 0.2
    blender.add(left, 0, 0)
    blender.add(right, 0, 1)
    blender.flush(64)
    row = labels[0][10]
    assert (row[:55] == 0).all() and (row[57:] == 1).all()
    with pytest.raises(RuntimeError, match='outside the strip'):
        blender.add(left, 0, 0)  # rows already written


def test_blender_no_class_channel_becomes_255():
    """The released head's "no class" score channel: where it wins, the label is 255."""
    grid = TileGrid(16, 16, 16, 0)
    labels = []
    blender = SegBlender(grid, 3, lambda y0, lab: labels.append(lab), 'flat', no_class_index=2)
    scores = np.zeros((3, 16, 16), np.float32)
    scores[1] = 0.5
    scores[2, :, :3] = 0.9
    blender.add(scores, 0, 0)
    blender.flush(16)
    assert (labels[0][:, :3] == 255).all() and (labels[0][:, 3:] == 1).all()


# ---------------------------------------------------------------------- detection merging
def _bbox_result(boxes):
    """Per-class (n, 5) arrays from [(label, x1, y1, x2, y2, score), ...]."""
    out = [np.zeros((0, 5), np.float32) for _ in range(NUM_DET_CLASSES)]
    for label, *box in boxes:
        out[label] = np.concatenate([out[label], np.array([box], np.float32)])
    return out


def test_merge_reports_a_straddling_box_once():
    grid = TileGrid(64, 112, 64, 16)  # tile 0: x 0..64, tile 1: x 48..112
    # object A at scene x 44..58: tile 0 sees all of it, tile 1 only x 48..58
    # (cut by its left edge) with a *higher* score; object B at x 51..61 lies
    # in the overlap and is found whole by both tiles; object C (another class)
    # overlaps B
    tile0 = _bbox_result([(3, 44, 10, 58, 30, 0.6), (5, 51, 40, 61, 50, 0.7),
                          (7, 52, 42, 60, 52, 0.5)])
    tile1 = _bbox_result([(3, 0, 10, 10, 30, 0.9), (5, 3, 40, 13, 50, 0.8),
                          (9, 30, 5, 40, 9, 0.1)])  # below the threshold
    parts = [tile_detections(tile0, grid.window(0, 0), grid.inner_edges(0, 0), 0.3),
             tile_detections(tile1, grid.window(0, 1), grid.inner_edges(0, 1), 0.3)]
    assert parts[0]['cut'].tolist() == [False, False, False]
    assert parts[1]['cut'].tolist() == [True, False]
    np.testing.assert_allclose(parts[1]['boxes'][0], [48, 10, 58, 30])
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    tiles = np.array([0, 0, 0, 1, 1])
    keep = merge_tile_detections(cat['boxes'], cat['scores'], cat['labels'], tiles, cat['cut'])
    kept = sorted((int(cat['labels'][i]), cat['boxes'][i].round().tolist()) for i in keep)
    assert kept == [(3, [44, 10, 58, 30]), (5, [51, 40, 61, 50]), (7, [52, 42, 60, 52])]
    # NMS alone would keep the cut box of A (higher score)
    keep = merge_tile_detections(cat['boxes'], cat['scores'], cat['labels'], tiles, cat['cut'],
                                 cover_thr=None)
    assert [48, 10, 58, 30] in [cat['boxes'][i].round().tolist() for i in keep]
    assert len(merge_tile_detections(np.zeros((0, 4)), [], [])) == 0


def test_box_polygon_through_transform():
    t = Affine(0.05, 0, 368000, 0, -0.05, 5807000)
    ring = box_polygon([10, 20, 30, 60], t)
    assert len(ring) == 5 and ring[0] == ring[-1]
    xs, ys = zip(*ring)
    assert min(xs) == pytest.approx(368000.5) and max(xs) == pytest.approx(368001.5)
    assert max(ys) == pytest.approx(5806999.0) and min(ys) == pytest.approx(5806997.0)
    area = sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(4))
    assert area > 0  # counter-clockwise (RFC 7946)


# ---------------------------------------------------------------------- end to end
def test_blended_labels_match_per_tile_predictions(sharp_model, scene, full_run):
    """Where one tile covers a pixel, the scene label is that tile's own
    prediction (the model run directly on the same window through
    inference_multitask); where several tiles cover it and agree, it is their label."""
    path, img = scene
    with rasterio.open(full_run['files']['seg']) as src:
        labels = src.read(1)
    assert labels.shape == (H, W)
    grid = TileGrid(H, W, TILE, OVERLAP)
    coverage = np.zeros((H, W), np.int32)
    first = np.full((H, W), -1, np.int64)
    agree = np.ones((H, W), bool)
    for row, col in grid:
        x0, y0, w, h = grid.window(row, col)
        pred = inference_multitask(sharp_model, img[y0:y0 + h, x0:x0 + w],
                                   tasks=['seg'])['seg']['label_map']
        view = (slice(y0, y0 + h), slice(x0, x0 + w))
        agree[view] &= (first[view] < 0) | (first[view] == pred)
        first[view] = np.where(first[view] < 0, pred, first[view])
        coverage[view] += 1
    # labels change inside tiles (else only the placement of whole tiles is checked)
    assert len(np.unique(first)) >= 2 and (np.diff(first, axis=1) != 0).sum() > 300
    single = coverage == 1
    assert single.sum() > 0.3 * H * W
    np.testing.assert_array_equal(labels[single], first[single])
    shared = (coverage > 1) & agree
    # (the untrained released head agrees across overlaps on ~17 % of the scene)
    assert shared.sum() > 0.1 * H * W
    np.testing.assert_array_equal(labels[shared], first[shared])


def test_scores_are_placed_pixel_exactly(tiny, scene, tmp_path, monkeypatch):
    """With per-pixel scores that depend only on the pixel's colour, every
    tile agrees with its neighbours, so the blended map must be exactly the
    per-pixel argmax over the whole scene: any misplaced, flipped or cropped
    tile shows."""
    import rscotr.apis.scene.driver as scene_mod
    path, img = scene

    def colour_scores(rgb):
        x = rgb.astype(np.float32) / 255.0
        # the 5 classes, then the released head's "no class" channel (never winning here)
        return np.stack([x[..., 0], x[..., 1], x[..., 2], 1 - x.mean(-1), 0.4 + 0 * x[..., 0],
                         0 * x[..., 0] - 1])

    def fake_run_tile(model, images, tasks, filename=None):
        return {'seg': colour_scores(images['seg'])}

    monkeypatch.setattr(scene_mod, 'run_tile', fake_run_tile)
    summary = inference_scene(tiny['model'], path, str(tmp_path), tasks=['seg'], tile=TILE,
                              overlap=OVERLAP, progress=False)
    expected = colour_scores(img).argmax(0)
    assert len(np.unique(expected)) >= 4
    with rasterio.open(summary['files']['seg']) as src:
        np.testing.assert_array_equal(src.read(1), expected)


def test_scene_smaller_than_a_tile_is_padded(sharp_model, tmp_path):
    img = _scene_rgb(40, 50, seed=3)
    path = write_geotiff(str(tmp_path / 'small.tif'), img.transpose(2, 0, 1))
    summary = inference_scene(sharp_model, path, str(tmp_path), tasks=['seg'], tile=TILE,
                              overlap=OVERLAP, progress=False)
    assert summary['tiles']['count'] == 1
    padded = np.zeros((TILE, TILE, 3), np.uint8)
    padded[:40, :50] = img
    direct = inference_multitask(sharp_model, padded, tasks=['seg'])['seg']['label_map']
    assert len(np.unique(direct[:40, :50])) >= 2
    with rasterio.open(summary['files']['seg']) as src:
        np.testing.assert_array_equal(src.read(1), direct[:40, :50])


def test_georeferenced_outputs(scene, full_run):
    path, _ = scene
    files = full_run['files']
    assert {'seg', 'det', 'cls', 'cls_meta', 'summary'} <= set(files)
    with rasterio.open(path) as src:
        transform, crs = src.transform, src.crs
    with rasterio.open(files['seg']) as seg:
        assert seg.transform == transform and seg.crs == crs
        assert seg.dtypes == ('uint8', ) and seg.count == 1
        assert seg.colormap(1)[1][:3] == (0, 0, 255)  # building, Potsdam palette
        assert json.loads(seg.tags()['classes'])[0] == 'impervious_surface'
    grid = TileGrid(H, W, TILE, OVERLAP)
    with rasterio.open(files['cls']) as cls_map:
        assert cls_map.shape == (grid.rows, grid.cols) and cls_map.crs == crs
        assert cls_map.transform == transform * Affine.translation(8, 8) * Affine.scale(48)
        cells = cls_map.read(1)
    meta = json.load(open(files['cls_meta']))
    assert len(meta['classes']) == 45 and np.array(meta['top1_score']).shape == cells.shape
    assert sum(full_run['counts']['cls'].values()) == len(grid)
    geo = json.load(open(files['det']))
    assert geo['crs']['properties']['name'] == 'urn:ogc:def:crs:EPSG::32632'
    assert len(geo['features']) == full_run['counts']['det']['kept'] > 0
    for feature in geo['features']:
        props = feature['properties']
        assert props['score'] > 0.02 and props['label'] in geo['rscotr']['classes']
        ring = feature['geometry']['coordinates'][0]
        assert ring == box_polygon(props['bbox_px'], transform)
    summary = json.load(open(files['summary']))
    assert summary['scene']['georeferenced'] and summary['scene']['crs'] == 'EPSG:32632'
    assert summary['tiles'] == dict(rows=4, cols=4, count=16)
    assert set(summary['timings_s']) >= {'read', 'model', 'total', 'per_tile'}
    assert not [f for f in os.listdir(os.path.dirname(files['seg'])) if f.endswith('.tmp')]


def test_duplicate_boxes_across_tiles_merged_end_to_end(tiny, tmp_path, monkeypatch):
    """A 'detector' that boxes the red pixels of each tile: an object cut by a
    tile edge and one inside an overlap are each reported once, whole."""
    import rscotr.apis.scene.driver as scene_mod
    img = np.full((H, W, 3), 90, np.uint8)
    img[20:40, 44:58] = (255, 0, 0)  # tile col 0 sees it whole, col 1 cut at x=48
    img[120:135, 100:108] = (255, 0, 0)  # inside the overlap of 4 tiles
    path = write_geotiff(str(tmp_path / 'red.tif'), img.transpose(2, 0, 1))

    def red_boxes(model, images, tasks, filename=None):
        tile = images['det']
        mask = ((tile[..., 0] > 200) & (tile[..., 1] < 50)).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = []
        for x, y, w, h, _ in stats[1:]:
            touches = x == 0 or y == 0 or x + w == tile.shape[1] or y + h == tile.shape[0]
            boxes.append((0, x, y, x + w, y + h, 0.9 if touches else 0.6))
        return {'det': _bbox_result(boxes)}

    monkeypatch.setattr(scene_mod, 'run_tile', red_boxes)
    summary = inference_scene(tiny['model'], path, str(tmp_path), tasks=['det'], tile=TILE,
                              overlap=OVERLAP, progress=False)
    boxes = sorted(f['properties']['bbox_px'] for f in
                   json.load(open(summary['files']['det']))['features'])
    assert boxes == [[44, 20, 58, 40], [100, 120, 108, 135]]
    assert summary['counts']['det']['after_score_thr'] == 2 + 4
    assert summary['counts']['det']['cut_by_tile_edges'] == 1


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_not_georeferenced_scene_gives_pixel_coordinates(tiny, tmp_path):
    import tifffile
    path = str(tmp_path / 'plain.tif')
    tifffile.imwrite(path, _scene_rgb(90, 100, seed=1), photometric='rgb')
    summary = inference_scene(tiny['model'], path, str(tmp_path / 'out'), tasks=['seg', 'det'],
                              tile=TILE, overlap=OVERLAP, score_thr=0.02, progress=False)
    assert summary['scene']['georeferenced'] is False
    assert summary['scene']['coordinates'] == 'pixel' and 'pixel' in summary['scene']['note']
    with rasterio.open(summary['files']['seg']) as seg:
        assert seg.transform.is_identity and seg.crs is None
    geo = json.load(open(summary['files']['det']))
    assert 'crs' not in geo and geo['rscotr']['coordinates'] == 'pixel'
    assert geo['features']
    for feature in geo['features']:
        x1, y1, x2, y2 = feature['properties']['bbox_px']
        xs, ys = zip(*feature['geometry']['coordinates'][0])
        assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx((x1, y1, x2, y2))


def test_16bit_4band_scene(tiny, tmp_path):
    rng = np.random.RandomState(2)
    base = cv2.resize(rng.randint(300, 4000, (8, 9, 4)).astype(np.float32), (110, 100))
    data = base.astype(np.uint16).transpose(2, 0, 1)
    data[3] = 60000 - data[3]  # IR band on another range
    path = write_geotiff(str(tmp_path / 'rgbir.tif'), data)
    hwc = data.transpose(1, 2, 0)
    # global statistics: a window is scaled as image_io scales the whole scene
    for bands in (None, (4, 1, 2)):
        with SceneReader(path, {'seg': bands, 'det': bands}, 'auto') as reader:
            tile = reader.read(40, 30, 64, 64)['seg']
        whole = prepare_image(hwc, bands, 'auto')
        assert np.abs(tile.astype(int) - whole[30:94, 40:104]).max() <= 1
    summary = inference_scene(tiny['model'], path, str(tmp_path / 'out'), tasks=['seg', 'cls'],
                              tile=TILE, overlap=OVERLAP, bands='4,1,2', progress=False)
    assert summary['options']['bands'] == {'seg': [4, 1, 2], 'cls': [4, 1, 2]}
    assert summary['options']['scaling']['mode'] == 'stretch'
    assert set(summary['options']['scaling']['limits']) == {'1', '2', '4'}
    with rasterio.open(summary['files']['seg']) as seg:
        assert seg.shape == (100, 110)
    with pytest.raises(ImageReadError, match='has 4 band'):
        inference_scene(tiny['model'], path, str(tmp_path / 'bad'), tasks=['seg'], tile=TILE,
                        overlap=OVERLAP, bands='5,1,2', progress=False)


@pytest.mark.parametrize('compress,tiled', [('lzw', False), ('lzw', True), ('deflate', True),
                                            ('zstd', False), ('jpeg', True)])
def test_compressed_scenes(sharp_model, scene, full_run, tmp_path, compress, tiled):
    """Published GeoTIFFs are often LZW / Deflate / JPEG compressed, striped or tiled:
    the scene is read window by window all the same."""
    _, img = scene
    path = write_geotiff(str(tmp_path / 'area_51.tif'), img.transpose(2, 0, 1),
                         compress=compress, tiled=tiled)
    with SceneReader(path, {'seg': None}) as reader:
        window = reader.read(40, 30, 64, 80)['seg'].astype(int)
    error = np.abs(window - img[30:110, 40:104]).mean()
    assert error < 3 if compress == 'jpeg' else error == 0
    summary = inference_scene(sharp_model, path, str(tmp_path / 'out'), tasks=['seg'],
                              tile=TILE, overlap=OVERLAP, progress=False)
    with rasterio.open(summary['files']['seg']) as got, \
            rasterio.open(full_run['files']['seg']) as plain:
        labels, expected = got.read(1), plain.read(1)
    assert labels.shape == expected.shape == (H, W)
    if compress != 'jpeg':  # lossless: the same labels
        np.testing.assert_array_equal(labels, expected)


def test_tool_on_an_lzw_scene(tiny, scene, tmp_path, capsys):
    path = write_geotiff(str(tmp_path / 'lzw.tif'), scene[1].transpose(2, 0, 1), compress='lzw',
                         tiled=True)
    main = tool_main('tools/inference_scene.py')
    assert main([tiny['config'], tiny['ckpt'], path, '--tasks', 'seg', 'det', '--tile',
                 str(TILE), '--overlap', str(OVERLAP), '--out-dir', str(tmp_path / 'out'),
                 '--no-progress']) == 0
    assert '16 tiles' in capsys.readouterr().out


@pytest.mark.parametrize('kind,message', [('missing', 'no such file'),
                                          ('text', 'not a raster image'),
                                          ('folder', 'is a folder'), ('empty', 'empty file')])
def test_bad_scene_errors(tiny, tmp_path, kind, message):
    path = tmp_path / f'{kind}.tif'
    if kind == 'text':
        path.write_text('this is not an image\n')
    elif kind == 'folder':
        path.mkdir()
    elif kind == 'empty':
        path.write_bytes(b'')
    out = tmp_path / 'out'
    with pytest.raises(ImageReadError, match=message) as info:
        inference_scene(tiny['model'], path, str(out), tile=TILE, overlap=OVERLAP,
                        progress=False)
    assert str(path) in str(info.value)
    assert not out.exists() or not os.listdir(out)


def test_tool(tiny, scene, tmp_path, capsys):
    main = tool_main('tools/inference_scene.py')
    out = tmp_path / 'out'
    code = main([tiny['config'], tiny['ckpt'], scene[0], '--tasks', 'seg', 'cls', '--tile',
                 str(TILE), '--overlap', str(OVERLAP), '--out-dir', str(out), '--no-progress',
                 '--preview', str(out / 'preview.png'), '--cfg-options',
                 'inference.bands.seg=3,2,1'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert 'EPSG:32632' in printed and '16 tiles' in printed
    summary = json.load(open(out / 'area_51_scene.json'))
    assert summary['options']['bands'] == {'seg': [3, 2, 1], 'cls': [1, 2, 3]}
    names = sorted(os.listdir(out))
    assert names == ['area_51_cls.json', 'area_51_cls.tif', 'area_51_scene.json',
                     'area_51_seg.tif', 'preview.png']
    assert cv2.imread(str(out / 'preview.png')).shape[1] > 2 * W
    # a bad scene: exit code 2, one line, nothing written
    code = main([tiny['config'], tiny['ckpt'], str(tmp_path / 'nope.tif'), '--out-dir',
                 str(tmp_path / 'none')])
    err = capsys.readouterr().err
    assert code == 2 and 'no such file' in err and not (tmp_path / 'none').exists()
    code = main([tiny['config'], tiny['ckpt'], scene[0], '--overlap', '64', '--tile', '64'])
    assert code == 2 and 'overlap' in capsys.readouterr().err


def test_failure_mid_scene_leaves_no_files(tiny, scene, tmp_path, monkeypatch):
    import rscotr.apis.scene.driver as scene_mod
    calls = []

    def failing_run_tile(model, images, tasks, filename=None):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError('out of memory (simulated)')
        return {'seg': np.random.rand(6, *images['seg'].shape[:2]).astype(np.float32)}

    monkeypatch.setattr(scene_mod, 'run_tile', failing_run_tile)
    with pytest.raises(RuntimeError, match='simulated'):
        inference_scene(tiny['model'], scene[0], str(tmp_path), tasks=['seg'], tile=TILE,
                        overlap=OVERLAP, progress=False)
    assert os.listdir(tmp_path) == []


def test_run_tile_takes_the_models_multitask_scores(tiny, monkeypatch):
    """run_tile is the model's multi-task test with scores=True (one call per input
    group); a seg head whose scores are not per-class maps is refused."""
    from rscotr.apis.scene import run_tile
    model = tiny['model']
    tile = {task: _scene_rgb(TILE, TILE) for task in ('cls', 'det', 'seg')}
    calls = []
    real = type(model).simple_test_tasks

    def spy(self, img, img_metas, tasks, rescale=True, scores=False):
        calls.append((list(tasks), scores))
        return real(self, img, img_metas, tasks, rescale, scores)

    monkeypatch.setattr(type(model), 'simple_test_tasks', spy)
    out = run_tile(model, tile, ['cls', 'det', 'seg'])
    assert sorted(t for tasks, _ in calls for t in tasks) == ['cls', 'det', 'seg']
    assert all(scores for _, scores in calls)
    seg = model.heads['seg']
    assert out['seg'].dtype == np.float32 and out['seg'].shape == (seg.num_classes + 1, TILE, TILE)
    assert len(out['det']) == NUM_DET_CLASSES and out['cls'].shape == (45, )
    # the default simple_test_scores of a head is its results: label maps for seg
    monkeypatch.setattr(type(seg), 'simple_test_scores', type(seg).simple_test)
    with pytest.raises(TypeError, match='blends \\(num_classes, H, W\\) scores'):
        run_tile(model, tile, ['seg'])
