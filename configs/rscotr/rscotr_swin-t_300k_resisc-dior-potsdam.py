# RSCoTr reference: Swin-T co-trained on NWPU-RESISC45 (cls), DIOR (det) and
# ISPRS Potsdam (seg) for 300k iterations, round-robin over the datasets.
_base_ = [
    '../_base_/models/rscotr_swin-t.py',
    '../_base_/datasets/resisc45.py',
    '../_base_/datasets/dior.py',
    '../_base_/datasets/potsdam.py',
    '../_base_/schedules/adamw_300k.py',
    '../_base_/default_runtime.py',
]

# One loader per dataset: data.<split>.<dataset name> = dict(task, dataset,
# samples_per_gpu, workers_per_gpu[, eval_cfg]). The name tags every batch and
# prefixes logs (<task>.<dataset>.<loss>) and metrics (<dataset>.<metric>);
# the order of the entries is the loader order of the iteration strategy.
# A derived config drops a dataset with e.g. data=dict(train=dict(dior=None)).
data = dict(
    train=dict(
        resisc=dict(task='cls', dataset={{_base_.resisc_train}},
                    samples_per_gpu=16, workers_per_gpu=2),
        dior=dict(task='det', dataset={{_base_.dior_train}},
                  samples_per_gpu=1, workers_per_gpu=2),
        potsdam=dict(task='seg', dataset={{_base_.potsdam_train}},
                     samples_per_gpu=2, workers_per_gpu=2)),
    val=dict(
        resisc=dict(task='cls', dataset={{_base_.resisc_val}}, samples_per_gpu=32,
                    workers_per_gpu=2, eval_cfg={{_base_.resisc_evaluation}}),
        dior=dict(task='det', dataset={{_base_.dior_val}}, samples_per_gpu=1,
                  workers_per_gpu=2, eval_cfg={{_base_.dior_evaluation}}),
        potsdam=dict(task='seg', dataset={{_base_.potsdam_val}}, samples_per_gpu=1,
                     workers_per_gpu=2, eval_cfg={{_base_.potsdam_evaluation}})),
    test=dict(
        resisc=dict(task='cls', dataset={{_base_.resisc_test}}, samples_per_gpu=32,
                    workers_per_gpu=2, eval_cfg={{_base_.resisc_evaluation}}),
        dior=dict(task='det', dataset={{_base_.dior_test}}, samples_per_gpu=1,
                  workers_per_gpu=2, eval_cfg={{_base_.dior_evaluation}}),
        potsdam=dict(task='seg', dataset={{_base_.potsdam_test}}, samples_per_gpu=1,
                     workers_per_gpu=2, eval_cfg={{_base_.potsdam_evaluation}})))

# The release trained on one GPU (1x1): per step 16 RESISC45, 1 DIOR or 2 Potsdam
# images. On N GPUs every dataset's batch is N times these (logged at start) at the
# same lr, unless auto_scale_lr.enable (or tools/train.py --auto-scale-lr) scales
# the lr by total batch / base_batch_size: the total batch is the sum of the
# training datasets' batches over all GPUs (19 x N here), the base the sum of the
# entries below for the datasets a config trains (rscotr/apis/lr_scaling.py).
auto_scale_lr = dict(enable=False, base_batch_size=dict(resisc=16, dior=1, potsdam=2))

# Which loader gives the next batch (rscotr/datasets/iteration_strategies.py);
# loader references may be indices or dataset names.
iteration_strategy = dict(type='round_robin')

# Every 15k iterations: evaluate the val datasets, keep the best checkpoint by
# the weighted sum of the keys (accuracy is in %, mAP and mFscore in 0..1).
evaluation = dict(
    interval=15000,
    save_best=dict(keys={'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100,
                         'potsdam.mFscore': 100}),
    skip_tasks=[])
