# ISPRS Potsdam semantic segmentation (mmseg pipelines), prepared by
#   python tools/dataset_converters/potsdam.py data/Potsdam -o data/prepared/potsdam
# Index labels 0..4 are trained; PotsdamIndexDataset maps clutter (5) to 255,
# the ignore index of the pipelines, the loss and the evaluation.
# Variables are prefixed `potsdam_`.
potsdam_data_root = 'data/prepared/potsdam/'
potsdam_img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
potsdam_crop_size = (512, 512)
potsdam_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='Resize', img_scale=(512, 512), ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=potsdam_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Normalize', **potsdam_img_norm_cfg),
    dict(type='Pad', size=potsdam_crop_size, pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg'])
]
potsdam_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=(512, 512),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **potsdam_img_norm_cfg),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])
        ])
]
potsdam_train = dict(
    type='PotsdamIndexDataset',
    data_root=potsdam_data_root,
    img_dir='img_dir/train',
    ann_dir='ann_dir/train',
    ignore_labels=[5],
    pipeline=potsdam_train_pipeline)
potsdam_val = dict(
    type='PotsdamIndexDataset',
    data_root=potsdam_data_root,
    img_dir='img_dir/val',
    ann_dir='ann_dir/val',
    ignore_labels=[5],
    pipeline=potsdam_test_pipeline)
# the common Potsdam split has no separate test tiles: test = val
potsdam_test = potsdam_val
# keyword arguments of PotsdamIndexDataset.evaluate -> potsdam.mIoU, .mFscore, .aAcc
potsdam_evaluation = dict(metric=['mIoU', 'mFscore'])
