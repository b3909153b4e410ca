# NWPU-RESISC45 scene classification (mmcls pipelines), prepared by
#   python tools/dataset_converters/resisc45.py data/NWPU-RESISC45 -o data/prepared/resisc45
# Variables are prefixed `resisc_`: mmcv refuses duplicate keys among bases.
# A derived config that moves the data overrides the dataset dicts
# (resisc_train etc.), not only resisc_data_root.
#
# Pipelines:
#   resisc_train_pipeline        as released (README: Fidelity; the reference):
#                                RandomResizedCrop 224 (pillow, bicubic) -> flip 0.5
#                                -> RandAugment (timm's increasing policies, 2 of them,
#                                magnitude 9 of 10, std 0.5) -> RandomErasing 0.25 -> normalise
#   resisc_test_pipeline         as released: resize to 224x224 (pillow, bicubic), no crop
#   resisc_train_pipeline_light  variant (the earlier default): RandomResizedCrop 224
#                                (pillow, bilinear) -> flip 0.5 -> normalise
#   resisc_test_pipeline_crop    variant (the earlier default): short side 256 -> centre 224
#   resisc_train_pipeline_light_64, resisc_test_pipeline_crop_64
#                                the two variants at 64 px (crops of 50-100 % of the
#                                image; short side 72 -> centre 64): the tiny demo model
#
# The variants are built by the two functions below (mmcv leaves functions out of
# the config), so a size variant is the same pipeline at other sizes.
resisc_data_root = 'data/prepared/resisc45/'
resisc_img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
# images are BGR until Normalize: augmentation fills use the mean / std in BGR order
resisc_bgr_mean = [103.53, 116.28, 123.675]
resisc_bgr_std = [57.375, 57.12, 58.395]
# timm's "increasing" RandAugment policies as mmcls 0.25 transforms: a
# magnitude range (v0, v1) is mapped linearly from level 0 to total_level
resisc_rand_increasing_policies = [
    dict(type='AutoContrast'),
    dict(type='Equalize'),
    dict(type='Invert'),
    dict(type='Rotate', magnitude_key='angle', magnitude_range=(0, 30)),
    dict(type='Posterize', magnitude_key='bits', magnitude_range=(4, 0)),
    dict(type='Solarize', magnitude_key='thr', magnitude_range=(256, 0)),
    dict(type='SolarizeAdd', magnitude_key='magnitude', magnitude_range=(0, 110)),
    dict(type='ColorTransform', magnitude_key='magnitude', magnitude_range=(0, 0.9)),
    dict(type='Contrast', magnitude_key='magnitude', magnitude_range=(0, 0.9)),
    dict(type='Brightness', magnitude_key='magnitude', magnitude_range=(0, 0.9)),
    dict(type='Sharpness', magnitude_key='magnitude', magnitude_range=(0, 0.9)),
    dict(type='Shear', magnitude_key='magnitude', magnitude_range=(0, 0.3),
         direction='horizontal'),
    dict(type='Shear', magnitude_key='magnitude', magnitude_range=(0, 0.3),
         direction='vertical'),
    dict(type='Translate', magnitude_key='magnitude', magnitude_range=(0, 0.45),
         direction='horizontal'),
    dict(type='Translate', magnitude_key='magnitude', magnitude_range=(0, 0.45),
         direction='vertical'),
]
resisc_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', flip_prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies=resisc_rand_increasing_policies,
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in resisc_bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=resisc_bgr_mean,
        fill_std=resisc_bgr_std),
    dict(type='Normalize', **resisc_img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='ToTensor', keys=['gt_label']),
    dict(type='Collect', keys=['img', 'gt_label'])
]
resisc_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=(224, 224), backend='pillow', interpolation='bicubic'),
    dict(type='Normalize', **resisc_img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='Collect', keys=['img'])
]


def _light_train_pipeline(size: int, crop_scale: tuple = (0.08, 1.0)) -> list:
    """RandomResizedCrop to ``size`` (pillow, bilinear) -> flip 0.5 -> normalise."""
    return [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', size=size, scale=crop_scale, backend='pillow'),
        dict(type='RandomFlip', flip_prob=0.5, direction='horizontal'),
        dict(type='Normalize', **resisc_img_norm_cfg),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='ToTensor', keys=['gt_label']),
        dict(type='Collect', keys=['img', 'gt_label'])
    ]


def _crop_test_pipeline(short_side: int, crop_size: int) -> list:
    """Resize the short side to ``short_side`` (pillow) -> centre crop ``crop_size``."""
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', size=(short_side, -1), backend='pillow'),
        dict(type='CenterCrop', crop_size=crop_size),
        dict(type='Normalize', **resisc_img_norm_cfg),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img'])
    ]


resisc_train_pipeline_light = _light_train_pipeline(224)
resisc_test_pipeline_crop = _crop_test_pipeline(256, 224)
resisc_train_pipeline_light_64 = _light_train_pipeline(64, crop_scale=(0.5, 1.0))
resisc_test_pipeline_crop_64 = _crop_test_pipeline(72, 64)

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
