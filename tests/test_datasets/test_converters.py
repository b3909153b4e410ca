"""Tests of rscotr.datasets.converters on tiny demo data."""
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import tifffile

from rscotr.datasets.converters import (ConversionError, convert_dior,
                                        convert_potsdam, convert_resisc45)
from rscotr.datasets.converters.potsdam import patch_starts
from rscotr.datasets.converters.resisc45 import (read_split_list,
                                                 split_counts)
from rscotr.datasets.demo_data import make_potsdam
from rscotr.datasets.meta import (DIOR_CLASSES, POTSDAM_PALETTE,
                                  RESISC45_CLASSES)

from ..tiny_rscotr import write_geotiff

DIOR_ANN = osp.join('Annotations', 'Horizontal Bounding Boxes')


def _assert_no_output(out: str) -> None:
    """Neither the output nor a temporary sibling was left behind."""
    assert not osp.exists(out)
    assert not glob.glob(f'{out}.tmp-*') and not glob.glob(f'{out}.old-*')


def _files(root: str) -> dict:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(osp.join(dirpath, f), 'rb') as fh:
                out[osp.relpath(osp.join(dirpath, f), root)] = fh.read()
    return out


# ---------------------------------------------------------------- RESISC45
def test_split_counts():
    assert split_counts(700, 0.2, 0.1) == (140, 70, 490)
    assert split_counts(3, 0.4, 0.3) == (1, 1, 1)
    assert split_counts(3, 1.0, 0.0) == (3, 0, 0)


def test_resisc45(demo_raw, tmp_path):
    raw = osp.join(demo_raw, 'NWPU-RESISC45')
    out = str(tmp_path / 'resisc')
    summary = convert_resisc45(
        raw, out, train_ratio=0.4, val_ratio=0.3, show_progress=False)
    assert sorted(os.listdir(out)) == ['meta', 'test', 'train', 'val']
    assert sorted(os.listdir(osp.join(out, 'meta'))) == [
        'classes.txt', 'test.txt', 'train.txt', 'val.txt'
    ]
    with open(osp.join(out, 'meta', 'classes.txt')) as f:
        assert tuple(f.read().splitlines()) == RESISC45_CLASSES
    seen = {}
    for split in ('train', 'val', 'test'):
        assert sorted(os.listdir(osp.join(out, split))) == sorted(
            RESISC45_CLASSES)
        entries = read_split_list(osp.join(out, 'meta', f'{split}.txt'))
        assert len(entries) == 45  # 3 per class -> 1 / 1 / 1
        listed = set()
        for rel, label in entries:
            name, fname = rel.split('/')
            assert RESISC45_CLASSES[label] == name
            assert fname.startswith(name + '_')
            assert osp.isfile(osp.join(out, split, rel))
            assert rel not in seen
            seen[rel] = split
            listed.add(rel)
        on_disk = {
            f'{c}/{f}'
            for c in RESISC45_CLASSES
            for f in os.listdir(osp.join(out, split, c))
        }
        assert on_disk == listed
        assert summary.totals[split] == 45
        assert set(summary.counts[split].values()) == {1}
    # Every raw image lands in exactly one split, unchanged.
    raw_files = {
        f'{c}/{f}'
        for c in RESISC45_CLASSES for f in os.listdir(osp.join(raw, c))
    }
    assert set(seen) == raw_files
    rel, split = next(iter(seen.items()))
    with open(osp.join(raw, rel), 'rb') as a, \
            open(osp.join(out, split, rel), 'rb') as b:
        assert a.read() == b.read()
    assert 'airplane' in summary.format()


