# ISPRS Potsdam semantic segmentation (mmseg pipelines), prepared by
#   python tools/dataset_converters/potsdam.py data/Potsdam -o data/prepared/potsdam
# Prepared labels: 0..4 the five classes, 5 clutter, 255 boundary (--no-boundary).
# Variables are prefixed `potsdam_`.
#
# Protocols (PotsdamIndexDataset(protocol=...); the metrics carry
# potsdam.protocol so that figures of the two are never mixed up):
#   potsdam_train / _val / _test                  'release' (README: Fidelity, the
#       reference; tag 'release-6class'): 6 classes, clutter trained as a class
#       (the loss ignores only 255), training crops padded with label 5;
#       evaluation over 6 classes with ignore index 5. The seg head has
#       num_classes=6.
#   potsdam_train_5class / _val_5class / _test_5class   '5class' (common in the
#       literature; tag '5class'): clutter mapped to 255 and ignored in training
#       and evaluation, crops padded with 255. The seg head has num_classes=5.
#
# Pipelines: potsdam_train_pipeline (release) and potsdam_train_pipeline_5class
# resize the 512 px patches by 0.5-2, crop 512x512 and pad crops with the
# protocol's label; potsdam_test_pipeline runs whole patches at 512. At other
# sizes, built by the same functions below (mmcv leaves functions out of the
# config): potsdam_train_pipeline_5class_128 (patches at 256 px, resized by 0.5-2,
# 128x128 crops) and potsdam_test_pipeline_256, for the tiny demo model.
potsdam_data_root = 'data/prepared/potsdam/'
potsdam_img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
potsdam_crop_size = (512, 512)


def _train_pipeline(img_scale: tuple, crop_size: tuple, seg_pad_val: int) -> list:
    """Resize to ``img_scale`` times 0.5-2 -> random ``crop_size`` crop (at most 75 %
    of one class) -> flip 0.5 -> photometric distortion -> normalise -> pad the crop
    to ``crop_size`` with label ``seg_pad_val``."""
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=False),
        dict(type='Resize', img_scale=img_scale, ratio_range=(0.5, 2.0)),
        dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='Normalize', **potsdam_img_norm_cfg),
        dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=seg_pad_val),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_semantic_seg'])
    ]


def _test_pipeline(img_scale: tuple) -> list:
    """Resize to ``img_scale`` keeping the ratio -> normalise, no flip."""
    return [
        dict(type='LoadImageFromFile'),
        dict(
            type='MultiScaleFlipAug',
            img_scale=img_scale,
            flip=False,
            transforms=[
                dict(type='Resize', keep_ratio=True),
                dict(type='RandomFlip'),
                dict(type='Normalize', **potsdam_img_norm_cfg),
                dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img'])
            ])
    ]


potsdam_train_pipeline = _train_pipeline((512, 512), potsdam_crop_size, seg_pad_val=5)
potsdam_train_pipeline_5class = _train_pipeline((512, 512), potsdam_crop_size,
                                                seg_pad_val=255)
potsdam_test_pipeline = _test_pipeline((512, 512))
potsdam_train_pipeline_5class_128 = _train_pipeline((256, 256), (128, 128), seg_pad_val=255)
potsdam_train_pipeline_128 = _train_pipeline((256, 256), (128, 128), seg_pad_val=5)
potsdam_test_pipeline_256 = _test_pipeline((256, 256))
potsdam_train = dict(
    type='PotsdamIndexDataset',
    data_root=potsdam_data_root,
    img_dir='img_dir/train',
    ann_dir='ann_dir/train',
    protocol='release',
    pipeline=potsdam_train_pipeline)
potsdam_val = dict(potsdam_train, img_dir='img_dir/val', ann_dir='ann_dir/val',
                   pipeline=potsdam_test_pipeline)
# the common Potsdam split has no separate test tiles: test = val
potsdam_test = potsdam_val
potsdam_train_5class = dict(potsdam_train, protocol='5class',
                            pipeline=potsdam_train_pipeline_5class)
potsdam_val_5class = dict(potsdam_val, protocol='5class')
potsdam_test_5class = potsdam_val_5class
# keyword arguments of PotsdamIndexDataset.evaluate -> potsdam.mIoU, .mFscore, .aAcc
# (and potsdam.protocol)
potsdam_evaluation = dict(metric=['mIoU', 'mFscore'])
