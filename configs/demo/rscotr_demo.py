# `make demo`: the tiny RSCoTr co-trained on the synthetic demo data on CPU in
# a few minutes (tools/misc/run_demo.sh generates and converts the data, with
# RESISC45 split 50/20/30 %):
#   data/demo/raw/{NWPU-RESISC45,DIOR,Potsdam}          tools/misc/make_demo_data.py
#   data/demo/prepared/{resisc45,dior,potsdam}          tools/dataset_converters/*
# Small inputs: classification 64 px, detection 256 px, segmentation crops of
# 128 px from patches resized to 256 px.
_base_ = ['../_base_/models/rscotr_tiny.py', '../_base_/default_runtime.py']

demo_raw = 'data/demo/raw/'
demo_prepared = 'data/demo/prepared/'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

cls_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=64, scale=(0.5, 1.0), backend='pillow'),
    dict(type='RandomFlip', flip_prob=0.5, direction='horizontal'),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='ToTensor', keys=['gt_label']),
    dict(type='Collect', keys=['img', 'gt_label'])
]
cls_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=(72, -1), backend='pillow'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='ImageToTensor', keys=['img']),
    dict(type='Collect', keys=['img'])
]
det_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Resize', img_scale=[(224, 224), (256, 256), (288, 288)],
         multiscale_mode='value', keep_ratio=True),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=1),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])
]
det_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=(256, 256),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=1),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])
        ])
]
seg_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='Resize', img_scale=(256, 256), ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=(128, 128), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size=(128, 128), pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg'])
]
seg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=(256, 256),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])
        ])
]


resisc_data = demo_prepared + 'resisc45/'
dior_ann = demo_prepared + 'dior/annotations/'
potsdam_data = demo_prepared + 'potsdam/'
resisc_eval = dict(metric='accuracy', metric_options=dict(topk=(1, 5)))
dior_eval = dict(metric='bbox', classwise=True, iou_thrs=[0.5],
                 metric_items=['mAP', 'mAP_50', 'mAP_s', 'mAP_m', 'mAP_l'])
potsdam_eval = dict(metric=['mIoU', 'mFscore'])
# Potsdam's common split has no test tiles: val serves as the test set too.
# The 5-class protocol (clutter ignored in training and evaluation) matches the
# tiny model's seg head (num_classes=5).
potsdam_val = dict(
    task='seg', samples_per_gpu=1, workers_per_gpu=0, eval_cfg=potsdam_eval,
    dataset=dict(type='PotsdamIndexDataset', data_root=potsdam_data, img_dir='img_dir/val',
                 ann_dir='ann_dir/val', protocol='5class', pipeline=seg_test_pipeline))
data = dict(
    train=dict(
        resisc=dict(
            task='cls', samples_per_gpu=16, workers_per_gpu=0,
            dataset=dict(type='RESISC45Dataset', data_prefix=resisc_data + 'train',
                         ann_file=resisc_data + 'meta/train.txt',
                         pipeline=cls_train_pipeline)),
        dior=dict(
            task='det', samples_per_gpu=2, workers_per_gpu=0,
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=dior_ann + 'dior_train.json', filter_empty_gt=False,
                         pipeline=det_train_pipeline)),
        potsdam=dict(
            task='seg', samples_per_gpu=4, workers_per_gpu=0,
            dataset=dict(type='PotsdamIndexDataset', data_root=potsdam_data,
                         img_dir='img_dir/train', ann_dir='ann_dir/train', protocol='5class',
                         pipeline=seg_train_pipeline))),
    val=dict(
        resisc=dict(
            task='cls', samples_per_gpu=32, workers_per_gpu=0, eval_cfg=resisc_eval,
            dataset=dict(type='RESISC45Dataset', data_prefix=resisc_data + 'val',
                         ann_file=resisc_data + 'meta/val.txt', pipeline=cls_test_pipeline)),
        dior=dict(
            task='det', samples_per_gpu=1, workers_per_gpu=0, eval_cfg=dior_eval,
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=dior_ann + 'dior_val.json', pipeline=det_test_pipeline)),
        potsdam=potsdam_val),
    test=dict(
        resisc=dict(
            task='cls', samples_per_gpu=32, workers_per_gpu=0, eval_cfg=resisc_eval,
            dataset=dict(type='RESISC45Dataset', data_prefix=resisc_data + 'test',
                         ann_file=resisc_data + 'meta/test.txt', pipeline=cls_test_pipeline)),
        dior=dict(
            task='det', samples_per_gpu=1, workers_per_gpu=0, eval_cfg=dior_eval,
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=dior_ann + 'dior_test.json', pipeline=det_test_pipeline)),
        potsdam=potsdam_val))
# detection learns slowest: it gets every other batch
iteration_strategy = dict(type='repeated_sequence', sequence=['resisc', 'dior', 'dior', 'potsdam'])

optimizer = dict(
    type='AdamW',
    lr=1e-3,
    weight_decay=1e-4,
    paramwise_cfg=dict(
        custom_keys={
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
            'label_embedding': dict(decay_mult=0.0),
        }))
optimizer_config = dict(grad_clip=dict(max_norm=1.0, norm_type=2))
max_iters = 600
lr_config = dict(policy='step', step=[480], by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=max_iters)
checkpoint_config = dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1)
log_config = dict(interval=50)
evaluation = dict(
    interval=max_iters,
    save_best=dict(keys={'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100,
                         'potsdam.mFscore': 100}))
device = 'cpu'
seed = 0
