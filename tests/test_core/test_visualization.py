"""Tests of rscotr.core.visualization (drawing, dataset image paths, plots) and
tools/analysis/plot_logs.py."""
import json
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from rscotr.core.visualization import (dataset_image_path, draw_cls_topk, draw_det_boxes,
                                       draw_task_result, fit_to_square, get_palette,
                                       label_map_to_color, overlay_seg, panel_grid, tile_images)
from rscotr.core.visualization.plots import (confusion_matrix, load_json_log, log_series,
                                             plot_confusion_matrix, plot_log_curves,
                                             resolve_log_keys)
from rscotr.datasets.meta import POTSDAM_PALETTE

from ..tiny_rscotr import tool_main

def _img(h=100, w=120, value=40):
    return np.full((h, w, 3), value, np.uint8)


def test_palette_is_deterministic_and_keeps_known_colours():
    a, b = get_palette(20), get_palette(20)
    assert a.shape == (20, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    known = get_palette(7, POTSDAM_PALETTE[:5])
    assert np.array_equal(known[:5], np.array(POTSDAM_PALETTE[:5], np.uint8))
    assert known.shape == (7, 3)


def test_label_map_colours_and_overlay():
    palette = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    labels = np.array([[0, 1], [255, 1]])
    colour = label_map_to_color(labels, palette)
    assert colour.tolist() == [[[255, 0, 0], [0, 255, 0]], [[0, 0, 0], [0, 255, 0]]]
    img = _img(2, 2)
    assert np.array_equal(overlay_seg(img, labels, palette, alpha=0.0), img)
    assert np.array_equal(overlay_seg(img, labels, palette, alpha=1.0), colour)
    half = overlay_seg(img, labels, palette, alpha=0.5)
    assert half[0, 0].tolist() == [148, 20, 20] or abs(int(half[0, 0, 0]) - 148) <= 1
    with pytest.raises(ValueError, match='differ in size'):
        overlay_seg(_img(3, 3), labels, palette)


def test_draw_det_boxes():
    img = _img()
    dets = [{'bbox': [10.0, 20.0, 60.0, 80.0], 'label': 'ship', 'score': 0.9},
            {'bbox': [-5.0, 50.0, 500.0, 99.0], 'label': 'vehicle', 'score': 0.5}]
    names = ['airplane', 'ship', 'vehicle']
    drawn = draw_det_boxes(img, dets, names)
    assert drawn.shape == img.shape and drawn.dtype == np.uint8
    assert np.array_equal(img, _img())  # the input is not changed
    ship = get_palette(3)[1]
    assert drawn[70, 10].tolist() == ship.tolist()  # left edge of the ship box
    assert np.array_equal(draw_det_boxes(img, [], names), img)
    # without class names the colours follow the order of appearance
    assert draw_det_boxes(img, dets).shape == img.shape


def test_ground_truth_boxes_without_score_are_labelled_by_class_only():
    img = _img(200, 200)
    gt = draw_det_boxes(img, [{'bbox': [20, 60, 120, 150], 'label': 'ship'}], ['ship'])
    scored = draw_det_boxes(img, [{'bbox': [20, 60, 120, 150], 'label': 'ship', 'score': 0.9}],
                            ['ship'])
    assert gt[100, 20].tolist() == get_palette(1)[0].tolist()  # the box is drawn

    def label_right_end(out):  # the label box sits above the box (rows 30..59)
        return np.nonzero((out[30:60] != 40).any(axis=(0, 2)))[0].max()

    # the label box of 'ship' is narrower than that of 'ship 0.90'
    assert 20 < label_right_end(gt) < label_right_end(scored)


def test_fit_to_square_keeps_the_ratio_and_centres():
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, :50] = 200  # left half light
    out = fit_to_square(img, 40, fill=(255, 0, 0))
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    # 100x50 -> 40x20, centred: rows 10..29 hold the image, the rest is fill
    assert out[0, 5].tolist() == [255, 0, 0] and out[39, 5].tolist() == [255, 0, 0]
    assert out[15, 5].tolist() == [200, 200, 200] and out[15, 35].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match='positive'):
        fit_to_square(img, 0)


def test_tile_images_places_cells_row_by_row():
    cells = [_img(10, 10, v) for v in (10, 20, 30)]
    out = tile_images(cells, 10, cols=2, gap=2, fill=(255, 255, 255))
    assert out.shape == (22, 22, 3)
    assert out[0, 0, 0] == 10 and out[0, 12, 0] == 20 and out[12, 0, 0] == 30
    assert out[12, 12].tolist() == [255, 255, 255]  # no fourth image
    assert out[0, 10].tolist() == [255, 255, 255]  # the gap
    with pytest.raises(ValueError):
        tile_images([], 10, cols=2)


