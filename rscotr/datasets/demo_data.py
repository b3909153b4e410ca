"""Small synthetic data sets in the official raw layouts.

:func:`make_demo_data` writes, under one folder::

    NWPU-RESISC45/<class>/<class>_001.jpg ...           256x256 RGB JPEGs
    DIOR/JPEGImages-trainval/00001.jpg ...              (img_size)^2 JPEGs
    DIOR/JPEGImages-test/<ids after trainval>.jpg
    DIOR/Annotations/Horizontal Bounding Boxes/<id>.xml  VOC-style boxes
    DIOR/ImageSets/Main/{train,val,test}.txt
    Potsdam/2_Ortho_RGB/top_potsdam_<A>_<B>_RGB.tif      3-band uint8 GeoTIFF
    Potsdam/3_Ortho_IRRG/top_potsdam_<A>_<B>_IRRG.tif    (IR, R, G)
    Potsdam/4_Ortho_RGBIR/top_potsdam_<A>_<B>_RGBIR.tif  4-band
    Potsdam/5_Labels_all/top_potsdam_<A>_<B>_label.tif   RGB palette colours
    Potsdam/5_Labels_all_noBoundary/top_potsdam_<A>_<B>_label_noBoundary.tif

(Potsdam optionally as the official zips ``2_Ortho_RGB.zip`` ... instead of
folders.) With ``extra=True``, also two datasets in the standard formats of
:mod:`rscotr.datasets.standard`, read without a converter::

    extra_cls/images/<class>/<class>_001.jpg ...       10 classes, 128x128 JPEGs
    extra_cls/meta/{train,val,test}.txt                <class>/<file>, 50/20/30 %
    extra_det/images/0001.jpg ...                      256x256 JPEGs
    extra_det/annotations/{train,val,test}.json        COCO, 3 classes, 60/20/20 %

The content is made to be learnable by a tiny network: every
RESISC45 class has its own colour pair and texture (stripes, checks, rings,
dots or blocks at a class-specific angle and frequency), every DIOR class its
own colour and shape, every Potsdam class its own spectrum (including the IR
band) and texture. Output is byte-identical for the same seed and settings
(and the same library versions). Each data-set folder gets a ``.rscotr-demo``
marker; an existing folder is replaced only if it carries that marker, so the
generator never deletes a real data set.
"""
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.io import PathLike
from .meta import (DIOR_ANN_DIR, DIOR_CLASSES, DIOR_IMAGESETS_DIR,
                   DIOR_TEST_IMG_DIR, DIOR_TRAINVAL_IMG_DIR, POTSDAM_CLASSES,
                   POTSDAM_IMAGE_SOURCES, POTSDAM_LABEL_SOURCES,
                   POTSDAM_PALETTE, RESISC45_CLASSES, potsdam_file_name)


MARKER = '.rscotr-demo'
JPEG_QUALITY = 90
DATASETS = ('resisc45', 'dior', 'potsdam')
#: The extra datasets in the standard formats (``extra=True``).
EXTRA_DATASETS = ('extra_cls', 'extra_det')
DATASET_DIRS = {
    'resisc45': 'NWPU-RESISC45',
    'dior': 'DIOR',
    'potsdam': 'Potsdam',
    'extra_cls': 'extra_cls',
    'extra_det': 'extra_det',
}
# Distinct integers mixed into the seed of each data set's RNG streams, so a
# data set's bytes do not depend on which other data sets are generated.
_STREAM = {'resisc45': 45, 'dior': 20, 'potsdam': 6, 'extra_cls': 110,
           'extra_det': 103}

#: Classes of the extra classification set: a colour and a texture each.
EXTRA_CLS_CLASSES = ('red_stripes', 'orange_checks', 'yellow_rings',
                     'lime_dots', 'green_blocks', 'cyan_stripes',
                     'azure_checks', 'blue_rings', 'violet_dots',
                     'magenta_blocks')
#: Classes of the extra detection set: a shape and a colour each.
EXTRA_DET_CLASSES = ('storage_tank', 'vehicle', 'ship')
#: Shares of the train and val splits (the rest: test) of the extra sets.
EXTRA_CLS_SPLITS = (0.5, 0.2)
EXTRA_DET_SPLITS = (0.6, 0.2)

#: Settings of the two sizes.
SCALES: Dict[str, Dict] = {
    'small':
    dict(
        resisc45_per_class=10,
        dior_trainval=30,
        dior_test=20,
        potsdam_tile_size=1024,
        potsdam_train_tiles=('2_10', '2_11', '3_10'),
        potsdam_val_tiles=('2_13', '5_15'),
        extra_cls_per_class=10,
        extra_det_images=40),
    'medium':
    dict(
        resisc45_per_class=60,
        dior_trainval=200,
        dior_test=100,
        potsdam_tile_size=1024,
        potsdam_train_tiles=('2_10', '2_11', '2_12', '3_10', '3_11', '3_12',
                             '4_10', '4_11'),
        potsdam_val_tiles=('2_13', '5_15', '3_13', '4_14'),
        extra_cls_per_class=30,
        extra_det_images=120),
}


