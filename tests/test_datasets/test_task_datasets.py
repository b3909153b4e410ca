"""The three task datasets on minimal hand-made prepared data."""
import json
import os

import mmcv
import numpy as np
import pytest

from rscotr.datasets import build_task_dataset
from rscotr.datasets.meta import DIOR_CLASSES, RESISC45_CLASSES


def _img(path, h=16, w=16, value=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mmcv.imwrite(np.full((h, w, 3), value, np.uint8), path)


def test_resisc45_reads_mmcls_lists_and_checks_labels(tmp_path):
    for name in ('airplane/a.jpg', 'wetland/b.jpg'):
        _img(str(tmp_path / 'train' / name))
    ann = tmp_path / 'train.txt'
    ann.write_text('airplane/a.jpg 0\nwetland/b.jpg 44\n')
    ds = build_task_dataset(dict(type='RESISC45Dataset', data_prefix=str(tmp_path / 'train'),
                                 ann_file=str(ann), pipeline=[]), 'cls')
    assert len(ds) == 2 and ds.CLASSES == RESISC45_CLASSES
    assert ds.get_gt_labels().tolist() == [0, 44]
    ann.write_text('airplane/a.jpg 45\n')
    with pytest.raises(ValueError, match='outside'):
        build_task_dataset(dict(type='RESISC45Dataset', data_prefix=str(tmp_path / 'train'),
                                ann_file=str(ann), pipeline=[]), 'cls')


def _coco(path, classes):
    coco = dict(images=[dict(id=1, file_name='JPEGImages-trainval/00001.jpg', width=64,
                             height=64)],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 5, 5], area=25,
                                  iscrowd=0)],
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])
    path.write_text(json.dumps(coco))
    return str(path)


def test_dior_needs_every_class_in_the_json(tmp_path):
    _img(str(tmp_path / 'JPEGImages-trainval' / '00001.jpg'), 64, 64)
    ann = _coco(tmp_path / 'dior_train.json', DIOR_CLASSES)
    ds = build_task_dataset(dict(type='DIORDataset', ann_file=ann, img_prefix=str(tmp_path),
                                 pipeline=[], filter_empty_gt=False), 'det')
    assert len(ds) == 1 and ds.CLASSES == DIOR_CLASSES
    assert ds.get_ann_info(0)['labels'].tolist() == [0]
    bad = _coco(tmp_path / 'bad.json', [c.lower() for c in DIOR_CLASSES])
    with pytest.raises(ValueError, match='Expressway-Service-area'):
        build_task_dataset(dict(type='DIORDataset', ann_file=bad, img_prefix=str(tmp_path),
                                pipeline=[]), 'det')


def test_potsdam_maps_clutter_to_the_ignore_index(tmp_path):
    label = np.array([[0, 1, 2], [3, 4, 5], [255, 5, 0]], np.uint8)
    _img(str(tmp_path / 'img_dir' / 'val' / 'p.png'), 3, 3)
    os.makedirs(tmp_path / 'ann_dir' / 'val')
    mmcv.imwrite(label, str(tmp_path / 'ann_dir' / 'val' / 'p.png'))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='DefaultFormatBundle'),
                dict(type='Collect', keys=['img', 'gt_semantic_seg'], meta_keys=[])]
    ds = build_task_dataset(dict(type='PotsdamIndexDataset', data_root=str(tmp_path),
                                 img_dir='img_dir/val', ann_dir='ann_dir/val',
                                 pipeline=pipeline), 'seg')
    assert len(ds.CLASSES) == 5 and 'clutter' not in ds.CLASSES
    expected = np.where(label == 5, 255, label)
    assert (ds.get_gt_seg_map_by_idx(0) == expected).all()  # evaluation
    assert (ds[0]['gt_semantic_seg'].data.numpy()[0] == expected).all()  # training
    perfect = ds.evaluate([np.where(expected == 255, 0, expected)], metric=['mIoU', 'mFscore'],
                          logger='silent')
    assert perfect['mIoU'] == pytest.approx(1.0) and perfect['aAcc'] == pytest.approx(1.0)