def test_resisc45_seed_and_link(demo_raw, tmp_path):
    raw = osp.join(demo_raw, 'NWPU-RESISC45')
    a, b, c = (str(tmp_path / k) for k in 'abc')
    convert_resisc45(raw, a, 0.4, 0.3, seed=1, show_progress=False)
    convert_resisc45(
        raw, b, 0.4, 0.3, seed=1, link=True, show_progress=False)
    convert_resisc45(raw, c, 0.4, 0.3, seed=2, show_progress=False)
    lists = {
        k: open(osp.join(k, 'meta', 'train.txt')).read()
        for k in (a, b, c)
    }
    assert lists[a] == lists[b] != lists[c]
    rel = read_split_list(osp.join(b, 'meta', 'train.txt'))[0][0]
    assert os.stat(osp.join(b, 'train', rel)).st_ino == os.stat(
        osp.join(raw, rel)).st_ino


@pytest.mark.parametrize('problem', [
    'missing_class', 'unknown_class', 'empty_class', 'corrupt_jpeg',
    'truncated_jpeg'
])
def test_resisc45_bad_input(raw_copy, tmp_path, problem):
    raw = raw_copy('NWPU-RESISC45')
    if problem == 'missing_class':
        shutil.rmtree(osp.join(raw, 'snowberg'))
        match = 'missing class folder .snowberg'
    elif problem == 'unknown_class':
        os.rename(osp.join(raw, 'snowberg'), osp.join(raw, 'snowberge'))
        match = 'unknown class folder .snowberge'
    elif problem == 'empty_class':
        for f in os.listdir(osp.join(raw, 'harbor')):
            os.remove(osp.join(raw, 'harbor', f))
        match = 'harbor: class folder has no images'
    elif problem == 'corrupt_jpeg':
        with open(osp.join(raw, 'ship', 'ship_002.jpg'), 'wb') as f:
            f.write(b'this is not a jpeg')
        match = 'ship_002.jpg: not a readable image'
    else:
        path = osp.join(raw, 'ship', 'ship_002.jpg')
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
        match = 'ship_002.jpg: truncated JPEG'
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError, match=match):
        # ratios that put every image in some split
        convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
    _assert_no_output(out)


def test_atomic_overwrite(demo_raw, raw_copy, tmp_path):
    raw = osp.join(demo_raw, 'NWPU-RESISC45')
    out = str(tmp_path / 'out')
    convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
    before = _files(out)
    with pytest.raises(ConversionError, match='already exists'):
        convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
    # A failed conversion with --overwrite keeps the previous output.
    bad = raw_copy('NWPU-RESISC45')
    with open(osp.join(bad, 'ship', 'ship_003.jpg'), 'wb') as f:
        f.write(b'')
    with pytest.raises(ConversionError, match='ship_003.jpg: empty file'):
        convert_resisc45(
            bad, out, 0.4, 0.3, overwrite=True, show_progress=False)
    assert _files(out) == before
    assert not glob.glob(f'{out}.tmp-*')
    # A good one replaces it.
    convert_resisc45(
        raw, out, 0.4, 0.3, seed=5, overwrite=True, show_progress=False)
    assert _files(out) != before
    assert not glob.glob(f'{out}.tmp-*') and not glob.glob(f'{out}.old-*')


def test_resisc45_cli(demo_raw, raw_copy, tmp_path, tool_main, capsys):
    main = tool_main('tools/dataset_converters/resisc45.py')
    raw = osp.join(demo_raw, 'NWPU-RESISC45')
    assert main([raw, '-o', str(tmp_path / 'ok'), '--no-progress']) == 0
    assert 'test: ' in capsys.readouterr().out
    bad = raw_copy('NWPU-RESISC45')
    os.mkdir(osp.join(bad, 'volcano'))
    assert main([bad, '-o', str(tmp_path / 'bad'), '--no-progress']) == 2
    assert 'volcano' in capsys.readouterr().err
    _assert_no_output(str(tmp_path / 'bad'))


# -------------------------------------------------------------------- DIOR
def _xml_boxes(root: str, img_id: str) -> list:
    import xml.etree.ElementTree as ET
    ann = ET.parse(osp.join(root, DIOR_ANN, f'{img_id}.xml')).getroot()
    return [(obj.find('name').text,
             [int(obj.find(f'bndbox/{k}').text)
              for k in ('xmin', 'ymin', 'xmax', 'ymax')])
            for obj in ann.findall('object')]


