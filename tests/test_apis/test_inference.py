"""Tests of image reading, the inference API and tools/inference_one_img.py."""
import json
import logging
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from rscotr.apis.image_io import (ImageReadError, atomic_write_bytes, parse_bands, parse_scale,
                                  prepare_image, read_image, read_raw_image, scale_to_uint8)
from rscotr.apis.inference import (format_cls_result, format_det_result, format_seg_result,
                                   inference_multitask, init_model, prepare_task_inputs)
from rscotr.datasets.meta import DIOR_CLASSES, POTSDAM_CLASSES, RESISC45_CLASSES

from ..tiny_rscotr import (NORM, save_tiny_checkpoint, tiny_test_pipelines, tool_main,
                           write_geotiff, write_tiny_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CLASSES = POTSDAM_CLASSES[:5]
TOOL = 'tools/inference_one_img.py'




@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_inference')
    config = write_tiny_config(str(root / 'tiny.py'))
    ckpt = save_tiny_checkpoint(config, str(root / 'tiny.pth'))
    return dict(config=config, ckpt=ckpt, model=init_model(config, ckpt))


def _random_rgb(h, w, seed=0):
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope='module')
def jpeg(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('jpeg') / 'scene.jpg')
    cv2.imwrite(path, _random_rgb(120, 160)[..., ::-1])
    return path


@pytest.fixture(scope='module')
def geotiff(tmp_path_factory):
    """4-band (R, G, B, IR) 16-bit GeoTIFF with values up to ~4000."""
    rng = np.random.RandomState(1)
    data = np.stack([np.full((90, 110), 300 * (b + 1), np.uint16) for b in range(4)])
    data = data + rng.randint(0, 3000, data.shape).astype(np.uint16)
    path = str(tmp_path_factory.mktemp('tif') / 'top_potsdam_2_13_RGBIR.tif')
    return write_geotiff(path, data), data


