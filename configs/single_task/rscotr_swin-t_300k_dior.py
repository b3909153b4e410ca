# Single-task baseline: object detection on DIOR only, trained through the
# co-training machinery (constant strategy, other heads removed).
_base_ = '../rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(heads=dict(cls=None, seg=None))
data = dict(
    train=dict(resisc=None, potsdam=None),
    val=dict(resisc=None, potsdam=None),
    test=dict(resisc=None, potsdam=None))
iteration_strategy = dict(type='constant', idx='dior')
evaluation = dict(save_best=dict(_delete_=True, keys={'dior.bbox_mAP': 100}))
