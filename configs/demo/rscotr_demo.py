# `make demo`: the tiny RSCoTr co-trained on the synthetic demo data (the
# 'medium' scale) on CPU in about 5 minutes (tools/misc/run_demo.sh generates and
# converts the data, with RESISC45 split 50/20/30 %):
#   data/demo/raw/{NWPU-RESISC45,DIOR,Potsdam}          tools/misc/make_demo_data.py
#   data/demo/prepared/{resisc45,dior,potsdam}          tools/dataset_converters/*
# The pipelines are the dataset bases' own at small sizes (configs/_base_/datasets/):
# classification crops of 64 px, detection at 224-288 px (test 256), segmentation
# crops of 128 px from patches resized to 256 px.
_base_ = [
    '../_base_/models/rscotr_tiny.py',
    '../_base_/datasets/resisc45.py',
    '../_base_/datasets/dior.py',
    '../_base_/datasets/potsdam.py',
    '../_base_/default_runtime.py',
]

demo_raw = 'data/demo/raw/'
demo_prepared = 'data/demo/prepared/'
demo_resisc = demo_prepared + 'resisc45/'
demo_dior_ann = demo_prepared + 'dior/annotations/'
demo_potsdam = demo_prepared + 'potsdam/'
# Potsdam's common split has no test tiles: val serves as the test set too.
# The 5-class protocol (clutter ignored in training and evaluation) matches the
# tiny model's seg head (num_classes=5).
demo_potsdam_val = dict(
    task='seg', samples_per_gpu=1, workers_per_gpu=0, eval_cfg={{_base_.potsdam_evaluation}},
    dataset=dict(type='PotsdamIndexDataset', data_root=demo_potsdam, img_dir='img_dir/val',
                 ann_dir='ann_dir/val', protocol='5class',
                 pipeline={{_base_.potsdam_test_pipeline_256}}))
# one loader worker per training dataset: the data are read and augmented on the
# second core while the model trains on the first
data = dict(
    train=dict(
        resisc=dict(
            task='cls', samples_per_gpu=16, workers_per_gpu=1,
            dataset=dict(type='RESISC45Dataset', data_prefix=demo_resisc + 'train',
                         ann_file=demo_resisc + 'meta/train.txt',
                         pipeline={{_base_.resisc_train_pipeline_light_64}})),
        dior=dict(
            task='det', samples_per_gpu=2, workers_per_gpu=1,
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=demo_dior_ann + 'dior_train.json', filter_empty_gt=False,
                         pipeline={{_base_.dior_train_pipeline_256}})),
        potsdam=dict(
            task='seg', samples_per_gpu=4, workers_per_gpu=1,
            dataset=dict(type='PotsdamIndexDataset', data_root=demo_potsdam,
                         img_dir='img_dir/train', ann_dir='ann_dir/train', protocol='5class',
                         pipeline={{_base_.potsdam_train_pipeline_5class_128}}))),
    val=dict(
        resisc=dict(
            task='cls', samples_per_gpu=32, workers_per_gpu=0,
            eval_cfg={{_base_.resisc_evaluation}},
            dataset=dict(type='RESISC45Dataset', data_prefix=demo_resisc + 'val',
                         ann_file=demo_resisc + 'meta/val.txt',
                         pipeline={{_base_.resisc_test_pipeline_crop_64}})),
        dior=dict(
            task='det', samples_per_gpu=1, workers_per_gpu=0,
            eval_cfg={{_base_.dior_evaluation}},
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=demo_dior_ann + 'dior_val.json',
                         pipeline={{_base_.dior_test_pipeline_256}})),
        potsdam=demo_potsdam_val),
    test=dict(
        resisc=dict(
            task='cls', samples_per_gpu=32, workers_per_gpu=0,
            eval_cfg={{_base_.resisc_evaluation}},
            dataset=dict(type='RESISC45Dataset', data_prefix=demo_resisc + 'test',
                         ann_file=demo_resisc + 'meta/test.txt',
                         pipeline={{_base_.resisc_test_pipeline_crop_64}})),
        dior=dict(
            task='det', samples_per_gpu=1, workers_per_gpu=0,
            eval_cfg={{_base_.dior_evaluation}},
            dataset=dict(type='DIORDataset', img_prefix=demo_raw + 'DIOR/',
                         ann_file=demo_dior_ann + 'dior_test.json',
                         pipeline={{_base_.dior_test_pipeline_256}})),
        potsdam=demo_potsdam_val))
# detection learns slowest and gets half of the batches, classification a third,
# segmentation (learnt fastest) a sixth
iteration_strategy = dict(type='repeated_sequence',
                          sequence=['resisc', 'dior', 'resisc', 'dior', 'dior', 'potsdam'])

# the released weight-decay keys (configs/_base_/schedules/adamw_300k.py), no
# backbone lr multiplier (the tiny backbone trains from scratch)
optimizer = dict(
    type='AdamW',
    lr=1e-3,
    weight_decay=1e-4,
    paramwise_cfg=dict(
        custom_keys={
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'heads.det.encoder_input_builder.level_embed': dict(decay_mult=0.0),
            'heads.seg.level_embed': dict(decay_mult=0.0),
        }))
optimizer_config = dict(grad_clip=dict(max_norm=1.0, norm_type=2))
max_iters = 5000
lr_config = dict(policy='step', step=[4000], by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=max_iters)
checkpoint_config = dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1)
log_config = dict(interval=250)
evaluation = dict(
    interval=max_iters,
    save_best=dict(keys={'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100,
                         'potsdam.mFscore': 100}))
device = 'cpu'
seed = 0