# ---------------------------------------------------------------------- image reading
def test_read_jpeg_and_png_are_rgb(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 250  # red in RGB
    cv2.imwrite(str(tmp_path / 'red.png'), img[..., ::-1])
    cv2.imwrite(str(tmp_path / 'red.jpg'), img[..., ::-1])
    png = read_image(tmp_path / 'red.png')
    assert png.shape == (20, 30, 3) and png.dtype == np.uint8
    assert np.array_equal(png, img)
    jpg = read_image(str(tmp_path / 'red.jpg'))
    assert jpg[..., 0].mean() > 240 and jpg[..., 1:].mean() < 10


def test_read_grey_and_16bit_png(tmp_path):
    grey = np.arange(200, dtype=np.uint8).reshape(10, 20)
    cv2.imwrite(str(tmp_path / 'grey.png'), grey)
    out = read_image(tmp_path / 'grey.png')
    assert out.shape == (10, 20, 3) and np.array_equal(out[..., 2], grey)
    deep = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    cv2.imwrite(str(tmp_path / 'deep.png'), np.dstack([deep] * 3))
    out = read_image(tmp_path / 'deep.png', scale='minmax')
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_read_geotiff_bands_and_scaling(geotiff):
    path, data = geotiff
    rgb = read_image(path)  # auto: 16 bit -> 2-98 percentile stretch of bands 1, 2, 3
    assert rgb.shape == (90, 110, 3) and rgb.dtype == np.uint8
    for c in range(3):
        low, high = np.percentile(data[c], (2, 98))
        expected = np.clip((data[c].astype(np.float32) - low) * 255 / (high - low) + 0.5, 0, 255)
        assert np.abs(rgb[..., c].astype(int) - expected.astype(np.uint8)).max() <= 1
    irrg = read_image(path, bands='4,1,2', scale='divide:16')
    assert np.array_equal(irrg[..., 0], np.clip(data[3] / 16.0, 0, 255).astype(np.uint8))
    assert np.array_equal(irrg[..., 1], np.clip(data[0] / 16.0, 0, 255).astype(np.uint8))
    with pytest.raises(ImageReadError, match='has 4 band.*5,1,2'):
        read_image(path, bands=(5, 1, 2))


def test_geotiff_nodata_is_left_out_of_the_stretch(tmp_path):
    data = np.full((3, 40, 40), 1000, np.uint16)
    data[:, :20] = 2000
    data[:, :5] = 0  # nodata border
    path = write_geotiff(str(tmp_path / 'nodata.tif'), data, nodata=0)
    out = read_image(path, scale='minmax')
    assert out[10, 0, 0] == 255 and out[30, 0, 0] == 0 and out[0, 0, 0] == 0


def test_scale_and_option_parsing():
    img = np.array([[[0, 100, 1000]], [[255, 300, 3000]]], dtype=np.uint16)
    assert np.array_equal(scale_to_uint8(img, 'none')[..., 1].ravel(), [100, 255])
    assert np.array_equal(scale_to_uint8(img, 'minmax')[..., 2].ravel(), [0, 255])
    assert np.array_equal(scale_to_uint8(img, 'divide:10')[..., 2].ravel(), [100, 255])
    u8 = np.random.RandomState(0).randint(0, 256, (5, 5, 3)).astype(np.uint8)
    assert scale_to_uint8(u8, 'auto') is u8
    flat = np.full((4, 4, 3), 7, np.uint16)  # constant bands: no division by zero
    assert scale_to_uint8(flat, 'percentile').dtype == np.uint8
    assert parse_scale('percentile:1,99') == ('percentile', (1.0, 99.0))
    assert parse_bands('4, 1, 2') == (4, 1, 2) and parse_bands(None) is None
    for bad in ('log', 'divide:0', 'percentile:99,1', 'minmax:3'):
        with pytest.raises(ValueError, match='unknown scale'):
            parse_scale(bad)
    for bad in ('1,2', 'a,b,c', '0,1,2'):
        with pytest.raises(ValueError, match='bands'):
            parse_bands(bad)
    with pytest.raises(ImageReadError, match='unsupported pixel type'):
        prepare_image(np.zeros((4, 4, 3), bool))


@pytest.mark.parametrize('kind, message', [
    ('missing', 'no such file'),
    ('empty', 'empty file'),
    ('folder', 'is a folder'),
    ('text', 'not an image'),
    ('truncated_jpeg', 'corrupt'),
    ('truncated_tiff', 'corrupt TIFF'),
])
def test_read_errors_name_file_and_problem(tmp_path, jpeg, geotiff, kind, message):
    path = _bad_file(tmp_path, kind, jpeg, geotiff[0])
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert info.value.path == path and path in str(info.value)


def _bad_file(tmp_path, kind, jpeg, tiff):
    path = str(tmp_path / {'missing': 'nope.jpg', 'empty': 'empty.png', 'folder': 'dir.jpg',
                           'text': 'notes.jpg', 'truncated_jpeg': 'cut.jpg',
                           'truncated_tiff': 'cut.tif'}[kind])
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'folder':
        os.mkdir(path)
    elif kind == 'text':
        with open(path, 'w') as f:
            f.write('this is a text file, not a picture\n' * 20)
    elif kind.startswith('truncated'):
        with open(jpeg if kind == 'truncated_jpeg' else tiff, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    return path


#: (compression, tiled) of the compressed GeoTIFF inputs: lossless ones.
COMPRESSED = [('lzw', False), ('lzw', True), ('deflate', False), ('deflate', True),
              ('zstd', True)]


@pytest.mark.parametrize('compress,tiled', COMPRESSED)
def test_read_compressed_geotiff(geotiff, tmp_path, compress, tiled):
    """LZW / Deflate / ZSTD, striped or tiled, 16 bit, 4 bands: the same pixels."""
    path, data = geotiff
    packed = write_geotiff(str(tmp_path / f'{compress}.tif'), data, compress=compress,
                           tiled=tiled)
    raw, _ = read_raw_image(packed)
    assert np.array_equal(raw, data.transpose(1, 2, 0))
    assert np.array_equal(read_image(packed, bands='4,1,2'), read_image(path, bands='4,1,2'))


def test_read_jpeg_in_tiff_and_opencv_tiff(tmp_path):
    rgb = _random_rgb(96, 128, seed=4)
    opencv = str(tmp_path / 'opencv.tif')  # OpenCV writes TIFF with LZW by default
    cv2.imwrite(opencv, rgb[..., ::-1])
    assert np.array_equal(read_image(opencv), rgb)
    jpeg = write_geotiff(str(tmp_path / 'jpeg.tif'), np.ascontiguousarray(rgb.transpose(2, 0, 1)),
                         compress='jpeg', tiled=True)
    assert np.abs(read_image(jpeg).astype(int) - rgb).mean() < 3


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / 'out' / 'a.bin'
    atomic_write_bytes(target, b'123')
    atomic_write_bytes(target, b'4567')
    assert target.read_bytes() == b'4567'
    assert os.listdir(tmp_path / 'out') == ['a.bin']


# ---------------------------------------------------------------------- API
def _check_results(res, shape, score_thr=0.0):
    assert set(res) == {'cls', 'det', 'seg'}
    top5 = res['cls']['top5']
    assert len(top5) == 5 and all(name in RESISC45_CLASSES for name, _ in top5)
    scores = [s for _, s in top5]
    assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) for s in scores)
    h, w = shape
    for det in res['det']:
        assert set(det) == {'bbox', 'label', 'score'} and det['label'] in DIOR_CLASSES
        x1, y1, x2, y2 = det['bbox']
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h and det['score'] > score_thr
        assert all(isinstance(v, float) for v in det['bbox'])
    det_scores = [d['score'] for d in res['det']]
    assert det_scores == sorted(det_scores, reverse=True)
    seg = res['seg']
    assert seg['label_map'].shape == (h, w) and seg['label_map'].dtype == np.uint8
    # class indices, or 255 where a query channel that is no class won (scheme 2)
    values = set(np.unique(seg['label_map']).tolist())
    assert values <= set(range(5)) | {255}
    assert list(seg['class_fractions']) == list(SEG_CLASSES)
    assert abs(sum(seg['class_fractions'].values()) + seg['unlabelled_fraction'] - 1.0) < 1e-6
    counts = np.bincount(seg['label_map'].ravel(), minlength=256)
    assert np.allclose(list(seg['class_fractions'].values()), counts[:5] / counts.sum())
    assert np.isclose(seg['unlabelled_fraction'], counts[255] / counts.sum())
    json.dumps({k: v for k, v in res.items() if k != 'seg'})  # plain Python values


