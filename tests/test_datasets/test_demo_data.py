"""Tests of rscotr.datasets.demo_data: official layouts and determinism."""
import hashlib
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
import zipfile

import cv2
import numpy as np
import pytest
import tifffile

from rscotr.datasets import build_task_dataset
from rscotr.datasets.demo_data import (EXTRA_CLS_CLASSES, EXTRA_DET_CLASSES,
                                       MARKER, make_demo_data, make_dior)
from rscotr.datasets.meta import (DIOR_CLASSES, POTSDAM_IMAGE_SOURCES,
                                  POTSDAM_LABEL_SOURCES, POTSDAM_PALETTE,
                                  POTSDAM_TRAIN_TILES, POTSDAM_VAL_TILES,
                                  RESISC45_CLASSES)

SMALL_TRAIN_TILES = ('2_10', '2_11', '3_10')
SMALL_VAL_TILES = ('2_13', '5_15')


def _tree_digest(root: str) -> dict:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = osp.join(dirpath, f)
            with open(path, 'rb') as fh:
                out[osp.relpath(path, root)] = hashlib.sha1(
                    fh.read()).hexdigest()
    return out


def test_resisc45_layout(demo_raw, tiny):
    root = osp.join(demo_raw, 'NWPU-RESISC45')
    entries = sorted(os.listdir(root))
    assert MARKER in entries
    assert sorted(e for e in entries if e != MARKER) == sorted(
        RESISC45_CLASSES)
    assert len(RESISC45_CLASSES) == 45
    for name in RESISC45_CLASSES:
        files = sorted(os.listdir(osp.join(root, name)))
        n = tiny['resisc45_per_class']
        assert files == [f'{name}_{k:03d}.jpg' for k in range(1, n + 1)]
    img = cv2.imread(osp.join(root, 'airplane', 'airplane_001.jpg'))
    assert img.shape == (256, 256, 3)
    with open(osp.join(root, 'wetland', 'wetland_003.jpg'), 'rb') as f:
        assert f.read(2) == b'\xff\xd8'


def test_resisc45_classes_look_different(demo_raw):
    """Per-class mean colours are far apart (classes are learnable)."""
    root = osp.join(demo_raw, 'NWPU-RESISC45')
    means = []
    for name in RESISC45_CLASSES[:9]:  # same texture kind, 9 colours
        img = cv2.imread(osp.join(root, name, f'{name}_001.jpg'))
        means.append(img.reshape(-1, 3).mean(0))
    means = np.array(means)
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(9, dtype=bool)].min() > 10