def test_panel_grid_layout_and_captions():
    panels = [(f'panel {i}', _img(30, 60, 10 * (i + 1))) for i in range(4)]
    out = panel_grid(panels, side=60, cols=3, gap=4, caption_height=12)
    # 2 rows of (caption 12 + image 60) with gaps of 4 around; 3 columns of 60
    assert out.shape == (4 + 2 * (12 + 60 + 4), 4 + 3 * (60 + 4), 3)
    # panel 1 (second column, first row): its image is fitted 60x30, centred vertically
    assert out[4 + 12 + 30, 4 + 64 + 30].tolist() == [20, 20, 20]
    assert out[4 + 12 + 2, 4 + 64 + 30].tolist() == [255, 255, 255]  # above the image: fill
    assert (out[4:4 + 12, 4:64] != 255).any()  # a caption is written
    assert (out[4 + 76:4 + 76 + 72, 4 + 128:4 + 188] == 255).all()  # no sixth panel
    titled = panel_grid(panels, side=60, cols=3, gap=4, caption_height=12, title='metrics')
    assert titled.shape[0] == out.shape[0] + 12 + 4 and titled.shape[1] == out.shape[1]
    assert (titled[4:16] != 255).any()
    with pytest.raises(ValueError):
        panel_grid([], side=60, cols=3)


def test_draw_cls_and_task_results():
    img = _img(64, 64)
    drawn = draw_cls_topk(img, [('forest', 0.7), ('meadow', 0.2)], gt_label='forest')
    assert drawn.shape == img.shape and not np.array_equal(drawn[:20], img[:20])
    assert np.array_equal(drawn[-5:], img[-5:])
    cls = draw_task_result('cls', img, {'top5': [('forest', 0.7)]})
    det = draw_task_result('det', img, [{'bbox': [1, 1, 30, 30], 'label': 'a', 'score': 0.5}],
                           ['a', 'b'])
    seg = draw_task_result('seg', img, {'label_map': np.zeros((64, 64), np.uint8)},
                           ['impervious_surface', 'building'], POTSDAM_PALETTE)
    for out in (cls, det, seg):
        assert out.shape == img.shape and out.dtype == np.uint8
    assert seg[0, 0].tolist() == [148, 148, 148]  # white impervious at alpha 0.5 over 40
    with pytest.raises(KeyError):
        draw_task_result('panoptic', img, None)


def test_dataset_image_path_of_each_library():
    mmcls = SimpleNamespace(data_infos=[{'img_prefix': '/d/test',
                                         'img_info': {'filename': 'forest/forest_001.jpg'}}])
    mmdet = SimpleNamespace(data_infos=[{'filename': 'JPEGImages-test/11726.jpg'}],
                            img_prefix='/DIOR')
    mmseg = SimpleNamespace(img_infos=[{'filename': '2_13_0_0.png'}], img_dir='/p/img_dir/val')
    assert dataset_image_path(mmcls, 0) == '/d/test/forest/forest_001.jpg'
    assert dataset_image_path(mmdet, 0) == '/DIOR/JPEGImages-test/11726.jpg'
    assert dataset_image_path(mmseg, 0) == '/p/img_dir/val/2_13_0_0.png'
    with pytest.raises(TypeError):
        dataset_image_path(object(), 0)


def _cells(img, rgb, min_area=400):
    """Bounding boxes (x, y, w, h) of the large regions of colour ``rgb`` (+-2) in a BGR
    picture (thin colour-bar strips and text are smaller than ``min_area``)."""
    mask = (np.abs(img[..., ::-1].astype(int) - rgb).max(-1) <= 2).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return [tuple(s[:4]) for s in stats[1:] if s[4] >= min_area]


def test_confusion_matrix_and_plot(tmp_path):
    matrix = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    out = tmp_path / 'cm.png'
    plot_confusion_matrix(matrix, ['a', 'b', 'c'], out, title='test')
    # rows as percentages of the true class: [50, 50, 0], [0, 100, 0], [50, 0, 50]; on
    # matplotlib's 'Blues' from 0 to 100 % these are its colours at 1.0 and 0.5
    from matplotlib import cm
    dark, mid = ((np.array(cm.get_cmap('Blues')(v)[:3]) * 255).round().astype(int)
                 for v in (1.0, 0.5))
    img = cv2.imread(str(out))
    dark_cells, mid_cells = _cells(img, dark), _cells(img, mid)
    assert len(dark_cells) == 1 and len(mid_cells) == 3  # cells (0, 0) and (0, 1) touch
    # the 3 x 3 grid spanned by those cells; each region in grid cells (column, row, w, h)
    x0 = min(c[0] for c in dark_cells + mid_cells)
    y0 = min(c[1] for c in dark_cells + mid_cells)
    x1 = max(c[0] + c[2] for c in dark_cells + mid_cells)
    y1 = max(c[1] + c[3] for c in dark_cells + mid_cells)
    cw, ch = (x1 - x0) / 3, (y1 - y0) / 3
    assert abs(cw - ch) <= 2  # square cells

    def grid(c):
        return (round((c[0] - x0) / cw), round((c[1] - y0) / ch), round(c[2] / cw),
                round(c[3] / ch))

    assert [grid(c) for c in dark_cells] == [(1, 1, 1, 1)]  # 100 % of class b
    assert sorted(grid(c) for c in mid_cells) == [(0, 0, 2, 1), (0, 2, 1, 1), (2, 2, 1, 1)]
    big = confusion_matrix(np.arange(45), np.arange(45)[::-1], 45)
    plot_confusion_matrix(big, [f'class_{i}' for i in range(45)], tmp_path / 'big.png',
                          normalize=False)
    assert cv2.imread(str(tmp_path / 'big.png')) is not None
    with pytest.raises(ValueError, match='3 classes'):
        plot_confusion_matrix(np.zeros((2, 2)), ['a', 'b', 'c'], tmp_path / 'x.png')