def test_init_model_classes_and_errors(tiny):
    model = tiny['model']
    assert not model.training and model.cfg is not None
    assert model.CLASSES['cls'] == RESISC45_CLASSES and model.CLASSES['det'] == DIOR_CLASSES
    assert model.CLASSES['seg'] == SEG_CLASSES and len(model.PALETTE['seg']) == 5
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='no CUDA'):
            init_model(tiny['config'], tiny['ckpt'], device='cuda')
    with pytest.raises(FileNotFoundError):
        init_model(tiny['config'], tiny['ckpt'] + '.missing')


def test_inference_on_jpeg(tiny, jpeg):
    res = inference_multitask(tiny['model'], jpeg, score_thr=0.0)
    _check_results(res, (120, 160))
    assert len(res['det']) == 20  # max_per_img of the tiny head, all above 0
    high = inference_multitask(tiny['model'], jpeg, tasks=['det'], score_thr=0.04)
    assert set(high) == {'det'} and all(d['score'] > 0.04 for d in high['det'])
    assert len(high['det']) <= len(res['det'])


def test_inference_on_4band_16bit_geotiff(tiny, geotiff):
    path, data = geotiff
    res = inference_multitask(tiny['model'], path, score_thr=0.0)
    _check_results(res, (90, 110))
    # the same as reading the file first, and as passing the raw array
    img = read_image(path)
    from_img = inference_multitask(tiny['model'], img, score_thr=0.0)
    from_raw = inference_multitask(tiny['model'], data.transpose(1, 2, 0), score_thr=0.0)
    for other in (from_img, from_raw):
        assert other['cls'] == res['cls'] and other['det'] == res['det']
        assert np.array_equal(other['seg']['label_map'], res['seg']['label_map'])
    irrg = inference_multitask(tiny['model'], path, tasks=['seg'], bands='4,1,2')
    assert irrg['seg']['label_map'].shape == (90, 110)