@dataclass
class DemoDataSummary:
    """What :func:`make_demo_data` wrote: one line per data set."""

    out_dir: str
    lines: List[str] = field(default_factory=list)

    def format(self) -> str:
        """Human-readable summary."""
        return '\n'.join([f'demo data -> {self.out_dir}'] +
                         [f'  {line}' for line in self.lines])


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _rng(seed: int, dataset: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[dataset], *keys])


def _prepare_dir(path: str) -> None:
    """Create ``path`` fresh; replace it only if it is earlier demo data."""
    if osp.lexists(path):
        if not osp.isfile(osp.join(path, MARKER)):
            raise FileExistsError(
                f'{path} exists and is not demo data (no {MARKER} marker); '
                'refusing to overwrite it')
        shutil.rmtree(path)
    os.makedirs(path)


def _write_marker(path: str, **info) -> None:
    with open(osp.join(path, MARKER), 'w') as f:
        for k, v in info.items():
            f.write(f'{k}: {v}\n')


def _write_jpeg(path: str, img_bgr: np.ndarray) -> None:
    import cv2
    ok, buf = cv2.imencode('.jpg', img_bgr,
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f'cannot encode {path}')
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    import cv2
    hsv = np.array([[[h % 180, s, v]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int],
                  cells: int) -> np.ndarray:
    """Low-frequency noise, roughly unit variance, ``cells`` blobs across."""
    import cv2
    coarse = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    return cv2.resize(
        coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _noise_bank(rng: np.random.Generator, size: int,
                channels: int) -> np.ndarray:
    """Unit Gaussian noise of twice ``size``; crops of it are cheap noise."""
    return rng.standard_normal((2 * size, 2 * size, channels),
                               dtype=np.float32)


def _noise_crop(rng: np.random.Generator, bank: np.ndarray,
                shape: Tuple[int, int]) -> np.ndarray:
    """A random ``shape`` window of a noise bank."""
    y = int(rng.integers(0, bank.shape[0] - shape[0] + 1))
    x = int(rng.integers(0, bank.shape[1] - shape[1] + 1))
    return bank[y:y + shape[0], x:x + shape[1]]


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and saturate a float image to uint8 (modifies ``img``)."""
    img += 0.5
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


# --------------------------------------------------------------------------
# NWPU-RESISC45
# --------------------------------------------------------------------------
def resisc45_style(label: int) -> Dict[str, float]:
    """Class-specific look of a RESISC45 demo image.

    9 colour pairs x 5 texture kinds = 45 distinct classes; angle and
    frequency also depend on the class.
    """
    return dict(
        hue=(label % 9) * 20.,
        pattern=label // 9,
        angle=float((label * 37) % 180),
        freq=4. + (label * 7) % 9)


def _texture_image(style: Dict[str, float], rng: np.random.Generator,
                   size: int, noise: np.ndarray) -> np.ndarray:
    """A scene image of a style of :func:`resisc45_style` (also the extra
    classification set's): colour pair, texture kind, angle and frequency
    of the class, random jitter, phase, gain and noise."""
    fg = _hsv_to_bgr(style['hue'], 200, 210)
    bg = _hsv_to_bgr(style['hue'] + 90, 90, 110)
    theta = np.deg2rad(style['angle'] + rng.uniform(-8, 8))
    freq = style['freq'] * rng.uniform(0.9, 1.1)
    phase = rng.uniform(0, 2 * np.pi)
    coords = np.arange(size, dtype=np.float32) / np.float32(size)
    u, v = coords[None, :], coords[:, None]  # broadcast to (size, size)
    cos, sin = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    w = np.float32(2 * np.pi * freq)
    ur = (w * cos) * u + (w * sin) * v + np.float32(phase)
    vr = (w * cos) * v - (w * sin) * u + np.float32(phase)
    kind = style['pattern']
    if kind == 0:  # stripes
        t = np.sin(ur)
    elif kind == 1:  # checks
        t = np.sign(np.sin(ur) * np.sin(vr))
    elif kind == 2:  # rings around a random centre
        cu, cv = rng.uniform(0.2, 0.8, size=2).astype(np.float32)
        t = np.sin(w * np.hypot(u - cu, v - cv) + np.float32(phase))
    elif kind == 3:  # dots on a lattice
        t = np.where(np.cos(ur) * np.cos(vr) > 0.4, np.float32(1),
                     np.float32(-1))
    else:  # random blocks
        import cv2
        n = max(2, int(round(freq)))
        blocks = rng.random((n, n), dtype=np.float32) > 0.5
        t = cv2.resize(
            blocks.astype(np.float32) * 2 - 1, (size, size),
            interpolation=cv2.INTER_NEAREST)
    mix = (t[..., None] + np.float32(1)) * np.float32(0.5)
    gain = np.float32(rng.uniform(0.85, 1.15))
    img = bg * gain + ((fg - bg) * gain) * mix
    img += 12 * _smooth_noise(rng, (size, size), 4)[..., None]
    img += 8 * _noise_crop(rng, noise, (size, size))
    return _to_uint8(img)


def make_resisc45(root: PathLike,
                  seed: int = 0,
                  images_per_class: int = 10,
                  img_size: int = 256) -> str:
    """Write a demo NWPU-RESISC45 (45 class folders of JPEGs).

    Args:
        root (str): The ``NWPU-RESISC45`` folder to create.
        seed (int): Random seed.
        images_per_class (int): Images per class folder.
        img_size (int): Image side (the real data set: 256).

    Returns:
        str: One summary line.
    """
    root = os.fspath(root)
    _prepare_dir(root)
    noise = _noise_bank(_rng(seed, 'resisc45', 1000), img_size, 3)
    for label, name in enumerate(RESISC45_CLASSES):
        os.makedirs(osp.join(root, name))
        for k in range(images_per_class):
            img = _texture_image(resisc45_style(label),
                                 _rng(seed, 'resisc45', label, k), img_size,
                                 noise)
            _write_jpeg(osp.join(root, name, f'{name}_{k + 1:03d}.jpg'), img)
    _write_marker(root, seed=seed, images_per_class=images_per_class)
    return (f'NWPU-RESISC45: {len(RESISC45_CLASSES)} classes x '
            f'{images_per_class} images ({img_size}x{img_size}) in {root}')


# --------------------------------------------------------------------------
# DIOR
# --------------------------------------------------------------------------
def dior_style(label: int) -> Dict[str, object]:
    """Class-specific look of a DIOR demo object (colour + shape).

    ``shape``: 0 filled rectangle, 1 filled ellipse, 2 rectangle with an
    inner rectangle of the complementary colour, 3 ellipse with an inner
    ellipse of the complementary colour.
    """
    return dict(
        colour=_hsv_to_bgr(label * 9, 230, 235 if label % 2 else 165),
        inner=_hsv_to_bgr(label * 9 + 90, 200, 120),
        shape=label % 4)


def _dior_background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2
    base = rng.uniform(90, 140) + rng.uniform(-15, 15, size=3)
    img = np.empty((size, size, 3), np.float32)
    img[:] = base.astype(np.float32)
    img += 25 * _smooth_noise(rng, (size, size), 6)[..., None]
    for _ in range(int(rng.integers(0, 3))):  # grey "roads"
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(img, p1, p2, (95., 95., 95.), max(2, size // 60))
    return img


def _draw_dior_object(img: np.ndarray, label: int, box: Sequence[int]) -> None:
    import cv2
    x0, y0, w, h = box
    style = dior_style(label)
    colour = tuple(float(c) for c in style['colour'])
    inner = tuple(float(c) for c in style['inner'])
    center = (x0 + w // 2, y0 + h // 2)
    axes = (w // 2, h // 2)
    if style['shape'] in (0, 2):
        cv2.rectangle(img, (x0, y0), (x0 + w - 1, y0 + h - 1), colour, -1)
        if style['shape'] == 2:
            cv2.rectangle(img, (x0 + w // 4, y0 + h // 4),
                          (x0 + 3 * w // 4, y0 + 3 * h // 4), inner, -1)
    else:
        cv2.ellipse(img, center, axes, 0, 0, 360, colour, -1)
        if style['shape'] == 3:
            cv2.ellipse(img, center, (axes[0] // 2, axes[1] // 2), 0, 0, 360,
                        inner, -1)


def _dior_boxes(rng: np.random.Generator, size: int,
                count: int) -> List[Tuple[int, int, int, int]]:
    """Non-overlapping (x, y, w, h) boxes of 7.5%..25% of the image side."""
    boxes: List[Tuple[int, int, int, int]] = []
    lo, hi = max(4, int(0.075 * size)), max(5, int(0.25 * size))
    for _ in range(count):
        for _try in range(30):
            w, h = (int(v) for v in rng.integers(lo, hi + 1, 2))
            x = int(rng.integers(0, size - w + 1))
            y = int(rng.integers(0, size - h + 1))
            if all(x + w <= bx or bx + bw <= x or y + h <= by or by + bh <= y
                   for bx, by, bw, bh in boxes):
                boxes.append((x, y, w, h))
                break
    return boxes


def dior_xml(img_id: str, size: int,
             objects: Sequence[Tuple[str, Sequence[int]]]) -> str:
    """A DIOR-style VOC XML.

    Args:
        img_id (str): 5-digit id.
        size (int): Image side.
        objects: ``[(class_name, (xmin, ymin, xmax, ymax))]``.

    Returns:
        str: The XML text.
    """
    ann = ET.Element('annotation')
    ET.SubElement(ann, 'filename').text = f'{img_id}.jpg'
    source = ET.SubElement(ann, 'source')
    ET.SubElement(source, 'database').text = 'DIOR'
    size_el = ET.SubElement(ann, 'size')
    for tag, value in (('width', size), ('height', size), ('depth', 3)):
        ET.SubElement(size_el, tag).text = str(value)
    ET.SubElement(ann, 'segmented').text = '0'
    for name, (x1, y1, x2, y2) in objects:
        obj = ET.SubElement(ann, 'object')
        ET.SubElement(obj, 'name').text = name
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        box = ET.SubElement(obj, 'bndbox')
        for tag, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                              (x1, y1, x2, y2)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(ann, space='\t')
    return ET.tostring(ann, encoding='unicode') + '\n'


def make_dior(root: PathLike,
              seed: int = 0,
              num_trainval: int = 30,
              num_test: int = 20,
              img_size: int = 800) -> str:
    """Write a demo DIOR (images, horizontal-box XMLs, split lists).

    Ids run ``00001``..``num_trainval`` (``JPEGImages-trainval``, split in
    half at random into train / val) then on to ``num_trainval + num_test``
    (``JPEGImages-test``). Every eighth image (4th, 12th, ...) has no object,
    the others 1-4; object classes cycle through all 20 classes within
    trainval and within test.

    Args:
        root (str): The ``DIOR`` folder to create.
        seed (int): Random seed.
        num_trainval (int): Train + val images.
        num_test (int): Test images.
        img_size (int): Image side (the real data set: 800).

    Returns:
        str: One summary line.
    """
    root = os.fspath(root)
    _prepare_dir(root)
    ann_dir = osp.join(root, DIOR_ANN_DIR)
    sets_dir = osp.join(root, DIOR_IMAGESETS_DIR)
    for d in (DIOR_TRAINVAL_IMG_DIR, DIOR_TEST_IMG_DIR):
        os.makedirs(osp.join(root, d))
    os.makedirs(ann_dir)
    os.makedirs(sets_dir)
    n_boxes = n_empty = 0
    noise = _noise_bank(_rng(seed, 'dior', 3), img_size, 3)
    for part, first, count, img_dir in (
            (0, 1, num_trainval, DIOR_TRAINVAL_IMG_DIR),
            (1, num_trainval + 1, num_test, DIOR_TEST_IMG_DIR)):
        next_class = 0
        for k in range(count):
            img_id = f'{first + k:05d}'
            rng = _rng(seed, 'dior', part, k)
            n_obj = 0 if k % 8 == 3 else int(rng.integers(1, 5))
            img = _dior_background(rng, img_size)
            objects = []
            for x, y, w, h in _dior_boxes(rng, img_size, n_obj):
                label = next_class % len(DIOR_CLASSES)
                next_class += 1
                _draw_dior_object(img, label, (x, y, w, h))
                objects.append((DIOR_CLASSES[label], (x, y, x + w, y + h)))
            img += 6 * _noise_crop(rng, noise, (img_size, img_size))
            _write_jpeg(osp.join(root, img_dir, f'{img_id}.jpg'),
                        _to_uint8(img))
            with open(osp.join(ann_dir, f'{img_id}.xml'), 'w') as f:
                f.write(dior_xml(img_id, img_size, objects))
            n_boxes += len(objects)
            n_empty += not objects
    trainval = [f'{i:05d}' for i in range(1, num_trainval + 1)]
    order = _rng(seed, 'dior', 2).permutation(num_trainval)
    n_train = num_trainval // 2
    train = sorted(trainval[i] for i in order[:n_train])
    val = sorted(trainval[i] for i in order[n_train:])
    test = [
        f'{i:05d}'
        for i in range(num_trainval + 1, num_trainval + num_test + 1)
    ]
    for split, ids in (('train', train), ('val', val), ('test', test)):
        with open(osp.join(sets_dir, f'{split}.txt'), 'w') as f:
            f.write(''.join(f'{i}\n' for i in ids))
    _write_marker(root, seed=seed, img_size=img_size)
    return (f'DIOR: {len(train)} train + {len(val)} val + {len(test)} test '
            f'images ({img_size}x{img_size}), {n_boxes} boxes, {n_empty} '
            f'images without objects, in {root}')


# --------------------------------------------------------------------------
# ISPRS Potsdam
# --------------------------------------------------------------------------
#: Mean (R, G, B, IR) of each class, in POTSDAM_CLASSES order.
_POTSDAM_MEANS = np.array(
    [
        [150, 150, 150, 110],  # impervious: grey, low IR
        [185, 95, 70, 120],  # building: red roofs
        [125, 175, 90, 205],  # low vegetation: light green, high IR
        [45, 95, 45, 235],  # tree: dark green, very high IR
        [40, 70, 205, 90],  # car: blue
        [150, 100, 165, 60],  # clutter: purple
    ],
    np.float32)
#: (fine-noise, coarse-noise, stripe) amplitude of each class.
_POTSDAM_TEXTURE = np.array(
    [[5, 8, 0], [6, 6, 18], [10, 12, 0], [20, 10, 0], [4, 0, 0], [18, 15, 0]],
    np.float32)


def potsdam_geotags(tile: str, gsd: float = 0.05) -> List[Tuple]:
    """GeoTIFF tags (ETRS89 / UTM 33N, EPSG:25833) for a demo tile.

    Returns:
        list: ``extratags`` for :func:`tifffile.imwrite`.
    """
    a, b = (int(v) for v in tile.split('_'))
    x0, y0 = 364000. + 300. * a, 5812000. - 300. * b
    geokeys = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 25833)
    return [
        (33550, 'd', 3, (gsd, gsd, 0.), True),  # ModelPixelScale
        (33922, 'd', 6, (0., 0., 0., x0, y0, 0.), True),  # ModelTiepoint
        (34735, 'H', len(geokeys), geokeys, True),  # GeoKeyDirectory
    ]


def _potsdam_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) uint8 class map: Voronoi cells, roads, buildings..."""
    import cv2
    imp, bld, veg, tree, car, clut = range(6)
    # Voronoi-ish ground cover on a coarse grid.
    grid = max(8, size // 8)
    n_seeds = max(6, (size // 128)**2)
    pts = rng.uniform(0, grid, (n_seeds, 2)).astype(np.float32)
    kinds = rng.choice([imp, veg, tree, clut], n_seeds,
                       p=[0.35, 0.45, 0.15, 0.05]).astype(np.uint8)
    gy, gx = np.mgrid[0:grid, 0:grid].astype(np.float32) + 0.5
    dist = (gy[..., None] - pts[:, 1])**2 + (gx[..., None] - pts[:, 0])**2
    coarse = kinds[np.argmin(dist, axis=-1)]
    label = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST)
    # Roads.
    for _ in range(int(rng.integers(2, 4))):
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(label, p1, p2, imp, max(3, size // 40))
    # Buildings: rotated rectangles.
    for _ in range(int(rng.integers(8, 14))):
        cx, cy = rng.uniform(0, size, 2)
        w, h = rng.uniform(size / 14, size / 5, 2)
        pts4 = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 90)))
        cv2.fillPoly(label, [np.rint(pts4).astype(np.int32)], bld)
    # Trees: clusters of discs.
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0, size, 2)
        for _k in range(int(rng.integers(2, 6))):
            r = int(rng.uniform(max(3, size / 80), max(4, size / 30)))
            off = rng.normal(0, size / 40, 2)
            cv2.circle(label, (int(cx + off[0]), int(cy + off[1])), r, tree,
                       -1)
    # Clutter: small polygons.
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(0, size, 2)
        poly = c + rng.uniform(-size / 30, size / 30, (5, 2))
        cv2.fillPoly(label, [np.rint(poly).astype(np.int32)], clut)
    # Cars: small rotated rectangles on impervious ground.
    car_len, car_wid = max(6., size / 50), max(3., size / 110)
    ys, xs = np.nonzero(label == imp)
    if len(ys):
        for i in rng.choice(len(ys), min(len(ys), max(8, size // 12)),
                            replace=False):
            pts4 = cv2.boxPoints(((float(xs[i]), float(ys[i])),
                                  (car_len, car_wid), rng.uniform(0, 180)))
            cv2.fillPoly(label, [np.rint(pts4).astype(np.int32)], car)
    return label


def _potsdam_image(rng: np.random.Generator,
                   label: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 (R, G, B, IR) image whose look depends on the class."""
    size = label.shape[0]
    fine = rng.standard_normal(label.shape, dtype=np.float32)
    coarse = _smooth_noise(rng, label.shape, max(4, size // 32))
    stripes = np.sin(np.arange(size, dtype=np.float32) * (2 * np.pi / 6))
    tex = _POTSDAM_TEXTURE[label]
    shade = (tex[..., 0] * fine + tex[..., 1] * coarse +
             tex[..., 2] * stripes[None, :])
    img = _POTSDAM_MEANS[label] + shade[..., None]
    img += 3 * rng.standard_normal(img.shape, dtype=np.float32)
    return _to_uint8(img)


def _boundary_mask(label: np.ndarray, radius: int = 3) -> np.ndarray:
    """Pixels within ``radius`` of a class boundary (ISPRS 'noBoundary')."""
    import cv2
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                       (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(label, kernel) != cv2.erode(label, kernel)


def _write_tiff(path: str, arr: np.ndarray, tile: str) -> None:
    import tifffile
    tifffile.imwrite(
        path,
        arr,
        photometric='rgb' if arr.shape[2] == 3 else 'minisblack',
        planarconfig='contig',
        metadata=None,
        extratags=potsdam_geotags(tile))


def _zip_folder(root: str, stem: str) -> None:
    """Replace ``root/stem/`` by ``root/stem.zip`` (members ``stem/<f>``)."""
    folder = osp.join(root, stem)
    with zipfile.ZipFile(osp.join(root, f'{stem}.zip'), 'w',
                         zipfile.ZIP_STORED) as zf:
        for fname in sorted(os.listdir(folder)):
            info = zipfile.ZipInfo(f'{stem}/{fname}', (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with open(osp.join(folder, fname), 'rb') as f:
                zf.writestr(info, f.read())
    shutil.rmtree(folder)


def make_potsdam(root: PathLike,
                 seed: int = 0,
                 tile_size: int = 1024,
                 train_tiles: Sequence[str] = ('2_10', '2_11', '3_10'),
                 val_tiles: Sequence[str] = ('2_13', '5_15'),
                 zipped: bool = False) -> str:
    """Write a demo ISPRS Potsdam (ortho images and colour labels).

    Args:
        root (str): The ``Potsdam`` folder to create.
        seed (int): Random seed.
        tile_size (int): Tile side (the real data set: 6000).
        train_tiles (Sequence[str]): Tile ids (should be train-list tiles).
        val_tiles (Sequence[str]): Tile ids (should be val-list tiles).
        zipped (bool): Write the official zips instead of folders.

    Returns:
        str: One summary line.
    """
    root = os.fspath(root)
    _prepare_dir(root)
    stems = [s[0] for s in POTSDAM_IMAGE_SOURCES.values()]
    stems += [s[0] for s in POTSDAM_LABEL_SOURCES.values()]
    for stem in stems:
        os.makedirs(osp.join(root, stem))
    palette = np.array(POTSDAM_PALETTE, np.uint8)
    tiles = list(train_tiles) + list(val_tiles)
    pixels = np.zeros(len(POTSDAM_CLASSES), np.int64)
    for tile in tiles:
        a, b = (int(v) for v in tile.split('_'))
        rng = _rng(seed, 'potsdam', a, b)
        label = _potsdam_layout(rng, tile_size)
        rgbir = _potsdam_image(rng, label)
        pixels += np.bincount(label.ravel(), minlength=len(POTSDAM_CLASSES))
        bands = {
            'RGB': rgbir[..., :3],
            'IRRG': rgbir[..., [3, 0, 1]],
            'RGBIR': rgbir
        }
        for key, (stem, suffix, _) in POTSDAM_IMAGE_SOURCES.items():
            _write_tiff(
                osp.join(root, stem, potsdam_file_name(tile, suffix)),
                np.ascontiguousarray(bands[key]), tile)
        colour = palette[label]
        stem, suffix = POTSDAM_LABEL_SOURCES['full']
        _write_tiff(
            osp.join(root, stem, potsdam_file_name(tile, suffix)), colour,
            tile)
        colour[_boundary_mask(label)] = 0
        stem, suffix = POTSDAM_LABEL_SOURCES['noBoundary']
        _write_tiff(
            osp.join(root, stem, potsdam_file_name(tile, suffix)), colour,
            tile)
    if zipped:
        for stem in stems:
            _zip_folder(root, stem)
    _write_marker(root, seed=seed, tile_size=tile_size)
    share = ', '.join(f'{name} {100 * n / max(1, pixels.sum()):.0f}%'
                      for name, n in zip(POTSDAM_CLASSES, pixels))
    return (f'Potsdam: {len(tiles)} tiles {tile_size}x{tile_size} (train '
            f'{" ".join(train_tiles)}; val {" ".join(val_tiles)})'
            f'{" as zips" if zipped else ""}, pixels: {share}, in {root}')


# --------------------------------------------------------------------------
# Extra datasets in the standard formats
# --------------------------------------------------------------------------
def extra_cls_style(label: int) -> Dict[str, float]:
    """Look of an extra classification class: the hue of its colour name
    (18 degrees apart), the texture of its texture name (the kinds of
    :func:`resisc45_style`), a class-specific angle and frequency."""
    return dict(
        hue=label * 18.,
        pattern=label % 5,
        angle=float((label * 53) % 180),
        freq=3. + (label * 3) % 4)


def _split_lists(rng: np.random.Generator, items: Sequence[str],
                 shares: Tuple[float, float]) -> Tuple[List[str], ...]:
    """``items`` shuffled into train / val / test by ``shares``, each sorted."""
    order = rng.permutation(len(items))
    n_train = int(round(shares[0] * len(items)))
    n_val = int(round(shares[1] * len(items)))
    parts = (order[:n_train], order[n_train:n_train + n_val],
             order[n_train + n_val:])
    return tuple(sorted(items[i] for i in part) for part in parts)


def make_extra_cls(root: PathLike,
                   seed: int = 0,
                   images_per_class: int = 10,
                   img_size: int = 128) -> str:
    """Write the extra classification set: class folders and split lists.

    ``images/<class>/<class>_001.jpg`` ... for :data:`EXTRA_CLS_CLASSES`;
    ``meta/{train,val,test}.txt`` list ``<class>/<file>`` (relative to
    ``images``), 50/20/30 % of each class.

    Args:
        root (str): The ``extra_cls`` folder to create.
        seed (int): Random seed.
        images_per_class (int): Images per class (at least 3).
        img_size (int): Image side.

    Returns:
        str: One summary line.
    """
    if images_per_class < 3:
        raise ValueError('extra_cls needs at least 3 images per class (one '
                         f'per split), got {images_per_class}')
    root = os.fspath(root)
    _prepare_dir(root)
    os.makedirs(osp.join(root, 'meta'))
    noise = _noise_bank(_rng(seed, 'extra_cls', 1000), img_size, 3)
    splits: Tuple[List[str], ...] = ([], [], [])
    for label, name in enumerate(EXTRA_CLS_CLASSES):
        os.makedirs(osp.join(root, 'images', name))
        files = []
        for k in range(images_per_class):
            img = _texture_image(extra_cls_style(label),
                                 _rng(seed, 'extra_cls', label, k), img_size,
                                 noise)
            files.append(f'{name}/{name}_{k + 1:03d}.jpg')
            _write_jpeg(osp.join(root, 'images', files[-1]), img)
        parts = _split_lists(_rng(seed, 'extra_cls', 2000, label), files,
                             EXTRA_CLS_SPLITS)
        for split, part in zip(splits, parts):
            split.extend(part)
    for split, files in zip(('train', 'val', 'test'), splits):
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write(''.join(f'{name}\n' for name in files))
    _write_marker(root, seed=seed, images_per_class=images_per_class)
    return (f'extra_cls: {len(EXTRA_CLS_CLASSES)} classes x '
            f'{images_per_class} images ({img_size}x{img_size}), '
            f'{" + ".join(str(len(s)) for s in splits)} train + val + test, '
            f'in {root}')


def _draw_extra_object(img: np.ndarray, label: int,
                       box: Sequence[int]) -> None:
    """Draw an object of :data:`EXTRA_DET_CLASSES` filling ``box`` (x, y, w, h):
    a light disc with a grey centre (storage tank), a red rectangle
    (vehicle), a yellow triangle pointing up (ship)."""
    import cv2
    x0, y0, w, h = box
    x1, y1 = x0 + w - 1, y0 + h - 1
    if label == 0:
        center = (x0 + w // 2, y0 + h // 2)
        cv2.ellipse(img, center, (w // 2, h // 2), 0, 0, 360,
                    (225., 225., 230.), -1)
        cv2.ellipse(img, center, (w // 4, h // 4), 0, 0, 360,
                    (150., 150., 160.), -1)
    elif label == 1:
        cv2.rectangle(img, (x0, y0), (x1, y1), (40., 40., 210.), -1)
    else:
        pts = np.array([[x0 + w // 2, y0], [x0, y1], [x1, y1]], np.int32)
        cv2.fillPoly(img, [pts], (40., 215., 235.))


def _coco_json(names: Sequence[str], size: int,
               objects: Dict[str, List[Tuple[int, Sequence[int]]]]) -> Dict:
    """A COCO detection dict of the images ``names`` and their ``objects``
    (``name -> [(label, (x, y, w, h))]``); ids count from 1."""
    images, annotations = [], []
    for img_id, name in enumerate(names, 1):
        images.append(
            dict(id=img_id, file_name=name, width=size, height=size))
        for label, (x, y, w, h) in objects[name]:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=img_id,
                     category_id=label + 1, bbox=[x, y, w, h], area=w * h,
                     iscrowd=0))
    categories = [
        dict(id=i + 1, name=c, supercategory='object')
        for i, c in enumerate(EXTRA_DET_CLASSES)
    ]
    return dict(images=images, annotations=annotations, categories=categories)


def make_extra_det(root: PathLike,
                   seed: int = 0,
                   num_images: int = 40,
                   img_size: int = 256) -> str:
    """Write the extra detection set: images and a COCO json per split.

    ``images/0001.jpg`` ...; ``annotations/{train,val,test}.json`` (COCO,
    ``file_name`` relative to ``images``, categories 1..3 =
    :data:`EXTRA_DET_CLASSES`), 60/20/20 % of the images. Every tenth image
    (the 5th, 15th, ...) has no object, the others 1-6 (fewer where they do
    not fit) on a textured background.

    Args:
        root (str): The ``extra_det`` folder to create.
        seed (int): Random seed.
        num_images (int): Images (at least 5).
        img_size (int): Image side.

    Returns:
        str: One summary line.
    """
    if num_images < 5:
        raise ValueError(
            f'extra_det needs at least 5 images, got {num_images}')
    import json
    root = os.fspath(root)
    _prepare_dir(root)
    for sub in ('images', 'annotations'):
        os.makedirs(osp.join(root, sub))
    noise = _noise_bank(_rng(seed, 'extra_det', 1000), img_size, 3)
    objects: Dict[str, List[Tuple[int, Sequence[int]]]] = {}
    for k in range(num_images):
        rng = _rng(seed, 'extra_det', k)
        n_obj = 0 if k % 10 == 4 else int(rng.integers(1, 7))
        img = _dior_background(rng, img_size)
        name = f'{k + 1:04d}.jpg'
        objects[name] = []
        for box in _dior_boxes(rng, img_size, n_obj):
            label = int(rng.integers(0, len(EXTRA_DET_CLASSES)))
            _draw_extra_object(img, label, box)
            objects[name].append((label, box))
        img += 6 * _noise_crop(rng, noise, (img_size, img_size))
        _write_jpeg(osp.join(root, 'images', name), _to_uint8(img))
    splits = _split_lists(
        _rng(seed, 'extra_det', 2000), sorted(objects), EXTRA_DET_SPLITS)
    for split, names in zip(('train', 'val', 'test'), splits):
        with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(_coco_json(names, img_size, objects), f)
    _write_marker(root, seed=seed, img_size=img_size)
    n_boxes = sum(len(v) for v in objects.values())
    n_empty = sum(not v for v in objects.values())
    return (f'extra_det: {" + ".join(str(len(s)) for s in splits)} train + '
            f'val + test images ({img_size}x{img_size}), {n_boxes} boxes of '
            f'{len(EXTRA_DET_CLASSES)} classes, {n_empty} images without '
            f'objects, in {root}')


# --------------------------------------------------------------------------
# All three (and the extra ones)
# --------------------------------------------------------------------------
def make_demo_data(out_dir: PathLike,
                   seed: int = 0,
                   scale: str = 'small',
                   datasets: Sequence[str] = DATASETS,
                   resisc45_per_class: Optional[int] = None,
                   dior_img_size: int = 800,
                   dior_trainval: Optional[int] = None,
                   dior_test: Optional[int] = None,
                   potsdam_tile_size: Optional[int] = None,
                   potsdam_zipped: bool = False,
                   extra: bool = False,
                   extra_cls_per_class: Optional[int] = None,
                   extra_det_images: Optional[int] = None) -> DemoDataSummary:
    """Write demo data for the chosen data sets under ``out_dir``.

    Args:
        out_dir (str): Parent folder; gets ``NWPU-RESISC45/``, ``DIOR/``
            and ``Potsdam/`` (and ``extra_cls/``, ``extra_det/``).
        seed (int): Random seed; the same seed gives the same bytes.
        scale (str): ``'small'`` or ``'medium'`` (see :data:`SCALES`).
        datasets (Sequence[str]): Subset of ``('resisc45', 'dior',
            'potsdam', 'extra_cls', 'extra_det')``.
        resisc45_per_class (int, optional): Override the scale's value.
        dior_img_size (int): DIOR image side (800 as released).
        dior_trainval (int, optional): Override the scale's value.
        dior_test (int, optional): Override the scale's value.
        potsdam_tile_size (int, optional): Override the scale's value.
        potsdam_zipped (bool): Potsdam as the official zips.
        extra (bool): Also write the extra datasets in the standard formats
            (``extra_cls``, ``extra_det``).
        extra_cls_per_class (int, optional): Override the scale's value.
        extra_det_images (int, optional): Override the scale's value.

    Returns:
        DemoDataSummary: One line per data set written.
    """
    if scale not in SCALES:
        raise ValueError(f'unknown scale {scale!r}, expected {list(SCALES)}')
    datasets = list(datasets) + (list(EXTRA_DATASETS) if extra else [])
    unknown = set(datasets) - set(DATASETS) - set(EXTRA_DATASETS)
    if unknown:
        raise ValueError(f'unknown data sets {sorted(unknown)}')
    cfg = SCALES[scale]

    def pick(value: Optional[int], key: str) -> int:
        return cfg[key] if value is None else value

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    summary = DemoDataSummary(out_dir=osp.abspath(out_dir))
    makers = {  # in this order; each writes its folder from the seed alone
        'resisc45': lambda path: make_resisc45(
            path, seed, pick(resisc45_per_class, 'resisc45_per_class')),
        'dior': lambda path: make_dior(
            path, seed, pick(dior_trainval, 'dior_trainval'), pick(dior_test, 'dior_test'),
            dior_img_size),
        'potsdam': lambda path: make_potsdam(
            path, seed, pick(potsdam_tile_size, 'potsdam_tile_size'),
            cfg['potsdam_train_tiles'], cfg['potsdam_val_tiles'], potsdam_zipped),
        'extra_cls': lambda path: make_extra_cls(
            path, seed, pick(extra_cls_per_class, 'extra_cls_per_class')),
        'extra_det': lambda path: make_extra_det(
            path, seed, pick(extra_det_images, 'extra_det_images')),
    }
    for name, make in makers.items():
        if name in datasets:
            summary.lines.append(make(osp.join(out_dir, DATASET_DIRS[name])))
    return summary
