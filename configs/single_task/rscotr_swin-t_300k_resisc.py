# Single-task baseline: scene classification on NWPU-RESISC45 only, trained
# through the co-training machinery (constant strategy, other heads removed).
_base_ = '../rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(heads=dict(det=None, seg=None))
data = dict(
    train=dict(dior=None, potsdam=None),
    val=dict(dior=None, potsdam=None),
    test=dict(dior=None, potsdam=None))
iteration_strategy = dict(type='constant', idx='resisc')
evaluation = dict(save_best=dict(_delete_=True, keys={'resisc.accuracy_top-1': 1}))