def test_config_bands_per_task(tmp_path, geotiff, jpeg, caplog):
    """``inference.bands.seg = (4, 1, 2)``: IR-R-G for seg, RGB for cls, from one file."""
    path, _ = geotiff
    config = write_tiny_config(str(tmp_path / 'irrg.py'),
                               extra='inference = dict(bands=dict(seg=(4, 1, 2)))\n')
    ckpt = save_tiny_checkpoint(config, str(tmp_path / 'irrg.pth'))
    model = init_model(config, ckpt)
    res = inference_multitask(model, path, tasks=['cls', 'seg'])
    irrg = inference_multitask(model, path, tasks=['seg'], bands='4,1,2')
    rgb = inference_multitask(model, path, tasks=['cls', 'seg'], bands='1,2,3')
    assert np.array_equal(res['seg']['label_map'], irrg['seg']['label_map'])
    assert res['cls'] == rgb['cls']
    assert not np.array_equal(res['seg']['label_map'], rgb['seg']['label_map'])
    # a 3-band image has no band 4: the default bands, with a warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='rscotr'):
        three = inference_multitask(model, jpeg, tasks=['seg'])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith('seg: ')
    assert all(part in warnings[0] for part in ('(4, 1, 2)', 'has 3', 'first 3 bands'))
    first3 = inference_multitask(model, jpeg, tasks=['seg'], bands='1,2,3')
    assert np.array_equal(three['seg']['label_map'], first3['seg']['label_map'])


def test_inference_task_errors(tiny, jpeg, tmp_path):
    with pytest.raises(KeyError, match=r"no head or task \['panoptic'\] in the model "
                       r'\(heads: cls \(cls\), det \(det\), seg \(seg\)\)'):
        inference_multitask(tiny['model'], jpeg, tasks=['panoptic'])
    cls_only = write_tiny_config(str(tmp_path / 'cls.py'), tasks=('cls', ))
    model = init_model(cls_only, save_tiny_checkpoint(cls_only, str(tmp_path / 'cls.pth')))
    with pytest.raises(KeyError, match='no head'):
        inference_multitask(model, jpeg, tasks=['det'])
    assert set(inference_multitask(model, jpeg)) == {'cls'}
    with pytest.raises(ImageReadError, match='no such file'):
        inference_multitask(model, str(tmp_path / 'nope.png'))


def _count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def test_backbone_runs_once_per_input_size(tiny, jpeg):
    model = tiny['model']
    img = read_image(jpeg)
    groups = prepare_task_inputs(model, img, ['cls', 'det', 'seg'])
    sizes = {tuple(g.img.shape[-2:]) for g in groups}
    assert len(groups) == 3 and len(sizes) == 3  # cls 64 crop, det 96, seg 64 resize
    backbone, backbone_handle = _count_calls(model.backbone)
    neck, neck_handle = _count_calls(model.neck)
    try:
        inference_multitask(model, img)
    finally:
        backbone_handle.remove()
        neck_handle.remove()
    assert len(backbone) == 3 and len(neck) == 2  # the single-level cls head needs no neck


