"""Bad samples at loading time raise a DataError naming the file (rscotr.datasets.checks)."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from rscotr.datasets import build_task_dataset
from rscotr.datasets.checks import DataError
from rscotr.datasets.meta import DIOR_CLASSES

RNG = np.random.RandomState(0)


def _img(path, shape=(32, 32, 3)):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, RNG.randint(0, 255, shape, dtype=np.uint8))


def _resisc(root, on_bad_sample='error'):
    for i in range(3):
        _img(osp.join(root, 'train', 'airplane', f'airplane_{i}.png'))
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.writelines(f'airplane/airplane_{i}.png 0\n' for i in range(3))
    return build_task_dataset(
        dict(type='RESISC45Dataset', data_prefix=osp.join(root, 'train'),
             ann_file=osp.join(root, 'train.txt'), on_bad_sample=on_bad_sample,
             pipeline=[dict(type='LoadImageFromFile')]), 'cls')


def _first_image(root):
    return osp.join(root, 'train', 'airplane', 'airplane_0.png')


@pytest.mark.parametrize('fault, message', [
    ('missing', 'file not found'),
    ('empty', 'empty file'),
    ('garbage', 'could not be decoded|cannot be loaded'),
    ('truncated', 'truncated PNG'),
    ('grayscale', 'grayscale image where 3 bands are expected'),
    ('4-band', '4-band image where 3 bands are expected'),
    ('16-bit', 'uint16 image where 8-bit bands'),
])
def test_bad_classification_images(tmp_path, fault, message):
    dataset = _resisc(str(tmp_path))
    path = _first_image(str(tmp_path))
    if fault == 'missing':
        os.remove(path)
    elif fault == 'empty':
        open(path, 'w').close()
    elif fault == 'garbage':
        with open(path, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n' + b'\x00' * 64 + b'IEND')
    elif fault == 'truncated':
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif fault == 'grayscale':
        _img(path, (32, 32))
    elif fault == '4-band':
        _img(path, (32, 32, 4))
    elif fault == '16-bit':
        assert cv2.imwrite(path, RNG.randint(0, 65535, (32, 32, 3)).astype(np.uint16))
    with pytest.raises(DataError, match=message) as info:
        dataset[0]
    assert info.value.path == path
    assert dataset[1]['img'].shape == (32, 32, 3)  # good samples still load


def test_truncated_jpeg(tmp_path):
    path = str(tmp_path / 'a.jpg')
    _img(path)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) - 40])
    from rscotr.datasets.checks import check_file_complete
    with pytest.raises(DataError, match='truncated JPEG'):
        check_file_complete(path)


def test_skip_option_warns_counts_and_uses_the_next_sample(tmp_path):
    dataset = _resisc(str(tmp_path), on_bad_sample='skip')
    os.remove(_first_image(str(tmp_path)))
    with pytest.warns(UserWarning, match='skipping bad sample 0 .*file not found'):
        sample = dataset[0]
    assert sample['ori_filename'] == 'airplane/airplane_1.png'
    assert dataset.bad_samples == 1
    with pytest.raises(ValueError, match='on_bad_sample'):
        _resisc(str(tmp_path / 'x'), on_bad_sample='ignore')


def _dior(root, boxes, img_shape=(32, 32)):
    _img(osp.join(root, 'JPEGImages', '0.png'), img_shape + (3, ))
    anns = [dict(id=i + 1, image_id=1, category_id=1, bbox=list(b), area=float(b[2] * b[3]),
                 iscrowd=0) for i, b in enumerate(boxes)]
    coco = dict(images=[dict(id=1, file_name='JPEGImages/0.png', width=32, height=32)],
                annotations=anns,
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(DIOR_CLASSES)])
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(coco, f)
    return build_task_dataset(
        dict(type='DIORDataset', ann_file=osp.join(root, 'ann.json'), img_prefix=root + '/',
             filter_empty_gt=False,
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='LoadAnnotations', with_bbox=True)]), 'det')


@pytest.mark.parametrize('box, message', [
    ((4, 4, 0, 10), 'has zero area'),
    ((4, 4, 10, 0), 'has zero area'),
    ((20, 20, 20, 5), 'reaches outside the 32x32 image'),
    ((-3, 2, 5, 5), 'reaches outside the 32x32 image'),
])
def test_bad_detection_boxes(tmp_path, box, message):
    dataset = _dior(str(tmp_path), [(1, 1, 8, 8), box])
    with pytest.raises(DataError, match=message) as info:
        dataset[0]
    assert info.value.path.endswith('JPEGImages/0.png')
    assert 'ann.json' in str(info.value)


def test_good_detection_sample_and_image_size_mismatch(tmp_path):
    dataset = _dior(str(tmp_path / 'good'), [(1, 1, 8, 8), (0, 0, 32, 32)])
    assert dataset[0]['gt_bboxes'].shape == (2, 4)
    dataset = _dior(str(tmp_path / 'bad'), [(1, 1, 8, 8)], img_shape=(40, 32))
    with pytest.raises(DataError, match='32x40 pixels where .*ann.json says 32x32'):
        dataset[0]


def test_detection_image_missing(tmp_path):
    dataset = _dior(str(tmp_path), [(1, 1, 8, 8)])
    os.remove(str(tmp_path / 'JPEGImages' / '0.png'))
    with pytest.raises(DataError, match='0.png: file not found') as info:
        dataset[0]
    assert info.value.path == str(tmp_path / 'JPEGImages' / '0.png')


def _potsdam(root, labels):
    _img(osp.join(root, 'img_dir', 'train', 'a.png'))
    label_path = osp.join(root, 'ann_dir', 'train', 'a.png')
    os.makedirs(osp.dirname(label_path), exist_ok=True)
    assert cv2.imwrite(label_path, labels.astype(np.uint8))
    return build_task_dataset(
        dict(type='PotsdamIndexDataset', data_root=root, img_dir='img_dir/train',
             ann_dir='ann_dir/train',
             pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]),
        'seg'), label_path


def test_label_map_values_outside_the_classes(tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[:4, :4], labels[4:8, :4], labels[8:, :] = 5, 255, 4  # clutter, ignore, class 4
    dataset, _ = _potsdam(str(tmp_path / 'good'), labels)
    assert set(np.unique(dataset[0]['gt_semantic_seg'])) == {0, 4, 255}
    labels[0, 0] = 7
    dataset, label_path = _potsdam(str(tmp_path / 'bad'), labels)
    with pytest.raises(DataError, match=r'label values \[7\] are neither a class index'
                       r' \(0..4\) nor the ignore index 255') as info:
        dataset[0]
    assert info.value.path == label_path


def test_label_map_of_another_size_or_missing(tmp_path):
    dataset, label_path = _potsdam(str(tmp_path), np.zeros((16, 32), np.uint8))
    with pytest.raises(DataError, match=r'label map of size \(16, 32\) for an image of size'):
        dataset[0]
    os.remove(label_path)
    with pytest.raises(DataError, match='file not found') as info:
        dataset[0]
    assert info.value.path == label_path
