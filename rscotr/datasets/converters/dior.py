"""Convert DIOR (horizontal boxes, VOC-style XMLs) to COCO json files.

Input (the official release, ``RAW_DIR`` = the DIOR root)::

    JPEGImages-trainval/<id>.jpg
    JPEGImages-test/<id>.jpg
    Annotations/Horizontal Bounding Boxes/<id>.xml   (or Annotations/<id>.xml)
    ImageSets/Main/{train,val,test}.txt

Output::

    OUT/annotations/dior_train.json
    OUT/annotations/dior_val.json
    OUT/annotations/dior_test.json
    OUT/annotations/dior_trainval.json   (train then val)

Conventions:

* ``images[].file_name`` is relative to the **DIOR root**, e.g.
  ``JPEGImages-trainval/00001.jpg`` or ``JPEGImages-test/11726.jpg``, so a
  data config uses ``img_prefix=<DIOR root>`` for every split and the json
  says which image folder a split uses. An image is looked up in its split's
  folder (train/val: ``JPEGImages-trainval``, test: ``JPEGImages-test``) and
  then in the other one.
* ``images[].id`` is the integer value of the 5-digit id (``'00001'`` -> 1),
  so ids agree across the split files.
* ``categories`` are the 20 :data:`~rscotr.datasets.meta.DIOR_CLASSES` in
  order with ``id`` = index + 1; ``annotations[].category_id`` uses them.
* ``bbox`` is ``[x, y, w, h]`` with ``w = xmax - xmin`` and
  ``h = ymax - ymin`` (pixel coordinates as in the XML, no +1, as mmdet 2.x
  reads VOC XMLs), clipped to the image; ``area = w * h``; ``iscrowd = 0``;
  annotation ids run from 1 within each file.
"""
import json
import logging
import os
import os.path as osp
import xml.etree.ElementTree as ET
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...utils.io import PathLike
from ..meta import (DIOR_ANN_DIR, DIOR_CLASSES, DIOR_IMAGESETS_DIR,
                    DIOR_SPLIT_IMG_DIRS, DIOR_TEST_IMG_DIR,
                    DIOR_TRAINVAL_IMG_DIR)
from .common import (ConversionError, ConversionSummary, atomic_output_dir, image_size,
                     progress, read_image_checked)

logger = logging.getLogger(__name__)

SPLITS = ('train', 'val', 'test')
#: Extra json written as the concatenation of other splits.
MERGED_SPLITS = {'trainval': ('train', 'val')}


def _text(elem: ET.Element, tag: str, path: str) -> str:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ConversionError(path, f'missing <{tag}> in <{elem.tag}>')
    return child.text.strip()


def _number(elem: ET.Element, tag: str, path: str) -> float:
    text = _text(elem, tag, path)
    try:
        return float(text)
    except ValueError:
        raise ConversionError(path, f'<{tag}> is not a number: {text!r}')


def parse_dior_xml(path: PathLike) -> Dict[str, Any]:
    """Read one DIOR horizontal-box annotation.

    Args:
        path (str): ``<id>.xml``.

    Returns:
        dict: ``filename`` (str or None), ``width``, ``height`` (int) and
        ``objects``: list of dicts with ``name`` (str), ``bbox``
        (``[xmin, ymin, xmax, ymax]`` floats), ``difficult`` (int).

    Raises:
        ConversionError: unreadable XML or missing/non-numeric fields.
    """
    path = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ConversionError(path, f'cannot parse XML: {e}') from e
    size = root.find('size')
    if size is None:
        raise ConversionError(path, 'missing <size>')
    fname = root.find('filename')
    objects = []
    for obj in root.findall('object'):
        box = obj.find('bndbox')
        if box is None:
            raise ConversionError(path, 'missing <bndbox> in <object>')
        difficult = obj.find('difficult')
        objects.append(
            dict(
                name=_text(obj, 'name', path),
                bbox=[_number(box, k, path)
                      for k in ('xmin', 'ymin', 'xmax', 'ymax')],
                difficult=int(difficult.text) if difficult is not None
                and difficult.text and difficult.text.strip().isdigit() else
                0))
    return dict(
        filename=fname.text.strip()
        if fname is not None and fname.text else None,
        width=int(_number(size, 'width', path)),
        height=int(_number(size, 'height', path)),
        objects=objects)