def test_dior(demo_raw, tmp_path, tiny):
    raw = osp.join(demo_raw, 'DIOR')
    out = str(tmp_path / 'coco')
    summary = convert_dior(raw, out, show_progress=False)
    assert os.listdir(out) == ['annotations']
    assert sorted(os.listdir(osp.join(out, 'annotations'))) == [
        'dior_test.json', 'dior_train.json', 'dior_trainval.json',
        'dior_val.json'
    ]
    data = {}
    for split in ('train', 'val', 'test', 'trainval'):
        with open(osp.join(out, 'annotations', f'dior_{split}.json')) as f:
            data[split] = json.load(f)
    size = tiny['dior_img_size']
    for split in ('train', 'val', 'test'):
        coco = data[split]
        assert [c['name'] for c in coco['categories']] == list(DIOR_CLASSES)
        assert [c['id'] for c in coco['categories']] == list(range(1, 21))
        with open(osp.join(raw, 'ImageSets', 'Main', f'{split}.txt')) as f:
            ids = f.read().split()
        assert [im['id'] for im in coco['images']] == [int(i) for i in ids]
        folder = 'JPEGImages-test' if split == 'test' else \
            'JPEGImages-trainval'
        anns_of = {}
        for ann in coco['annotations']:
            anns_of.setdefault(ann['image_id'], []).append(ann)
        for im, img_id in zip(coco['images'], ids):
            assert im['file_name'] == f'{folder}/{img_id}.jpg'
            assert osp.isfile(osp.join(raw, im['file_name']))
            assert (im['width'], im['height']) == (size, size)
            anns = anns_of.get(im['id'], [])
            expected = [(DIOR_CLASSES.index(name) + 1,
                         [x1, y1, x2 - x1, y2 - y1])
                        for name, (x1, y1, x2, y2) in _xml_boxes(raw, img_id)]
            assert [(a['category_id'], a['bbox']) for a in anns] == expected
            for a in anns:
                assert a['iscrowd'] == 0
                assert a['area'] == a['bbox'][2] * a['bbox'][3]
        assert [a['id'] for a in coco['annotations']] == list(
            range(1, len(coco['annotations']) + 1))
        assert summary.totals[split] == len(ids)
        assert sum(summary.counts[split].values()) == len(
            coco['annotations'])
    assert sum(summary.totals[s] for s in ('train', 'val', 'test')) == (
        tiny['dior_trainval'] + tiny['dior_test'])
    empty_images = sum(
        1 for s in ('train', 'val', 'test') for im in data[s]['images']
        if not any(a['image_id'] == im['id']
                   for a in data[s]['annotations']))
    assert empty_images >= 1  # images without objects are kept
    tv = data['trainval']
    assert [im['id'] for im in tv['images']] == [
        im['id'] for s in ('train', 'val') for im in data[s]['images']
    ]
    assert len(tv['annotations']) == len(data['train']['annotations']) + len(
        data['val']['annotations'])


def test_dior_loads_in_pycocotools(demo_raw, tmp_path):
    COCO = pytest.importorskip('pycocotools.coco').COCO
    out = str(tmp_path / 'coco')
    convert_dior(osp.join(demo_raw, 'DIOR'), out, show_progress=False)
    coco = COCO(osp.join(out, 'annotations', 'dior_trainval.json'))
    assert len(coco.getCatIds()) == 20
    assert len(coco.getImgIds()) == 8


def _edit_xml(raw: str, img_id: str, old: str, new: str) -> None:
    path = osp.join(raw, DIOR_ANN, f'{img_id}.xml')
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, 'w') as f:
        f.write(text.replace(old, new, 1))


def _first_box_image(raw: str) -> str:
    for f in sorted(os.listdir(osp.join(raw, DIOR_ANN))):
        if _xml_boxes(raw, f[:5]):
            return f[:5]
    raise AssertionError('no image with boxes')