def test_shared_pipeline_runs_backbone_once(tmp_path, jpeg):
    """Tasks with the same input size share one backbone + neck pass; the results
    are those of running each task alone."""
    pipes = tiny_test_pipelines(dict(seg=64))
    # mmcls resizing of the long side to 64 = mmseg's keep-ratio resizing into 64x64
    cls_pipe = [dict(type='LoadImageFromFile'),
                dict(type='Resize', size=(64, -1), adaptive_side='long'),
                dict(type='Normalize', **NORM), dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img'])]
    extra = (f'inference = dict(pipelines=dict(cls={cls_pipe!r}, det={pipes["seg"]!r}, '
             f'seg={pipes["seg"]!r}))\n')
    config = write_tiny_config(str(tmp_path / 'shared.py'), extra=extra)
    model = init_model(config, save_tiny_checkpoint(config, str(tmp_path / 'shared.pth')))
    groups = prepare_task_inputs(model, read_image(jpeg), ['cls', 'det', 'seg'])
    assert len(groups) == 1 and groups[0].tasks == ['cls', 'det', 'seg']
    backbone, backbone_handle = _count_calls(model.backbone)
    encoder, encoder_handle = _count_calls(model.encoder)
    try:
        together = inference_multitask(model, jpeg, score_thr=0.0)
    finally:
        backbone_handle.remove()
        encoder_handle.remove()
    assert len(backbone) == 1
    assert len(encoder) == 2  # once per encoder head (det, seg), each with its own pos-enc
    _check_results(together, (120, 160))
    for task in ('cls', 'det', 'seg'):
        alone = inference_multitask(model, jpeg, tasks=[task], score_thr=0.0)[task]
        if task == 'seg':
            assert np.array_equal(alone['label_map'], together['seg']['label_map'])
        elif task == 'cls':
            assert [n for n, _ in alone['top5']] == [n for n, _ in together['cls']['top5']]
            assert np.allclose([s for _, s in alone['top5']],
                               [s for _, s in together['cls']['top5']], atol=1e-6)
        else:
            assert len(alone) == len(together['det'])
            assert np.allclose([d['bbox'] for d in alone], [d['bbox'] for d in together['det']],
                               atol=1e-4)


def test_result_formatters():
    names = ['a', 'b', 'c']
    assert format_cls_result(np.array([0.2, 0.5, 0.3]), names) == {
        'top5': [('b', 0.5), ('c', 0.3), ('a', 0.2)]}
    dets = format_det_result([np.array([[0, 0, 5, 5, 0.9], [1, 1, 2, 2, 0.1]], np.float32),
                              np.zeros((0, 5), np.float32),
                              np.array([[2, 2, 8, 9, 0.95]], np.float32)], names, 0.3)
    assert [(d['label'], round(d['score'], 2)) for d in dets] == [('c', 0.95), ('a', 0.9)]
    seg = format_seg_result(np.array([[0, 0], [2, 0]]), names)
    assert seg['class_fractions'] == {'a': 0.75, 'b': 0.0, 'c': 0.25}
    assert seg['label_map'].dtype == np.uint8


# ---------------------------------------------------------------------- tool
def _run_tool(tiny, image, out_dir, *extra):
    argv = [tiny['config'], tiny['ckpt'], image, '--out-dir', str(out_dir), *extra]
    return tool_main(TOOL)(argv)


def _check_tool_outputs(out_dir, stem, shape, tasks=('cls', 'det', 'seg')):
    files = sorted(os.listdir(out_dir))
    expected = {f'{stem}_result.json'}
    if 'det' in tasks:
        expected.add(f'{stem}_det.png')
    if 'seg' in tasks:
        expected |= {f'{stem}_seg.png', f'{stem}_seg_labels.png'}
    assert set(files) == expected  # no temporary files left
    with open(osp.join(out_dir, f'{stem}_result.json')) as f:
        summary = json.load(f)
    assert summary['tasks'] == list(tasks) and summary['image_size'] == list(shape)
    if 'det' in tasks:
        drawn = cv2.imread(osp.join(out_dir, f'{stem}_det.png'), cv2.IMREAD_UNCHANGED)
        assert drawn.shape == shape + (3, )
    if 'seg' in tasks:
        overlay = cv2.imread(osp.join(out_dir, f'{stem}_seg.png'), cv2.IMREAD_UNCHANGED)
        labels = cv2.imread(summary['seg']['label_map'], cv2.IMREAD_UNCHANGED)
        assert overlay.shape == shape + (3, )
        assert labels.shape == shape and labels.dtype == np.uint8
        assert set(np.unique(labels).tolist()) <= set(range(5)) | {255}
        assert summary['seg']['label_map'] == osp.abspath(
            osp.join(out_dir, f'{stem}_seg_labels.png'))
    return summary


def test_tool_matches_api(tiny, jpeg, tmp_path, capsys):
    assert _run_tool(tiny, jpeg, tmp_path, '--score-thr', '0.02') == 0
    printed = capsys.readouterr().out
    assert 'cls:' in printed and 'det:' in printed and 'seg:' in printed
    summary = _check_tool_outputs(str(tmp_path), 'scene', (120, 160))
    api = inference_multitask(tiny['model'], jpeg, score_thr=0.02)
    assert [(d['label'], d['score']) for d in summary['cls']['top5']] == api['cls']['top5']
    assert summary['det'] == api['det']
    assert summary['seg']['class_fractions'] == api['seg']['class_fractions']
    labels = cv2.imread(summary['seg']['label_map'], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, api['seg']['label_map'])


def test_tool_geotiff_with_bands(tiny, geotiff, tmp_path):
    path, _ = geotiff
    assert _run_tool(tiny, path, tmp_path, '--tasks', 'seg', 'det', '--bands', '4,1,2',
                     '--scale', 'percentile:1,99') == 0
    summary = _check_tool_outputs(str(tmp_path), 'top_potsdam_2_13_RGBIR', (90, 110),
                                  tasks=('seg', 'det'))
    assert summary['bands'] == '4,1,2' and 'cls' not in summary
    api = inference_multitask(tiny['model'], path, tasks=['seg'], bands='4,1,2',
                              scale='percentile:1,99')
    labels = cv2.imread(summary['seg']['label_map'], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, api['seg']['label_map'])


@pytest.mark.parametrize('compress,tiled', [('lzw', True), ('deflate', False)])
def test_tool_compressed_geotiff(tiny, geotiff, tmp_path, compress, tiled):
    path, data = geotiff
    packed = write_geotiff(str(tmp_path / 'top_potsdam_2_13_RGBIR.tif'), data,
                           compress=compress, tiled=tiled)
    for image, out in ((path, tmp_path / 'plain'), (packed, tmp_path / 'packed')):
        assert _run_tool(tiny, image, out, '--bands', '4,1,2', '--score-thr', '0.02') == 0
    results = [json.load(open(tmp_path / d / 'top_potsdam_2_13_RGBIR_result.json'))
               for d in ('plain', 'packed')]
    for result in results:
        del result['image'], result['det_image'], result['seg']['label_map'], \
            result['seg']['overlay']
    assert results[0] == results[1]


def test_tool_large_image(tiny, tmp_path):
    image = str(tmp_path / 'big.jpg')
    cv2.imwrite(image, _random_rgb(3000, 3000, seed=3))
    out = tmp_path / 'out'
    assert _run_tool(tiny, image, out, '--score-thr', '0.0') == 0
    summary = _check_tool_outputs(str(out), 'big', (3000, 3000))
    assert len(summary['det']) == 20
    assert all(0 <= v <= 3000 for d in summary['det'] for v in d['bbox'])


@pytest.mark.parametrize('kind', ['missing', 'text', 'truncated_jpeg', 'truncated_tiff'])
def test_tool_bad_image_exit_2_nothing_written(tiny, jpeg, geotiff, tmp_path, capsys, kind):
    path = _bad_file(tmp_path, kind, jpeg, geotiff[0])
    out = tmp_path / 'out'
    assert _run_tool(tiny, path, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: cannot read image')
    assert path in err
    assert not out.exists()


def test_tool_exit_code_in_a_process(tiny, tmp_path):
    text = tmp_path / 'readme.png'
    text.write_text('not a png\n')
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, osp.join(REPO, TOOL), tiny['config'], tiny['ckpt'],
                           str(text), '--out-dir', str(out)], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: cannot read image {text}: not an image (unrecognised file format)')
    assert not out.exists()