def _read_id_list(path: str) -> List[str]:
    if not osp.isfile(path):
        raise ConversionError(path, 'split list not found')
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    seen = set()
    for i in ids:
        if i in seen:
            raise ConversionError(path, f'id {i!r} listed twice')
        seen.add(i)
    return ids


def _find_ann_dir(root: str) -> str:
    ann_dir = osp.join(root, DIOR_ANN_DIR)
    if osp.isdir(ann_dir):
        return ann_dir
    flat = osp.join(root, 'Annotations')
    if osp.isdir(flat) and any(
            f.endswith('.xml') for f in os.listdir(flat)):
        return flat
    raise ConversionError(ann_dir, 'annotation folder not found')


def _find_image(root: str, split: str, img_id: str) -> str:
    """Image path relative to ``root`` (own split's folder first)."""
    first = DIOR_SPLIT_IMG_DIRS[split]
    other = (DIOR_TEST_IMG_DIR
             if first == DIOR_TRAINVAL_IMG_DIR else DIOR_TRAINVAL_IMG_DIR)
    for folder in (first, other):
        rel = f'{folder}/{img_id}.jpg'
        if osp.isfile(osp.join(root, rel)):
            return rel
    raise ConversionError(
        osp.join(root, first, f'{img_id}.jpg'),
        f'image listed in {DIOR_IMAGESETS_DIR}/{split}.txt not found')


def _clip_box(bbox: Sequence[float], width: int,
              height: int) -> Tuple[Optional[List[float]], str]:
    """Clip an xyxy box; returns (xywh or None, reason it is bad)."""
    x1, y1, x2, y2 = bbox
    if x1 >= x2 or y1 >= y2:
        return None, f'degenerate box {list(bbox)} (xmin>=xmax or ymin>=ymax)'
    cx1, cy1 = min(max(x1, 0.), width), min(max(y1, 0.), height)
    cx2, cy2 = min(max(x2, 0.), width), min(max(y2, 0.), height)
    w, h = cx2 - cx1, cy2 - cy1
    if w <= 0 or h <= 0:
        return None, (f'box {list(bbox)} has zero area after clipping to '
                      f'the {width}x{height} image')
    return [cx1, cy1, w, h], ''