def test_dior_unknown_class(raw_copy, tmp_path):
    raw = raw_copy('DIOR')
    img_id = _first_box_image(raw)
    name = _xml_boxes(raw, img_id)[0][0]
    _edit_xml(raw, img_id, f'<name>{name}</name>', '<name>Airplane_X</name>')
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError) as e:
        convert_dior(raw, out, show_progress=False)
    assert "'Airplane_X'" in str(e.value)
    assert e.value.path.endswith(f'{img_id}.xml')
    _assert_no_output(out)


def test_dior_missing_image(raw_copy, tmp_path):
    raw = raw_copy('DIOR')
    os.remove(osp.join(raw, 'JPEGImages-test', '00010.jpg'))
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError, match='00010.jpg: image listed in '):
        convert_dior(raw, out, show_progress=False)
    _assert_no_output(out)


def test_dior_corrupt_image(raw_copy, tmp_path):
    raw = raw_copy('DIOR')
    with open(osp.join(raw, 'JPEGImages-trainval', '00002.jpg'), 'wb') as f:
        f.write(b'garbage')
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError, match='00002.jpg: not a readable'):
        convert_dior(raw, out, show_progress=False)
    _assert_no_output(out)


def test_dior_size_mismatch(raw_copy, tmp_path, tiny):
    raw = raw_copy('DIOR')
    size = tiny['dior_img_size']
    _edit_xml(raw, '00003', f'<width>{size}</width>', '<width>800</width>')
    with pytest.raises(ConversionError, match='00003.xml: <size> says 800'):
        convert_dior(raw, str(tmp_path / 'out'), show_progress=False)


def test_dior_bad_boxes(raw_copy, tmp_path, tiny):
    raw = raw_copy('DIOR')
    img_id = _first_box_image(raw)
    (x1, _, x2, _) = _xml_boxes(raw, img_id)[0][1]
    _edit_xml(raw, img_id, f'<xmax>{x2}</xmax>', f'<xmax>{x1}</xmax>')
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError, match=rf'{img_id}.xml: degenerate'):
        convert_dior(raw, out, show_progress=False)
    _assert_no_output(out)
    summary = convert_dior(
        raw, out, drop_bad_boxes=True, show_progress=False)
    assert '1 bad boxes dropped' in summary.format()
    # A box sticking out of the image is clipped to it.
    size = tiny['dior_img_size']
    _edit_xml(raw, img_id, f'<xmax>{x1}</xmax>', f'<xmax>{size + 50}</xmax>')
    out2 = str(tmp_path / 'out2')
    summary = convert_dior(raw, out2, show_progress=False)
    assert '1 boxes clipped' in summary.format()
    with open(osp.join(out2, 'annotations', 'dior_trainval.json')) as f:
        anns = json.load(f)['annotations']
    assert max(a['bbox'][0] + a['bbox'][2] for a in anns) == size


def test_dior_cli(demo_raw, raw_copy, tmp_path, tool_main, capsys):
    main = tool_main('tools/dataset_converters/dior.py')
    raw = osp.join(demo_raw, 'DIOR')
    assert main([raw, '-o', str(tmp_path / 'ok'), '--no-progress']) == 0
    assert 'dior_trainval.json' in capsys.readouterr().out
    bad = raw_copy('DIOR')
    os.remove(osp.join(bad, 'ImageSets', 'Main', 'val.txt'))
    assert main([bad, '-o', str(tmp_path / 'bad'), '--no-progress']) == 2
    assert 'val.txt: split list not found' in capsys.readouterr().err


# ----------------------------------------------------------------- Potsdam
def test_patch_starts():
    assert patch_starts(6000, 512, 512) == [512 * i for i in range(11)] + [
        5488
    ]
    assert len(patch_starts(6000, 512, 512))**2 * 24 == 3456
    assert patch_starts(160, 64, 64) == [0, 64, 96]
    assert patch_starts(128, 64, 64) == [0, 64]
    assert patch_starts(64, 64, 64) == [0]


