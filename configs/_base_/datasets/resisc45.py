# NWPU-RESISC45 scene classification (mmcls pipelines), prepared by
#   python tools/dataset_converters/resisc45.py data/NWPU-RESISC45 -o data/prepared/resisc45
# Variables are prefixed `resisc_`: mmcv refuses duplicate keys among bases.
# A derived config that moves the data overrides the dataset dicts
# (resisc_train etc.), not only resisc_data_root.
resisc_data_root = 'data/prepared/resisc45/'
resisc_img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
resisc_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=224, backend='pillow'),
    dict(type='RandomFlip', flip_prob=0.5, direction='horizontal'),
    # optional: mmcls RandAugment (e.g. the policies of mmcls'
    # configs/_base_/datasets/pipelines/rand_aug.py) goes here
    dict(type='Normalize', **resisc_img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='ToTensor', keys=['gt_label']),
    dict(type='Collect', keys=['img', 'gt_label'])
]
resisc_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=(256, -1), backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='Normalize', **resisc_img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='Collect', keys=['img'])
]
resisc_train = dict(
    type='RESISC45Dataset',
    data_prefix=resisc_data_root + 'train',
    ann_file=resisc_data_root + 'meta/train.txt',
    pipeline=resisc_train_pipeline)
resisc_val = dict(
    type='RESISC45Dataset',
    data_prefix=resisc_data_root + 'val',
    ann_file=resisc_data_root + 'meta/val.txt',
    pipeline=resisc_test_pipeline)
resisc_test = dict(
    type='RESISC45Dataset',
    data_prefix=resisc_data_root + 'test',
    ann_file=resisc_data_root + 'meta/test.txt',
    pipeline=resisc_test_pipeline)
# keyword arguments of RESISC45Dataset.evaluate -> resisc.accuracy_top-1/-5 (%)
resisc_evaluation = dict(metric='accuracy', metric_options=dict(topk=(1, 5)))
