"""point_dataset_at (rscotr.datasets.data_paths) for the standard formats on the extra demo data."""
import os.path as osp

import pytest

from rscotr.datasets import build_task_dataset
from rscotr.datasets.converters import convert_potsdam
from rscotr.datasets.data_paths import point_dataset_at
from rscotr.datasets.demo_data import EXTRA_CLS_CLASSES, EXTRA_DET_CLASSES, make_demo_data
from rscotr.datasets.meta import POTSDAM_CLASSES


@pytest.fixture(scope='module')
def extra_raw(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('raw'))
    make_demo_data(root, datasets=[], extra=True, extra_cls_per_class=5, extra_det_images=10)
    return root


def test_class_folders_pointed_at_the_extra_demo_data(extra_raw):
    cfg = dict(type='RepeatDataset', times=2,
               dataset=dict(type='ClassFolderDataset', data_prefix='data/x/images',
                            ann_file='data/x/meta/val.txt', pipeline=[]))
    point_dataset_at(cfg, extra_raw, '/nowhere')
    inner = cfg['dataset']
    assert inner['data_prefix'] == osp.join(extra_raw, 'extra_cls', 'images')
    assert inner['ann_file'] == osp.join(extra_raw, 'extra_cls', 'meta', 'val.txt')
    ds = build_task_dataset(inner, 'cls')
    assert ds.CLASSES == tuple(sorted(EXTRA_CLS_CLASSES)) and len(ds) == 10  # 1 of 5 a class
    # without a split list: the whole folder
    whole = dict(type='ClassFolderDataset', data_prefix='data/x/images', pipeline=[])
    point_dataset_at(whole, extra_raw, '/nowhere')
    assert whole.get('ann_file') is None and len(build_task_dataset(whole, 'cls')) == 50


def test_coco_json_pointed_at_the_extra_demo_data(extra_raw):
    cfg = dict(type='CocoJsonDataset', ann_file='data/y/annotations/train.json',
               img_prefix='data/y/images/', pipeline=[], filter_empty_gt=False)
    point_dataset_at(cfg, extra_raw, '/nowhere')
    assert cfg['ann_file'] == osp.join(extra_raw, 'extra_det', 'annotations', 'train.json')
    assert cfg['img_prefix'] == osp.join(extra_raw, 'extra_det', 'images') + '/'
    ds = build_task_dataset(cfg, 'det')
    assert ds.CLASSES == EXTRA_DET_CLASSES and len(ds) == 6


def test_mask_folders_pointed_at_the_prepared_potsdam(tmp_path):
    """The prepared Potsdam is in the mask-folder layout: MaskFolderDataset reads it."""
    make_demo_data(tmp_path / 'raw', datasets=['potsdam'], potsdam_tile_size=160)
    convert_potsdam(str(tmp_path / 'raw' / 'Potsdam'), str(tmp_path / 'prepared' / 'potsdam'),
                    clip_size=80, stride=80, show_progress=False)
    cfg = dict(type='MaskFolderDataset', data_root='data/z', img_dir='img_dir/val',
               ann_dir='ann_dir/val', img_suffix='.png', classes=list(POTSDAM_CLASSES),
               pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
    point_dataset_at(cfg, str(tmp_path / 'raw'), str(tmp_path / 'prepared'))
    assert cfg['data_root'] == str(tmp_path / 'prepared' / 'potsdam')
    assert (cfg['img_dir'], cfg['ann_dir']) == ('img_dir/val', 'ann_dir/val')
    ds = build_task_dataset(cfg, 'seg')
    assert len(ds) == 8  # 2 val tiles of 160 px in patches of 80 px
    assert ds[0]['gt_semantic_seg'].shape == (80, 80)