def _index_of(colour_label: np.ndarray) -> np.ndarray:
    out = np.full(colour_label.shape[:2], 255, np.uint8)
    for idx, c in enumerate(POTSDAM_PALETTE):
        out[(colour_label == c).all(-1)] = idx
    return out


@pytest.mark.parametrize('bands', ['IRRG', 'RGB', 'RGBIR'])
def test_potsdam(demo_raw, tmp_path, bands):
    raw = osp.join(demo_raw, 'Potsdam')
    out = str(tmp_path / 'potsdam')
    summary = convert_potsdam(
        raw, out, bands=bands, clip_size=64, stride=64, show_progress=False)
    assert sorted(os.listdir(out)) == ['ann_dir', 'img_dir']
    train_tiles, val_tiles = ('2_10', '2_11', '3_10'), ('2_13', '5_15')
    for split, tiles in (('train', train_tiles), ('val', val_tiles)):
        expected = sorted(f'{t}_{r}_{c}.png' for t in tiles
                          for r in range(3) for c in range(3))
        assert sorted(os.listdir(osp.join(out, 'img_dir', split))) == \
            expected
        assert sorted(os.listdir(osp.join(out, 'ann_dir', split))) == \
            expected
        assert summary.totals[split] == len(expected)
    n_bands = 4 if bands == 'RGBIR' else 3
    # The shifted-back last patch (row 2, col 2) = pixels 96..160.
    name = '2_10_2_2.png'
    img = cv2.imread(osp.join(out, 'img_dir', 'train', name),
                     cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 64, n_bands) and img.dtype == np.uint8
    src = tifffile.imread(
        osp.join(raw, {
            'IRRG': '3_Ortho_IRRG',
            'RGB': '2_Ortho_RGB',
            'RGBIR': '4_Ortho_RGBIR'
        }[bands], f'top_potsdam_2_10_{bands}.tif'))
    bgr = img[..., [2, 1, 0, 3]] if n_bands == 4 else img[..., ::-1]
    np.testing.assert_array_equal(bgr, src[96:160, 96:160])
    ann = cv2.imread(osp.join(out, 'ann_dir', 'train', name),
                     cv2.IMREAD_UNCHANGED)
    assert ann.shape == (64, 64) and ann.dtype == np.uint8
    lab = tifffile.imread(
        osp.join(raw, '5_Labels_all', 'top_potsdam_2_10_label.tif'))
    np.testing.assert_array_equal(ann, _index_of(lab[96:160, 96:160]))
    values = set()
    for f in glob.glob(osp.join(out, 'ann_dir', '*', '*.png')):
        values |= set(np.unique(cv2.imread(f, cv2.IMREAD_UNCHANGED)))
    assert values == {0, 1, 2, 3, 4, 5}  # full labels: no boundary
    assert summary.counts['train']['ignore (255)'] == 0


def test_potsdam_no_boundary_and_zips(demo_raw, tmp_path, tiny):
    raw = osp.join(demo_raw, 'Potsdam')
    out = str(tmp_path / 'from_dirs')
    convert_potsdam(
        raw, out, clip_size=64, stride=64, no_boundary=True,
        show_progress=False)
    values = set()
    for f in glob.glob(osp.join(out, 'ann_dir', '*', '*.png')):
        values |= set(np.unique(cv2.imread(f, cv2.IMREAD_UNCHANGED)))
    assert 255 in values and values <= {0, 1, 2, 3, 4, 5, 255}
    # The official zips (same seed) give byte-identical output.
    zipped = str(tmp_path / 'zipped')
    make_potsdam(
        zipped, seed=0, tile_size=tiny['potsdam_tile_size'], zipped=True)
    assert not osp.isdir(osp.join(zipped, '3_Ortho_IRRG'))
    out_zip = str(tmp_path / 'from_zips')
    convert_potsdam(
        zipped, out_zip, clip_size=64, stride=64, no_boundary=True,
        show_progress=False)
    assert _files(out_zip) == _files(out)