def _write_log(path):
    records = [
        {'env_info': 'x', 'seed': 0},
        {'mode': 'train', 'epoch': 1, 'iter': 10, 'lr': 5e-5, 'time': 0.3,
         'cls.resisc.loss_cls': 3.8, 'cls.resisc.loss': 3.8, 'det.dior.loss': 9.0},
        {'mode': 'train', 'epoch': 1, 'iter': 20, 'lr': 5e-5, 'time': 0.3,
         'cls.resisc.loss_cls': 3.1, 'cls.resisc.loss': 3.1, 'seg.potsdam.loss': 2.0},
        {'mode': 'val', 'epoch': 1, 'iter': 7, 'lr': 5e-5, 'resisc.accuracy_top-1': 12.5,
         'potsdam.mIoU': 0.2},
        {'mode': 'train', 'epoch': 1, 'iter': 30, 'lr': 5e-5, 'time': 0.3,
         'det.dior.loss': 7.5, 'seg.potsdam.loss': 1.5},
    ]
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps(r) for r in records) + '\n')
    return str(path)


def test_json_log_parsing(tmp_path):
    records = load_json_log(_write_log(tmp_path / 'a.log.json'))
    assert len(records) == 4  # the meta line is skipped
    assert resolve_log_keys(records) == ['cls.resisc.loss', 'det.dior.loss', 'seg.potsdam.loss']
    assert resolve_log_keys(records, ['cls.*', 'potsdam.mIoU']) == [
        'cls.resisc.loss_cls', 'cls.resisc.loss', 'potsdam.mIoU']
    with pytest.raises(KeyError, match='no log key matches'):
        resolve_log_keys(records, ['nope.*'])
    xs, ys = log_series(records, 'det.dior.loss')
    assert xs.tolist() == [10, 30] and ys.tolist() == [9.0, 7.5]
    xs, ys = log_series(records, 'potsdam.mIoU')  # evaluation at the last training iteration
    assert xs.tolist() == [20] and ys.tolist() == [0.2]
    bad = tmp_path / 'bad.log.json'
    bad.write_text('{"mode": "train", "iter": 1}\n{not json\n')
    with pytest.raises(ValueError, match='bad.log.json:2'):
        load_json_log(bad)


def test_plot_log_curves_panels(tmp_path):
    records = load_json_log(_write_log(tmp_path / 'a.log.json'))
    doubled = [{k: 2 * v if isinstance(v, float) and k != 'lr' else v for k, v in r.items()}
               for r in records]
    keys = resolve_log_keys(records, ['*.loss', 'resisc.*'])
    panels = plot_log_curves({'a': records, 'b': doubled}, keys, tmp_path / 'c.png')
    assert panels == ['cls.resisc', 'det.dior', 'seg.potsdam', 'resisc (evaluation)']
    # 4 panels on a 3 x 2 grid, each with the curves (markers) of both logs in
    # matplotlib's first two colours; the last two cells are empty
    img = cv2.imread(str(tmp_path / 'c.png'))
    h, w = img.shape[:2]
    first, second = (31, 119, 180), (255, 127, 14)  # 'C0' and 'C1' (RGB)

    def pixels(cell, rgb):
        row, col = divmod(cell, 3)
        part = img[row * h // 2:(row + 1) * h // 2, col * w // 3:(col + 1) * w // 3]
        return int((np.abs(part[..., ::-1].astype(int) - rgb).max(-1) <= 3).sum())

    for cell in range(4):
        assert pixels(cell, first) > 20 and pixels(cell, second) > 20, cell
    for cell in (4, 5):
        assert pixels(cell, first) == 0 and pixels(cell, second) == 0, cell


def test_plot_logs_tool(tmp_path, capsys):
    log = _write_log(tmp_path / '20240101_000000.log.json')
    main = tool_main('tools/analysis/plot_logs.py')
    out = tmp_path / 'curves.png'
    assert main([log, '--keys', 'cls.resisc.loss_cls', 'potsdam.mIoU', '--out', str(out)]) == 0
    assert 'plotted 2 key(s) in 2 panel(s)' in capsys.readouterr().out
    assert cv2.imread(str(out)) is not None
    assert main([log, '--out', str(tmp_path / 'default.png')]) == 0
    assert osp.isfile(tmp_path / 'default.png')
    assert main([log, '--keys', 'missing', '--out', str(tmp_path / 'x.png')]) == 2
    assert 'no log key matches' in capsys.readouterr().err
    assert main([str(tmp_path / 'none.log.json'), '--out', str(tmp_path / 'y.png')]) == 2
    assert not osp.exists(tmp_path / 'x.png') and not osp.exists(tmp_path / 'y.png')
