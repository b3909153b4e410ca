# DIOR horizontal-box detection (mmdet pipelines), prepared by
#   python tools/dataset_converters/dior.py data/DIOR -o data/prepared/dior
# The json file names are relative to the DIOR root, so img_prefix is the raw
# DIOR folder for every split. Variables are prefixed `dior_`.
#
# Pipelines:
#   dior_train_pipeline             as released (README: Fidelity; the reference): Resize
#                                   (1333, 800) keep ratio -> flip 0.5 -> normalise -> Pad 32;
#                                   images without boxes are left out (filter_empty_gt=True)
#   dior_test_pipeline              as released: (1333, 800) keep ratio, Pad 32
#   dior_train_pipeline_multiscale  the release's single-task DINO (stage 1 of the paper's
#                                   run, configs/single_task/rscotr_swin-t_stage1_50e_dior.py),
#                                   also a co-training variant (the earlier default): flip 0.5
#                                   -> DINO-style multi-scale resize (short side 480..800) or
#                                   resize -> crop -> resize -> normalise (no padding); stage 1
#                                   keeps images without boxes (filter_empty_gt=False)
#   dior_test_pipeline_stage1       the release's single-task DINO: (1333, 800) keep ratio, no
#                                   padding (Pad size_divisor 1)
#   dior_test_pipeline_800          variant (the earlier default): 800x800 keep ratio, no padding
#   dior_train_pipeline_256         the released pipeline at 224, 256 or 288 px (one per
#                                   image): the tiny demo model
#   dior_test_pipeline_256          the released test pipeline at 256x256
#
# The released pipelines and their size variants are built by the two functions
# below (mmcv leaves functions out of the config).
dior_img_root = 'data/DIOR/'
dior_ann_root = 'data/prepared/dior/annotations/'
dior_img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def _train_pipeline(img_scale, size_divisor: int = 32) -> list:
    """Resize keeping the ratio (a list of scales: one picked per image) -> flip 0.5
    -> normalise -> pad to a multiple of ``size_divisor``."""
    resize = dict(type='Resize', img_scale=img_scale, keep_ratio=True)
    if isinstance(img_scale, list):
        resize['multiscale_mode'] = 'value'
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        resize,
        dict(type='RandomFlip', flip_ratio=0.5),
        dict(type='Normalize', **dior_img_norm_cfg),
        dict(type='Pad', size_divisor=size_divisor),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])
    ]


def _test_pipeline(img_scale: tuple, size_divisor: int = 32) -> list:
    """Resize to ``img_scale`` keeping the ratio -> normalise -> pad, no flip."""
    return [
        dict(type='LoadImageFromFile'),
        dict(
            type='MultiScaleFlipAug',
            img_scale=img_scale,
            flip=False,
            transforms=[
                dict(type='Resize', keep_ratio=True),
                dict(type='RandomFlip'),
                dict(type='Normalize', **dior_img_norm_cfg),
                dict(type='Pad', size_divisor=size_divisor),
                dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img'])
            ])
    ]


dior_train_pipeline = _train_pipeline((1333, 800))
dior_test_pipeline = _test_pipeline((1333, 800))
dior_train_pipeline_256 = _train_pipeline([(224, 224), (256, 256), (288, 288)])
dior_test_pipeline_256 = _test_pipeline((256, 256))
# short sides of the multi-scale variant
dior_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
               (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
               (800, 1333)]
dior_train_pipeline_multiscale = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(
        type='AutoAugment',
        policies=[
            [dict(type='Resize', img_scale=dior_scales, multiscale_mode='value',
                  keep_ratio=True)],
            [
                dict(type='Resize', img_scale=[(400, 4200), (500, 4200), (600, 4200)],
                     multiscale_mode='value', keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='Resize', img_scale=dior_scales, multiscale_mode='value',
                     override=True, keep_ratio=True)
            ]
        ]),
    dict(type='Normalize', **dior_img_norm_cfg),
    dict(type='Pad', size_divisor=1),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])
]
dior_test_pipeline_stage1 = _test_pipeline((1333, 800), size_divisor=1)
dior_test_pipeline_800 = _test_pipeline((800, 800), size_divisor=1)
dior_train = dict(
    type='DIORDataset',
    ann_file=dior_ann_root + 'dior_train.json',
    img_prefix=dior_img_root,
    filter_empty_gt=True,  # images without boxes are not trained on
    pipeline=dior_train_pipeline)
# Evaluation protocols (DIORDataset(evaluate_empty_images=...); the metrics carry
# dior.protocol): True (tag 'all-images') evaluates every image of the split;
# False (tag 'release-images-with-boxes') leaves images without boxes out, as the
# release's val/test sets did (README: Fidelity), e.g.
#   --cfg-options data.test.dior.dataset.evaluate_empty_images=False
dior_val = dict(
    type='DIORDataset',
    ann_file=dior_ann_root + 'dior_val.json',
    img_prefix=dior_img_root,
    evaluate_empty_images=True,
    pipeline=dior_test_pipeline)
dior_test = dict(dior_val, ann_file=dior_ann_root + 'dior_test.json')
# keyword arguments of DIORDataset.evaluate: COCO box AP at IoU 0.5 only, so
# dior.bbox_mAP is the class-wise mAP@0.5 of the README (Results) (and dior.protocol)
dior_evaluation = dict(
    metric='bbox', classwise=True, iou_thrs=[0.5],
    metric_items=['mAP', 'mAP_50', 'mAP_s', 'mAP_m', 'mAP_l'])