def test_potsdam_skips_unlisted_tile(raw_copy, tmp_path):
    raw = raw_copy('Potsdam')
    for folder, suffix in (('3_Ortho_IRRG', 'IRRG'), ('5_Labels_all',
                                                      'label')):
        shutil.copy(
            osp.join(raw, folder, f'top_potsdam_2_10_{suffix}.tif'),
            osp.join(raw, folder, f'top_potsdam_9_9_{suffix}.tif'))
    summary = convert_potsdam(
        raw, str(tmp_path / 'out'), clip_size=80, stride=80,
        show_progress=False)
    assert 'skipped tiles in neither split list: 9_9' in summary.format()
    assert not glob.glob(str(tmp_path / 'out' / '*' / '*' / '9_9_*'))
    assert summary.totals['train'] == 3 * 4


def test_potsdam_bad_label_colour(raw_copy, tmp_path):
    raw = raw_copy('Potsdam')
    path = osp.join(raw, '5_Labels_all', 'top_potsdam_5_15_label.tif')
    lab = tifffile.imread(path)
    lab[7, 9] = (10, 20, 30)
    tifffile.imwrite(path, lab, photometric='rgb')
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError) as e:
        convert_potsdam(raw, out, clip_size=64, stride=64,
                        show_progress=False)
    msg = str(e.value)
    assert 'top_potsdam_5_15_label.tif' in msg
    assert '(10, 20, 30)' in msg and '(row 7, col 9)' in msg
    _assert_no_output(out)


def test_potsdam_bad_inputs(raw_copy, tmp_path):
    raw = raw_copy('Potsdam')
    out = str(tmp_path / 'out')
    os.remove(osp.join(raw, '5_Labels_all', 'top_potsdam_3_10_label.tif'))
    with pytest.raises(ConversionError, match='tile 3_10 has no label'):
        convert_potsdam(raw, out, show_progress=False, clip_size=64,
                        stride=64)
    _assert_no_output(out)
    with pytest.raises(ConversionError, match='smaller than clip size'):
        convert_potsdam(raw, out, no_boundary=True, show_progress=False)
    _assert_no_output(out)
    shutil.rmtree(osp.join(raw, '4_Ortho_RGBIR'))
    with pytest.raises(ConversionError, match='neither 4_Ortho_RGBIR/ nor'):
        convert_potsdam(raw, out, bands='RGBIR', show_progress=False)
    # Wrong band count.
    path = osp.join(raw, '2_Ortho_RGB', 'top_potsdam_2_13_RGB.tif')
    tifffile.imwrite(path, tifffile.imread(path)[..., :2],
                     planarconfig='contig')
    with pytest.raises(ConversionError, match='expected 3 bands for RGB'):
        convert_potsdam(raw, out, bands='RGB', no_boundary=True,
                        clip_size=64, stride=64, show_progress=False)
    _assert_no_output(out)


def test_potsdam_cli(demo_raw, raw_copy, tmp_path, tool_main, capsys):
    main = tool_main('tools/dataset_converters/potsdam.py')
    raw = osp.join(demo_raw, 'Potsdam')
    argv = ['--clip-size', '64', '--stride', '64', '--no-progress']
    assert main([raw, '-o', str(tmp_path / 'ok'), '--bands', 'RGB'] +
                argv) == 0
    assert 'train: 27 patches' in capsys.readouterr().out
    bad = raw_copy('Potsdam')
    path = osp.join(bad, '5_Labels_all', 'top_potsdam_2_11_label.tif')
    lab = tifffile.imread(path)
    lab[0, 0] = (1, 2, 3)
    tifffile.imwrite(path, lab, photometric='rgb')
    assert main([bad, '-o', str(tmp_path / 'bad')] + argv) == 2
    err = capsys.readouterr().err
    assert 'top_potsdam_2_11_label.tif' in err and '(1, 2, 3)' in err
    _assert_no_output(str(tmp_path / 'bad'))


# ------------------------------------------------------- RESISC45 subsets
SUBSET = ('airplane', 'harbor', 'snowberg')  # 3 of the 45, like a peer's fixture