def test_dior_layout(demo_raw, tiny):
    root = osp.join(demo_raw, 'DIOR')
    n_tv, n_test = tiny['dior_trainval'], tiny['dior_test']
    size = tiny['dior_img_size']
    tv = sorted(os.listdir(osp.join(root, 'JPEGImages-trainval')))
    test = sorted(os.listdir(osp.join(root, 'JPEGImages-test')))
    assert tv == [f'{i:05d}.jpg' for i in range(1, n_tv + 1)]
    assert test == [
        f'{i:05d}.jpg' for i in range(n_tv + 1, n_tv + n_test + 1)
    ]
    ann_dir = osp.join(root, 'Annotations', 'Horizontal Bounding Boxes')
    assert sorted(os.listdir(ann_dir)) == [
        f'{i:05d}.xml' for i in range(1, n_tv + n_test + 1)
    ]
    sets = {}
    for split in ('train', 'val', 'test'):
        with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt')) as f:
            sets[split] = f.read().split('\n')
        assert sets[split][-1] == ''  # newline-terminated
        sets[split] = sets[split][:-1]
    assert not set(sets['train']) & set(sets['val'])
    assert sorted(sets['train'] + sets['val']) == [t[:5] for t in tv]
    assert sets['test'] == [t[:5] for t in test]
    assert len(sets['train']) == n_tv // 2

    n_empty = 0
    names = set()
    for fname in sorted(os.listdir(ann_dir)):
        img_id = fname[:5]
        folder = ('JPEGImages-test'
                  if img_id in sets['test'] else 'JPEGImages-trainval')
        img = cv2.imread(osp.join(root, folder, f'{img_id}.jpg'))
        assert img.shape == (size, size, 3)
        ann = ET.parse(osp.join(ann_dir, fname)).getroot()
        assert ann.tag == 'annotation'
        assert ann.find('filename').text == f'{img_id}.jpg'
        assert ann.find('source/database').text == 'DIOR'
        assert [ann.find(f'size/{k}').text
                for k in ('width', 'height', 'depth')] == [str(size),
                                                            str(size), '3']
        objects = ann.findall('object')
        assert len(objects) <= 4
        n_empty += not objects
        for obj in objects:
            assert obj.find('name').text in DIOR_CLASSES
            names.add(obj.find('name').text)
            assert obj.find('pose').text == 'Unspecified'
            assert obj.find('truncated').text == '0'
            assert obj.find('difficult').text == '0'
            x1, y1, x2, y2 = (int(obj.find(f'bndbox/{k}').text)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            lo, hi = int(0.075 * size), int(0.25 * size)
            assert lo <= x2 - x1 <= hi and lo <= y2 - y1 <= hi
    assert n_empty >= 1
    assert len(names) > 5


def test_dior_objects_have_class_colour(tmp_path):
    """The pixel at an object's centre has the class colour."""
    from rscotr.datasets.demo_data import dior_style
    root = str(tmp_path / 'DIOR')
    make_dior(root, seed=3, num_trainval=4, num_test=0, img_size=256)
    ann = ET.parse(
        osp.join(root, 'Annotations', 'Horizontal Bounding Boxes',
                 '00001.xml')).getroot()
    img = cv2.imread(osp.join(root, 'JPEGImages-trainval', '00001.jpg'))
    obj = ann.find('object')
    label = DIOR_CLASSES.index(obj.find('name').text)
    x1, y1, x2, y2 = (int(obj.find(f'bndbox/{k}').text)
                      for k in ('xmin', 'ymin', 'xmax', 'ymax'))
    style = dior_style(label)
    # shapes 2 and 3 have an inner colour at the centre
    expected = style['colour'] if style['shape'] < 2 else style['inner']
    centre = img[(y1 + y2) // 2, (x1 + x2) // 2].astype(float)
    assert np.abs(centre - expected).max() < 40


def test_potsdam_layout(demo_raw, tiny):
    root = osp.join(demo_raw, 'Potsdam')
    size = tiny['potsdam_tile_size']
    tiles = SMALL_TRAIN_TILES + SMALL_VAL_TILES
    assert set(SMALL_TRAIN_TILES) <= set(POTSDAM_TRAIN_TILES)
    assert set(SMALL_VAL_TILES) <= set(POTSDAM_VAL_TILES)
    expected_dirs = {s[0] for s in POTSDAM_IMAGE_SOURCES.values()}
    expected_dirs |= {s[0] for s in POTSDAM_LABEL_SOURCES.values()}
    assert expected_dirs == {
        '2_Ortho_RGB', '3_Ortho_IRRG', '4_Ortho_RGBIR', '5_Labels_all',
        '5_Labels_all_noBoundary'
    }
    assert set(os.listdir(root)) == expected_dirs | {MARKER}
    palette = {tuple(c) for c in POTSDAM_PALETTE}
    for tile in tiles:
        arrays = {}
        for suffix, folder, bands in (
            ('RGB', '2_Ortho_RGB', 3),
            ('IRRG', '3_Ortho_IRRG', 3),
            ('RGBIR', '4_Ortho_RGBIR', 4),
            ('label', '5_Labels_all', 3),
            ('label_noBoundary', '5_Labels_all_noBoundary', 3),
        ):
            path = osp.join(root, folder, f'top_potsdam_{tile}_{suffix}.tif')
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                arr = page.asarray()
                tags = {t.code for t in page.tags.values()}
            assert {33550, 33922, 34735} <= tags  # GeoTIFF
            assert arr.shape == (size, size, bands)
            assert arr.dtype == np.uint8
            arrays[suffix] = arr
        rgbir = arrays['RGBIR']
        np.testing.assert_array_equal(arrays['RGB'], rgbir[..., :3])
        np.testing.assert_array_equal(arrays['IRRG'], rgbir[..., [3, 0, 1]])
        colours = {tuple(c) for c in np.unique(
            arrays['label'].reshape(-1, 3), axis=0)}
        assert colours <= palette
        nb = arrays['label_noBoundary']
        nb_colours = {tuple(c) for c in np.unique(nb.reshape(-1, 3), axis=0)}
        assert nb_colours <= palette | {(0, 0, 0)}
        black = (nb == 0).all(-1)
        assert 0 < black.mean() < 0.5
        np.testing.assert_array_equal(nb[~black], arrays['label'][~black])


def test_potsdam_all_classes_present(demo_raw):
    root = osp.join(demo_raw, 'Potsdam', '5_Labels_all')
    colours = set()
    for f in os.listdir(root):
        lab = tifffile.imread(osp.join(root, f))
        colours |= {tuple(c) for c in np.unique(lab.reshape(-1, 3), axis=0)}
    assert colours == {tuple(c) for c in POTSDAM_PALETTE}


def test_potsdam_zipped(tmp_path):
    make_demo_data(
        tmp_path, datasets=['potsdam'], potsdam_tile_size=64,
        potsdam_zipped=True)
    root = tmp_path / 'Potsdam'
    assert sorted(os.listdir(root)) == sorted([
        MARKER, '2_Ortho_RGB.zip', '3_Ortho_IRRG.zip', '4_Ortho_RGBIR.zip',
        '5_Labels_all.zip', '5_Labels_all_noBoundary.zip'
    ])
    with zipfile.ZipFile(root / '5_Labels_all_noBoundary.zip') as zf:
        names = zf.namelist()
    assert '5_Labels_all_noBoundary/top_potsdam_2_10_label_noBoundary.tif' \
        in names
    assert len(names) == 5


def test_deterministic(tmp_path):
    kwargs = dict(
        resisc45_per_class=1,
        dior_img_size=96,
        dior_trainval=4,
        dior_test=2,
        potsdam_tile_size=64,
        extra=True,
        extra_cls_per_class=3,
        extra_det_images=5)
    make_demo_data(tmp_path / 'a', seed=7, **kwargs)
    make_demo_data(tmp_path / 'b', seed=7, **kwargs)
    make_demo_data(tmp_path / 'c', seed=8, **kwargs)
    a, b, c = (_tree_digest(str(tmp_path / k)) for k in 'abc')
    assert a == b
    assert set(a) == set(c)
    for name in ('NWPU-RESISC45', 'DIOR', 'Potsdam', 'extra_cls/images',
                 'extra_cls/meta', 'extra_det/images',
                 'extra_det/annotations'):
        differ = [
            k for k in a
            if k.startswith(name) and not k.endswith(MARKER) and a[k] != c[k]
        ]
        assert differ, name
    # A data set's bytes do not depend on which others are generated.
    make_demo_data(tmp_path / 'd', seed=7, datasets=['dior'], **kwargs)
    d = _tree_digest(str(tmp_path / 'd'))
    assert d == {
        k: v
        for k, v in a.items() if k.split('/')[0] in ('DIOR', 'extra_cls',
                                                     'extra_det')
    }
    make_demo_data(tmp_path / 'e', seed=7, datasets=['extra_det'],
                   extra_det_images=5)
    e = _tree_digest(str(tmp_path / 'e'))
    assert e == {k: v for k, v in a.items() if k.startswith('extra_det/')}


def test_extra_cls_layout_and_splits(tmp_path):
    make_demo_data(tmp_path, datasets=[], extra=True, extra_cls_per_class=10,
                   extra_det_images=5)
    root = tmp_path / 'extra_cls'
    assert sorted(os.listdir(root)) == sorted([MARKER, 'images', 'meta'])
    assert sorted(os.listdir(root / 'images')) == sorted(EXTRA_CLS_CLASSES)
    assert len(EXTRA_CLS_CLASSES) == 10
    files = []
    for name in EXTRA_CLS_CLASSES:
        names = sorted(os.listdir(root / 'images' / name))
        assert names == [f'{name}_{k:03d}.jpg' for k in range(1, 11)]
        files += [f'{name}/{f}' for f in names]
    assert cv2.imread(str(root / 'images' / files[0])).shape == (128, 128, 3)
    splits = {}
    for split in ('train', 'val', 'test'):
        text = (root / 'meta' / f'{split}.txt').read_text()
        assert text.endswith('\n')
        splits[split] = text.splitlines()
    assert sorted(sum(splits.values(), [])) == sorted(files)  # a partition
    for name in EXTRA_CLS_CLASSES:  # 50/20/30 % of every class
        assert [sum(f.startswith(name + '/') for f in splits[s])
                for s in ('train', 'val', 'test')] == [5, 2, 3]
    # read by the standard class-folder dataset, the classes its folders
    ds = build_task_dataset(
        dict(type='ClassFolderDataset', data_prefix=str(root / 'images'),
             ann_file=str(root / 'meta' / 'val.txt'), pipeline=[]), 'cls')
    assert ds.CLASSES == tuple(sorted(EXTRA_CLS_CLASSES)) and len(ds) == 20


def test_extra_cls_classes_look_different(tmp_path):
    """Per-class mean colours are far apart (the classes are learnable)."""
    make_demo_data(tmp_path, datasets=['extra_cls'], extra_cls_per_class=3)
    means = []
    for name in EXTRA_CLS_CLASSES:
        folder = tmp_path / 'extra_cls' / 'images' / name
        imgs = [cv2.imread(str(folder / f)) for f in sorted(os.listdir(folder))]
        means.append(np.mean([i.reshape(-1, 3).mean(0) for i in imgs], 0))
    means = np.array(means)
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(10, dtype=bool)].min() > 10


def test_extra_det_layout_coco_and_object_colours(tmp_path):
    make_demo_data(tmp_path, datasets=['extra_det'], extra_det_images=20)
    root = tmp_path / 'extra_det'
    assert sorted(os.listdir(root)) == sorted([MARKER, 'images',
                                               'annotations'])
    images = sorted(os.listdir(root / 'images'))
    assert images == [f'{k:04d}.jpg' for k in range(1, 21)]
    assert sorted(os.listdir(root / 'annotations')) == [
        'test.json', 'train.json', 'val.json'
    ]
    seen, n_objects, classes = [], [], set()
    # the colour at a point inside each shape: (B, G, R) of a storage tank's
    # grey centre, a vehicle's red, a ship's yellow
    colours = {1: (150, 150, 160), 2: (40, 40, 210), 3: (40, 215, 235)}
    for split, count in (('train', 12), ('val', 4), ('test', 4)):
        coco = json.loads((root / 'annotations' / f'{split}.json').read_text())
        assert [c['name'] for c in coco['categories']] == list(
            EXTRA_DET_CLASSES)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3]
        assert len(coco['images']) == count
        for img in coco['images']:
            seen.append(img['file_name'])
            assert (img['width'], img['height']) == (256, 256)
            pixels = cv2.imread(str(root / 'images' / img['file_name']))
            anns = [a for a in coco['annotations']
                    if a['image_id'] == img['id']]
            n_objects.append(len(anns))
            for a in anns:
                x, y, w, h = a['bbox']
                assert 0 <= x and 0 <= y and x + w <= 256 and y + h <= 256
                assert w > 0 and h > 0 and a['area'] == w * h
                cy = y + (2 * h) // 3 if a['category_id'] == 3 else y + h // 2
                centre = pixels[cy, x + w // 2].astype(float)
                assert np.abs(centre - colours[a['category_id']]).max() < 40
                classes.add(a['category_id'])
    assert sorted(seen) == images  # a partition of the images
    assert n_objects.count(0) == 2  # the 5th and the 15th
    assert 1 <= min(n for n in n_objects if n) and max(n_objects) <= 6
    assert classes == {1, 2, 3}
    # read by the standard COCO dataset, the classes its categories
    ds = build_task_dataset(
        dict(type='CocoJsonDataset',
             ann_file=str(root / 'annotations' / 'test.json'),
             img_prefix=str(root / 'images') + '/', filter_empty_gt=False,
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='LoadAnnotations', with_bbox=True)]), 'det')
    assert ds.CLASSES == EXTRA_DET_CLASSES and len(ds) == 4
    for i in range(4):
        sample = ds[i]
        assert sample['img'].shape == (256, 256, 3)
        assert len(sample['gt_bboxes']) == len(sample['gt_labels'])