def convert_dior(raw_dir: PathLike,
                 out_dir: PathLike,
                 drop_bad_boxes: bool = False,
                 verify_images: bool = False,
                 overwrite: bool = False,
                 show_progress: bool = True) -> ConversionSummary:
    """Write COCO json files for the DIOR train/val/test/trainval splits.

    Args:
        raw_dir (str): DIOR root (official layout, see module docstring).
        out_dir (str): Output folder, written atomically.
        drop_bad_boxes (bool): Drop degenerate / zero-area boxes with a
            warning count instead of failing.
        verify_images (bool): Fully decode every image (slow) instead of
            reading its header only.
        overwrite (bool): Replace an existing ``out_dir`` on success.
        show_progress (bool): Show a tqdm progress bar.

    Returns:
        ConversionSummary: box counts per split and class, image totals.

    Raises:
        ConversionError: missing split list / image / XML, unknown class
            string, XML size differing from the image, bad box (unless
            ``drop_bad_boxes``), or an existing ``out_dir``.
    """
    root = os.fspath(raw_dir)
    if not osp.isdir(root):
        raise ConversionError(root, 'input folder not found')
    ann_dir = _find_ann_dir(root)
    split_ids = OrderedDict(
        (s, _read_id_list(osp.join(root, DIOR_IMAGESETS_DIR, f'{s}.txt')))
        for s in SPLITS)
    owner: Dict[str, str] = {}
    for split, ids in split_ids.items():
        for i in ids:
            if i in owner:
                raise ConversionError(
                    osp.join(root, DIOR_IMAGESETS_DIR, f'{split}.txt'),
                    f'id {i!r} is also in {owner[i]}.txt')
            owner[i] = split
    cat_ids = {name: k + 1 for k, name in enumerate(DIOR_CLASSES)}

    # Parse and check everything (no output yet).
    records: Dict[str, List[Dict[str, Any]]] = OrderedDict()
    n_dropped = n_clipped = n_empty = n_difficult = n_moved = 0
    jobs = [(s, i) for s, ids in split_ids.items() for i in ids]
    for split in SPLITS:
        records[split] = []
    for split, img_id in progress(jobs, 'DIOR', show_progress):
        xml_path = osp.join(ann_dir, f'{img_id}.xml')
        if not osp.isfile(xml_path):
            raise ConversionError(xml_path, 'annotation XML not found')
        ann = parse_dior_xml(xml_path)
        rel = _find_image(root, split, img_id)
        n_moved += not rel.startswith(DIOR_SPLIT_IMG_DIRS[split] + '/')
        img_path = osp.join(root, rel)
        if verify_images:
            h, w = read_image_checked(img_path).shape[:2]
        else:
            w, h = image_size(img_path)
        if (ann['width'], ann['height']) != (w, h):
            raise ConversionError(
                xml_path, f'<size> says {ann["width"]}x{ann["height"]} but '
                f'{rel} is {w}x{h}')
        boxes = []
        for obj in ann['objects']:
            if obj['name'] not in cat_ids:
                raise ConversionError(
                    xml_path, f'unknown class {obj["name"]!r} (expected one '
                    f'of the 20 DIOR class strings: {list(DIOR_CLASSES)})')
            xywh, reason = _clip_box(obj['bbox'], w, h)
            if xywh is None:
                if drop_bad_boxes:
                    n_dropped += 1
                    continue
                raise ConversionError(xml_path, reason)
            x1, y1, x2, y2 = obj['bbox']
            if (xywh[0], xywh[1], xywh[0] + xywh[2],
                    xywh[1] + xywh[3]) != (x1, y1, x2, y2):
                n_clipped += 1
            n_difficult += obj['difficult'] != 0
            boxes.append((cat_ids[obj['name']], xywh))
        n_empty += not boxes
        records[split].append(
            dict(id=img_id, file_name=rel, width=w, height=h, boxes=boxes))

    def to_coco(recs: List[Dict[str, Any]]) -> Dict[str, Any]:
        images, annotations = [], []
        for k, rec in enumerate(recs):
            image_id = int(rec['id']) if rec['id'].isdigit() else k + 1
            images.append(
                dict(
                    id=image_id,
                    file_name=rec['file_name'],
                    width=rec['width'],
                    height=rec['height']))
            for cat_id, (x, y, w, h) in rec['boxes']:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=cat_id,
                        bbox=[float(x), float(y),
                              float(w), float(h)],
                        area=float(w * h),
                        iscrowd=0))
        return dict(
            info=dict(
                description='DIOR horizontal boxes, converted by rscotr',
                file_name_root='DIOR root (use img_prefix=<DIOR root>)'),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=[
                dict(id=cat_id, name=name, supercategory='none')
                for name, cat_id in cat_ids.items()
            ])

    outputs = OrderedDict((s, records[s]) for s in SPLITS)
    for merged, parts in MERGED_SPLITS.items():
        outputs[merged] = [r for p in parts for r in records[p]]

    summary = ConversionSummary(
        dataset='DIOR', out_dir=osp.abspath(os.fspath(out_dir)),
        unit='boxes')
    with atomic_output_dir(out_dir, overwrite) as tmp:
        os.makedirs(osp.join(tmp, 'annotations'))
        for split, recs in outputs.items():
            rel = f'annotations/dior_{split}.json'
            with open(osp.join(tmp, rel), 'w') as f:
                json.dump(to_coco(recs), f)
            summary.files.append(rel)

    for split, recs in outputs.items():
        counts = OrderedDict((name, 0) for name in DIOR_CLASSES)
        for rec in recs:
            for cat_id, _ in rec['boxes']:
                counts[DIOR_CLASSES[cat_id - 1]] += 1
        summary.counts[split] = counts
        summary.totals[split] = len(recs)
    summary.notes.append(
        'file_name is relative to the DIOR root: use img_prefix='
        f'{osp.abspath(root)}')
    summary.notes.append(f'{n_empty} images without objects (kept)')
    if n_moved:
        summary.notes.append(
            f'{n_moved} images found in the other image folder than their '
            'split\'s (file_name says where)')
    if n_clipped:
        summary.notes.append(f'{n_clipped} boxes clipped to the image')
    if n_dropped:
        summary.notes.append(f'{n_dropped} bad boxes dropped')
        logger.warning('DIOR: dropped %d bad boxes', n_dropped)
    if n_difficult:
        summary.notes.append(f'{n_difficult} boxes marked difficult (kept)')
    return summary