def _subset_raw(raw_copy, nested: bool) -> str:
    raw = raw_copy('NWPU-RESISC45')
    for name in RESISC45_CLASSES:
        if name not in SUBSET:
            shutil.rmtree(osp.join(raw, name))
    return osp.dirname(raw) if nested else raw


@pytest.mark.parametrize('nested', [False, True])
def test_resisc45_subset_keeps_official_labels(raw_copy, demo_raw, tmp_path, nested):
    raw = _subset_raw(raw_copy, nested)
    out = str(tmp_path / 'subset')
    with pytest.raises(ConversionError, match="missing class folder 'airport'.*"
                       '--allow-missing-classes'):
        convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
    _assert_no_output(out)
    summary = convert_resisc45(raw, out, 0.4, 0.3, show_progress=False,
                               allow_missing_classes=True)
    with open(osp.join(out, 'meta', 'classes.txt')) as f:
        assert tuple(f.read().splitlines()) == RESISC45_CLASSES  # label = line
    full = str(tmp_path / 'full')
    convert_resisc45(osp.join(demo_raw, 'NWPU-RESISC45'), full, 0.4, 0.3,
                     show_progress=False)
    for split in ('train', 'val', 'test'):
        assert sorted(os.listdir(osp.join(out, split))) == sorted(SUBSET)
        entries = read_split_list(osp.join(out, 'meta', f'{split}.txt'))
        assert {label for _, label in entries} == {
            RESISC45_CLASSES.index(c) for c in SUBSET}
        # the same images, labels and split as in a full conversion
        in_full = [e for e in read_split_list(
            osp.join(full, 'meta', f'{split}.txt')) if e[0].split('/')[0] in SUBSET]
        assert entries == in_full
        assert list(summary.counts[split]) == list(SUBSET)
    text = summary.format()
    assert 'subset: 3 of the 45 classes converted' in text
    assert 'missing (42): airport baseball_diamond' in text
    assert 'snowberg' not in text.split('missing (42):')[1]


def test_resisc45_subset_cli(raw_copy, tmp_path, tool_main, capsys):
    main = tool_main('tools/dataset_converters/resisc45.py')
    raw = _subset_raw(raw_copy, nested=False)
    assert main([raw, '-o', str(tmp_path / 'no'), '--no-progress']) == 2
    err = capsys.readouterr().err
    assert "missing class folder 'airport'" in err and '--allow-missing-classes' in err
    assert main([raw, '-o', str(tmp_path / 'yes'), '--no-progress',
                 '--allow-missing-classes']) == 0
    assert 'missing (42)' in capsys.readouterr().out
    # a folder with none of the classes stays an error, with or without the flag
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert main([str(empty), '-o', str(tmp_path / 'none'), '--no-progress',
                 '--allow-missing-classes']) == 2
    assert 'no RESISC45 class folder' in capsys.readouterr().err


# ------------------------------------------------ compressed (Geo)TIFF inputs
def _recompress_potsdam(raw: str, compress: str, tiled: bool) -> None:
    """Every tile of a Potsdam folder rewritten compressed (labels
    losslessly: JPEG only for the images)."""
    for path in glob.glob(osp.join(raw, '*', '*.tif')):
        data = np.moveaxis(np.atleast_3d(tifffile.imread(path)), -1, 0)
        lossy = compress == 'jpeg' and '_Labels_' in path
        if compress == 'opencv':  # cv2.imwrite: LZW, striped, BGR(A)
            order = [2, 1, 0, 3][:data.shape[0]]
            assert cv2.imwrite(path, np.moveaxis(data[order], 0, -1))
        else:
            write_geotiff(path, data, compress='deflate' if lossy else compress,
                          tiled=tiled)


@pytest.mark.parametrize('compress,tiled', [('lzw', False), ('lzw', True),
                                            ('deflate', True),
                                            ('opencv', False)])
