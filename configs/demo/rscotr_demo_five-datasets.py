# Co-training five datasets with five heads: the demo's three (RESISC45, DIOR,
# Potsdam) plus two in the standard formats, each with its own classes and head:
#   scenes10   10 scene classes in class folders with split lists  ClassFolderDataset
#   objects3   3 object classes, COCO json per split               CocoJsonDataset
# `DEMO_CONFIG=configs/demo/rscotr_demo_five-datasets.py make demo` generates them
# with the demo data (tools/misc/make_demo_data.py --extra):
#   data/demo/raw/extra_cls/{images/<class>/*.jpg, meta/{train,val,test}.txt}
#   data/demo/raw/extra_det/{images/*.jpg, annotations/{train,val,test}.json}
# The new heads are the demo's heads with their own class counts (like=...).
_base_ = ['./rscotr_demo.py']

demo_extra_cls = 'data/demo/raw/extra_cls/'
demo_extra_det = 'data/demo/raw/extra_det/'
demo_scenes10 = dict(type='ClassFolderDataset', data_prefix=demo_extra_cls + 'images')
demo_objects3 = dict(type='CocoJsonDataset', img_prefix=demo_extra_det + 'images/')

model = dict(heads=dict(scenes10=dict(like='cls', num_classes=10),
                        objects3=dict(like='det', num_classes=3)))


def _scenes10(split, pipeline, samples, workers):
    return dict(task='cls', head='scenes10', samples_per_gpu=samples, workers_per_gpu=workers,
                dataset=dict(demo_scenes10, ann_file=demo_extra_cls + f'meta/{split}.txt',
                             pipeline=pipeline))


def _objects3(split, pipeline, samples, workers):
    return dict(task='det', head='objects3', samples_per_gpu=samples, workers_per_gpu=workers,
                dataset=dict(demo_objects3, ann_file=demo_extra_det + f'annotations/{split}.json',
                             pipeline=pipeline))


data = dict(
    train=dict(
        scenes10=_scenes10('train', {{_base_.resisc_train_pipeline_light_64}}, 16, 1),
        objects3=_objects3('train', {{_base_.dior_train_pipeline_256}}, 2, 1)),
    val=dict(
        scenes10=dict(_scenes10('val', {{_base_.resisc_test_pipeline_crop_64}}, 32, 0),
                      eval_cfg={{_base_.resisc_evaluation}}),
        objects3=dict(_objects3('val', {{_base_.dior_test_pipeline_256}}, 1, 0),
                      eval_cfg={{_base_.dior_evaluation}})),
    test=dict(
        scenes10=dict(_scenes10('test', {{_base_.resisc_test_pipeline_crop_64}}, 32, 0),
                      eval_cfg={{_base_.resisc_evaluation}}),
        objects3=dict(_objects3('test', {{_base_.dior_test_pipeline_256}}, 1, 0),
                      eval_cfg={{_base_.dior_evaluation}})))
# detection (two datasets) gets half of the batches, classification (two) 3/10,
# segmentation 1/10, in a fixed order
iteration_strategy = dict(
    _delete_=True, type='repeated_sequence',
    sequence=['resisc', 'dior', 'scenes10', 'objects3', 'dior', 'potsdam', 'objects3',
              'resisc', 'dior', 'objects3'])
max_iters = 7000
lr_config = dict(step=[5600])
runner = dict(max_iters=max_iters)
checkpoint_config = dict(interval=max_iters)
evaluation = dict(
    interval=max_iters,
    save_best=dict(_delete_=True, keys={'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100,
                                        'potsdam.mFscore': 100, 'scenes10.accuracy_top-1': 1,
                                        'objects3.bbox_mAP': 100}))