def test_refuses_to_replace_real_data(tmp_path):
    real = tmp_path / 'DIOR'
    real.mkdir()
    (real / 'precious.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not demo data'):
        make_demo_data(tmp_path, datasets=['dior'], dior_img_size=64)
    assert (real / 'precious.txt').exists()
    # Earlier demo data is replaced.
    make_demo_data(tmp_path / 'demo', datasets=['dior'], dior_img_size=64,
                   dior_trainval=4, dior_test=2)
    make_demo_data(tmp_path / 'demo', datasets=['dior'], dior_img_size=64,
                   dior_trainval=2, dior_test=2)
    assert len(os.listdir(tmp_path / 'demo' / 'DIOR' /
                          'JPEGImages-trainval')) == 2


def test_cli(tmp_path, capsys, tool_main):
    main = tool_main('tools/misc/make_demo_data.py')
    rc = main([
        str(tmp_path), '--seed', '1', '--resisc45-per-class', '1',
        '--dior-img-size', '64', '--dior-trainval', '2', '--dior-test', '1',
        '--potsdam-tile-size', '32'
    ])
    assert rc == 0
    out = capsys.readouterr().out
    assert 'NWPU-RESISC45' in out and 'DIOR' in out and 'Potsdam' in out
    assert (tmp_path / 'Potsdam' / '4_Ortho_RGBIR' /
            'top_potsdam_5_15_RGBIR.tif').exists()
    assert not (tmp_path / 'extra_cls').exists()
    rc = main([
        str(tmp_path / 'extra'), '--datasets', '--extra',
        '--extra-cls-per-class', '3', '--extra-det-images', '5'
    ])
    assert rc == 0
    out = capsys.readouterr().out
    assert 'extra_cls: 10 classes x 3 images' in out and 'extra_det' in out
    assert sorted(os.listdir(tmp_path / 'extra')) == ['extra_cls',
                                                      'extra_det']
