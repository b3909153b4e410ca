"""The standard formats (rscotr.datasets.standard): class folders, COCO json, mask folders.

Each loads and gives training samples through the demo's real pipelines, gives
100 % / 1.0 on perfect predictions, and refuses each bad input naming the file.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmcv import Config

from rscotr.datasets import build_task_dataset
from rscotr.datasets.checks import DataError
from rscotr.datasets.tasks import dataset_classes

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RNG = np.random.RandomState(0)


def _base(name: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))


def _named(err: Exception, path: str) -> bool:
    """``err`` is about ``path``: ``'<path>: <problem>'``, which mmcv's builder
    re-raises as ``'<dataset type>: <path>: <problem>'`` when building."""
    return f'{path}: ' in str(err)


def _img(path, shape=(48, 48, 3), value=None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = RNG.randint(0, 255, shape, dtype=np.uint8) if value is None else \
        np.full(shape, value, np.uint8)
    assert cv2.imwrite(path, img)


# ---------------------------------------------------------------- ClassFolderDataset
def _class_folders(root, classes=('forest', 'beach', 'river'), per_class=2):
    for c in classes:
        for k in range(per_class):
            _img(osp.join(root, c, f'{c}_{k}.jpg'))
    return root


def _cls(root, **kwargs):
    cfg = dict(type='ClassFolderDataset', data_prefix=root, pipeline=[])
    cfg.update(kwargs)
    return build_task_dataset(cfg, 'cls')


def test_class_folders_load_train_and_evaluate(tmp_path):
    root = _class_folders(str(tmp_path / 'images'))
    pipeline = _base('resisc45').resisc_train_pipeline_light_64
    ds = _cls(root, pipeline=pipeline)
    # classes: the sorted folder names; labels follow the folder of each image
    assert ds.CLASSES == ('beach', 'forest', 'river')
    assert len(ds) == 6
    assert ds.get_gt_labels().tolist() == [0, 0, 1, 1, 2, 2]
    sample = ds[2]
    assert tuple(sample['img'].shape) == (3, 64, 64) and int(sample['gt_label']) == 1
    assert dataset_classes('cls', dict(type='ClassFolderDataset', data_prefix=root)) == \
        (('beach', 'forest', 'river'), None)
    # perfect predictions: 100 %; all wrong: 0 %
    scores = np.eye(3)[ds.get_gt_labels()]
    assert ds.evaluate(list(scores), metric='accuracy',
                       metric_options=dict(topk=(1, )))['accuracy_top-1'] == 100.0
    assert ds.evaluate(list(np.roll(scores, 1, axis=1)), metric='accuracy',
                       metric_options=dict(topk=(1, )))['accuracy_top-1'] == 0.0


def test_class_folders_classes_from_config_and_split_lists(tmp_path):
    root = _class_folders(str(tmp_path / 'images'))
    classes = tmp_path / 'classes.txt'
    classes.write_text('river\nforest\nbeach\n')  # not the sorted order
    split = tmp_path / 'val.txt'
    split.write_text('beach/beach_1.jpg\n\nriver/river_0.jpg\n')
    ds = _cls(root, classes=str(classes), ann_file=str(split))
    assert ds.CLASSES == ('river', 'forest', 'beach')
    assert [i['img_info']['filename'] for i in ds.data_infos] == \
        ['beach/beach_1.jpg', 'river/river_0.jpg']
    assert ds.get_gt_labels().tolist() == [2, 0]
    assert dataset_classes('cls', dict(type='ClassFolderDataset', data_prefix=root,
                                       classes=str(classes)))[0] == ['river', 'forest', 'beach']


def test_class_folders_refused(tmp_path):
    root = _class_folders(str(tmp_path / 'images'))
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(DataError, match='not found') as info:
        _cls(missing)
    assert _named(info.value, missing)
    # a class folder that is empty
    os.makedirs(osp.join(root, 'lake'))
    with pytest.raises(DataError, match='class folder holds no image') as info:
        _cls(root)
    assert _named(info.value, osp.join(root, 'lake'))
    # a class folder that is not one of the classes
    _img(osp.join(root, 'lake', 'lake_0.jpg'))
    with pytest.raises(DataError, match='not one of the 3 classes') as info:
        _cls(root, classes=['beach', 'forest', 'river'])
    assert _named(info.value, osp.join(root, 'lake'))
    # a class without its folder
    with pytest.raises(DataError, match=r"no folder for the classes \['desert'\]"):
        _cls(root, classes=['beach', 'forest', 'river', 'lake', 'desert'])
    # a listed file that does not exist
    split = tmp_path / 'train.txt'
    split.write_text('beach/beach_0.jpg\nbeach/beach_9.jpg\n')
    with pytest.raises(DataError, match=r'file not found \(listed in .*train.txt, line 2\)') \
            as info:
        _cls(root, ann_file=str(split))
    assert _named(info.value, osp.join(root, 'beach', 'beach_9.jpg'))
    # a listed folder that is not a class, a line without a class folder
    for line, message in (('desert/a.jpg', "'desert' is not one of the classes"),
                          ('a.jpg', r'is not <class>/<file>')):
        split.write_text(line + '\n')
        with pytest.raises(DataError, match=message) as info:
            _cls(root, ann_file=str(split))
        assert _named(info.value, str(split))
    # a classes file that is missing
    with pytest.raises(DataError, match='classes file .* not found'):
        _cls(root, classes=str(tmp_path / 'classes.txt'))


def test_class_folders_unreadable_image_named_at_load_time(tmp_path):
    root = _class_folders(str(tmp_path / 'images'))
    ds = _cls(root, pipeline=[dict(type='LoadImageFromFile')])
    path = osp.join(root, 'beach', 'beach_0.jpg')
    with open(path, 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(DataError) as info:
        ds[0]
    assert info.value.path == path
    assert ds[1]['img'].shape == (48, 48, 3)


# ---------------------------------------------------------------- CocoJsonDataset
def _coco(root, anns=None, categories=None, name='train.json', size=(64, 48)):
    """Two images (the second without objects) of ``size`` (w, h)."""
    w, h = size
    for i in (1, 2):
        _img(osp.join(root, 'images', f'{i}.jpg'), (h, w, 3))
    if anns is None:
        anns = [dict(category_id=7, bbox=[2, 3, 20, 10]), dict(category_id=3, bbox=[30, 20, 8, 12])]
    anns = [dict(id=k + 1, image_id=1, area=a['bbox'][2] * a['bbox'][3], iscrowd=0, **a)
            for k, a in enumerate(anns)]
    coco = dict(images=[dict(id=i, file_name=f'{i}.jpg', width=w, height=h) for i in (1, 2)],
                annotations=anns,
                categories=categories or [dict(id=7, name='tank'), dict(id=3, name='ship')])
    path = osp.join(root, name)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def _det(ann_file, **kwargs):
    cfg = dict(type='CocoJsonDataset', ann_file=ann_file,
               img_prefix=osp.join(osp.dirname(ann_file), 'images') + '/', pipeline=[])
    cfg.update(kwargs)
    return build_task_dataset(cfg, 'det')


def test_coco_json_loads_trains_and_evaluates(tmp_path):
    ann = _coco(str(tmp_path))
    cfg = dict(type='CocoJsonDataset', ann_file=ann)
    # classes: the categories in id order (ship 3, tank 7), known before building
    assert dataset_classes('det', cfg) == (('ship', 'tank'), None)
    ds = _det(ann, pipeline=_base('dior').dior_train_pipeline_256)
    assert ds.CLASSES == ('ship', 'tank')
    assert len(ds) == 1  # mmdet drops the image without objects from training
    sample = ds[0]
    assert sample['gt_labels'].data.tolist() == [1, 0]
    assert sample['img'].data.shape[0] == 3
    # evaluation over both images: perfect boxes give mAP 1.0
    test = _det(ann, test_mode=True)
    assert len(test) == 2
    results = [[np.array([[30, 20, 38, 32, 0.9]], np.float32),
                np.array([[2, 3, 22, 13, 0.9]], np.float32)],
               [np.zeros((0, 5), np.float32)] * 2]
    metrics = test.evaluate(results, metric='bbox')
    assert metrics['bbox_mAP'] == pytest.approx(1.0)
    assert metrics['bbox_mAP_50'] == pytest.approx(1.0)
    # the same boxes with the classes swapped give 0
    swapped = [[r[1], r[0]] for r in results]
    assert test.evaluate(swapped, metric='bbox')['bbox_mAP'] == pytest.approx(0.0)


@pytest.mark.parametrize('classes', [['tank', 'ship'], ['ship', 'tank']])
def test_coco_json_labels_follow_the_config_classes(tmp_path, classes):
    ann = _coco(str(tmp_path))  # json categories: tank (7), ship (3); boxes: tank, ship
    ds = _det(ann, classes=classes, filter_empty_gt=False)
    assert ds.CLASSES == tuple(classes)
    assert ds.get_ann_info(0)['labels'].tolist() == [classes.index('tank'),
                                                     classes.index('ship')]


@pytest.mark.parametrize('content, message', [
    (None, 'COCO json .* not found'),
    ('', 'empty file'),
    ('{"images": [', 'not valid JSON'),
    ('{"images": []}', "no 'categories' list"),
])
def test_coco_json_bad_file(tmp_path, content, message):
    path = str(tmp_path / 'train.json')
    if content is not None:
        with open(path, 'w') as f:
            f.write(content)
    with pytest.raises(DataError, match=message) as info:
        _det(path)
    assert _named(info.value, path)
    with pytest.raises(DataError, match=message):
        dataset_classes('det', dict(type='CocoJsonDataset', ann_file=path))


def test_coco_json_bad_categories(tmp_path):
    ann = _coco(str(tmp_path), anns=[dict(category_id=5, bbox=[1, 1, 4, 4])])
    with pytest.raises(DataError, match=r'annotation id 1 has category_id 5, which is not '
                       r'among the category ids \[3, 7\]') as info:
        _det(ann)
    assert _named(info.value, ann)
    ann = _coco(str(tmp_path))
    with pytest.raises(DataError, match=r"category 'tank' \(id 7\) is not one of the classes") \
            as info:
        _det(ann, classes=['ship'])
    assert _named(info.value, ann)
    with pytest.raises(DataError, match=r"classes \['car'\] are not categories"):
        _det(ann, classes=['ship', 'tank', 'car'])


@pytest.mark.parametrize('box, message', [
    ([4, 4, 0, 10], 'has zero area'),
    ([50, 10, 20, 5], 'reaches outside the 64x48 image'),
])
def test_coco_json_bad_boxes_named_at_load_time(tmp_path, box, message):
    ann = _coco(str(tmp_path), anns=[dict(category_id=3, bbox=[1, 1, 8, 8]),
                                     dict(category_id=3, bbox=box)])
    ds = _det(ann, pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='LoadAnnotations', with_bbox=True)])
    with pytest.raises(DataError, match=message) as info:
        ds[0]
    assert info.value.path == str(tmp_path / 'images' / '1.jpg')
    assert 'train.json' in str(info.value)


def test_coco_json_image_size_mismatch_named_at_load_time(tmp_path):
    ann = _coco(str(tmp_path))
    _img(str(tmp_path / 'images' / '2.jpg'), (48, 60, 3))
    ds = _det(ann, test_mode=True, pipeline=[dict(type='LoadImageFromFile')])
    assert ds[0]['img'].shape == (48, 64, 3)
    with pytest.raises(DataError, match='image of 60x48 pixels where .*train.json says 64x48') \
            as info:
        ds[1]
    assert info.value.path == str(tmp_path / 'images' / '2.jpg')


# ---------------------------------------------------------------- MaskFolderDataset
def _masks(root, masks, img_size=None):
    """One image per mask (``a``, ``b``, ...): PNG images, PNG masks."""
    for stem, mask in masks.items():
        _img(osp.join(root, 'img', f'{stem}.png'), (img_size or mask.shape) + (3, ))
        os.makedirs(osp.join(root, 'ann'), exist_ok=True)
        assert cv2.imwrite(osp.join(root, 'ann', f'{stem}.png'), mask.astype(np.uint8))
    return root


def _seg(root, **kwargs):
    cfg = dict(type='MaskFolderDataset', data_root=root, img_dir='img', ann_dir='ann',
               img_suffix='.png', classes=['water', 'land', 'road'], pipeline=[])
    cfg.update(kwargs)
    return build_task_dataset(cfg, 'seg')


def _mask(value=0):
    mask = np.full((40, 40), value, np.uint8)
    mask[:20, :20], mask[20:, 20:], mask[:4, 30:] = 1, 2, 255
    return mask


def test_mask_folders_load_train_and_evaluate(tmp_path):
    root = _masks(str(tmp_path), {'a': _mask(), 'b': _mask(1)})
    ds = _seg(root, pipeline=_base('potsdam').potsdam_train_pipeline_5class_128)
    assert ds.CLASSES == ('water', 'land', 'road') and len(ds) == 2
    sample = ds[0]
    assert tuple(sample['img'].data.shape) == (3, 128, 128)
    assert set(np.unique(sample['gt_semantic_seg'].data.numpy())) <= {0, 1, 2, 255}
    names, palette = dataset_classes('seg', dict(type='MaskFolderDataset',
                                                 classes=['water', 'land', 'road']))
    assert tuple(names) == ('water', 'land', 'road') and palette == [list(c) for c in ds.PALETTE]
    # perfect predictions: mIoU 1.0 (ignored pixels left out); water for all: lower
    test = _seg(root, test_mode=True)
    preds = [_mask(), _mask(1)]
    preds[0][:4, 30:] = 0  # predictions on ignored pixels do not count
    metrics = test.evaluate([p.astype(np.int64) for p in preds], metric='mIoU')
    assert metrics['mIoU'] == pytest.approx(1.0) and metrics['aAcc'] == pytest.approx(1.0)
    wrong = test.evaluate([np.zeros((40, 40), np.int64)] * 2, metric='mIoU')
    assert wrong['mIoU'] < 0.5


def test_mask_folders_classes_and_palette(tmp_path):
    root = _masks(str(tmp_path), {'a': _mask()})
    classes = tmp_path / 'classes.txt'
    classes.write_text('water\nland\nroad\n')
    ds = _seg(root, classes=str(classes), palette=[[0, 0, 255], [0, 255, 0], [128, 128, 128]])
    assert ds.CLASSES == ('water', 'land', 'road')
    assert [list(c) for c in ds.PALETTE] == [[0, 0, 255], [0, 255, 0], [128, 128, 128]]
    with pytest.raises(ValueError, match='classes is required'):
        _seg(root, classes=None)
    with pytest.raises(ValueError, match='palette must give one RGB colour to each of the 3'):
        _seg(root, palette=[[0, 0, 0]])


def test_mask_folders_refused(tmp_path):
    good = _masks(str(tmp_path / 'good'), {'a': _mask(), 'b': _mask()})
    load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
    # mask values outside the classes, not the ignore index
    bad = _mask()
    bad[30, 0] = 3
    root = _masks(str(tmp_path / 'values'), {'a': _mask(), 'b': bad})
    ds = _seg(root, pipeline=load)
    assert ds[0]['gt_semantic_seg'].shape == (40, 40)
    with pytest.raises(DataError, match=r'label values \[3\] are neither a class index '
                       r'\(0..2\) nor the ignore index 255') as info:
        ds[1]
    assert info.value.path == osp.join(root, 'ann', 'b.png')
    # 255 is a bad value under another ignore index
    with pytest.raises(DataError, match=r'label values \[255\]'):
        _seg(good, pipeline=load, ignore_index=250)[0]
    # a mask missing for an image
    os.remove(osp.join(good, 'ann', 'b.png'))
    with pytest.raises(DataError, match=r'mask of .*b.png not found') as info:
        _seg(good)
    assert _named(info.value, osp.join(good, 'ann', 'b.png'))
    # a mask of another size than its image
    root = _masks(str(tmp_path / 'size'), {'a': _mask()}, img_size=(40, 32))
    with pytest.raises(DataError, match=r'label map of size \(40, 40\) for an image of size '
                       r'\(40, 32\)') as info:
        _seg(root, pipeline=load)[0]
    assert info.value.path == osp.join(root, 'ann', 'a.png')
    # missing folders, no images
    with pytest.raises(DataError, match='mask folder .* not found') as info:
        _seg(good, ann_dir='masks')
    assert _named(info.value, osp.join(good, 'masks'))
    with pytest.raises(DataError, match="no image ending in '.tif'") as info:
        _seg(good, img_suffix='.tif')
    assert _named(info.value, osp.join(good, 'img'))
