# Single-task baseline: semantic segmentation on ISPRS Potsdam only, trained
# through the co-training machinery (constant strategy, other heads removed).
_base_ = '../rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(heads=dict(cls=None, det=None))
data = dict(
    train=dict(resisc=None, dior=None),
    val=dict(resisc=None, dior=None),
    test=dict(resisc=None, dior=None))
iteration_strategy = dict(type='constant', idx='potsdam')
evaluation = dict(save_best=dict(_delete_=True, keys={'potsdam.mFscore': 100}))