def test_potsdam_compressed_tiles_convert_identically(demo_raw, raw_copy,
                                                      tmp_path, compress,
                                                      tiled):
    """The issue's case: OpenCV's LZW TIFFs (and GDAL's LZW / Deflate,
    striped or tiled) stopped the converter (tifffile needs imagecodecs)."""
    argv = dict(clip_size=64, stride=64, show_progress=False)
    plain = str(tmp_path / 'plain')
    convert_potsdam(osp.join(demo_raw, 'Potsdam'), plain, bands='RGBIR', **argv)
    raw = raw_copy('Potsdam')
    _recompress_potsdam(raw, compress, tiled)
    out = str(tmp_path / 'compressed')
    convert_potsdam(raw, out, bands='RGBIR', **argv)
    assert _files(out) == _files(plain)
    # and from the official zips of the compressed tiles
    for stem in ('4_Ortho_RGBIR', '5_Labels_all'):
        shutil.make_archive(osp.join(raw, stem), 'zip', raw, stem)
        shutil.rmtree(osp.join(raw, stem))
    zipped = str(tmp_path / 'zipped')
    convert_potsdam(raw, zipped, bands='RGBIR', **argv)
    assert _files(zipped) == _files(plain)


def test_potsdam_jpeg_in_tiff(demo_raw, raw_copy, tmp_path):
    argv = dict(clip_size=64, stride=64, show_progress=False)
    plain = str(tmp_path / 'plain')
    convert_potsdam(osp.join(demo_raw, 'Potsdam'), plain, **argv)
    raw = raw_copy('Potsdam')
    _recompress_potsdam(raw, 'jpeg', tiled=True)
    out = str(tmp_path / 'jpeg')
    convert_potsdam(raw, out, **argv)
    before, after = _files(plain), _files(out)
    assert sorted(before) == sorted(after)
    for name in before:
        if name.startswith('ann_dir'):  # labels were written losslessly
            assert before[name] == after[name]
        else:  # images: JPEG-decoded, close to the originals
            a, b = (cv2.imdecode(np.frombuffer(x[name], np.uint8),
                                 cv2.IMREAD_UNCHANGED).astype(int)
                    for x in (before, after))
            assert a.shape == b.shape and np.abs(a - b).mean() < 12


def test_potsdam_corrupt_tiff(raw_copy, tmp_path):
    raw = raw_copy('Potsdam')
    path = osp.join(raw, '3_Ortho_IRRG', 'top_potsdam_2_10_IRRG.tif')
    write_geotiff(path, np.zeros((3, 160, 160), np.uint8), compress='lzw')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    out = str(tmp_path / 'out')
    with pytest.raises(ConversionError, match='top_potsdam_2_10_IRRG.tif: '
                       'cannot read TIFF'):
        convert_potsdam(raw, out, clip_size=64, stride=64, show_progress=False)
    _assert_no_output(out)


@pytest.mark.parametrize('compress,tiled', [('lzw', False), ('deflate', True),
                                            ('jpeg', True), ('zstd', False)])
def test_resisc45_tiff_images(raw_copy, tmp_path, compress, tiled):
    """Class folders may hold TIFFs: those OpenCV (the training pipelines'
    reader) decodes are converted, others are refused with the reason."""
    raw = raw_copy('NWPU-RESISC45')
    src = osp.join(raw, 'ship', 'ship_002.jpg')
    rgb = cv2.imread(src)[..., ::-1]
    os.remove(src)
    write_geotiff(osp.join(raw, 'ship', 'ship_002.tif'),
                  np.ascontiguousarray(np.moveaxis(rgb, -1, 0)),
                  compress=compress, tiled=tiled)
    out = str(tmp_path / 'out')
    if compress == 'zstd':
        with pytest.raises(ConversionError, match='ship_002.tif: TIFF with a '
                           'compression OpenCV cannot decode'):
            convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
        return
    convert_resisc45(raw, out, 0.4, 0.3, show_progress=False)
    (copied, ) = glob.glob(osp.join(out, '*', 'ship', 'ship_002.tif'))
    assert cv2.imread(copied).shape == (256, 256, 3)
