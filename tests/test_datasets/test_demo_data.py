"""Tests of rscotr.datasets.demo_data: official layouts and determinism."""
import hashlib
import os
import os.path as osp
import xml.etree.ElementTree as ET
import zipfile

import cv2
import numpy as np
import pytest
import tifffile

from rscotr.datasets.demo_data import MARKER, make_demo_data, make_dior
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
        potsdam_tile_size=64)
    make_demo_data(tmp_path / 'a', seed=7, **kwargs)
    make_demo_data(tmp_path / 'b', seed=7, **kwargs)
    make_demo_data(tmp_path / 'c', seed=8, **kwargs)
    a, b, c = (_tree_digest(str(tmp_path / k)) for k in 'abc')
    assert a == b
    assert set(a) == set(c)
    for name in ('NWPU-RESISC45', 'DIOR', 'Potsdam'):
        differ = [
            k for k in a
            if k.startswith(name) and not k.endswith(MARKER) and a[k] != c[k]
        ]
        assert differ, name
    # A data set's bytes do not depend on which others are generated.
    make_demo_data(tmp_path / 'd', seed=7, datasets=['dior'], **kwargs)
    d = _tree_digest(str(tmp_path / 'd'))
    assert d == {k: v for k, v in a.items() if k.startswith('DIOR')}


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
