# A uniformly random dataset at every step (seeded by cfg.seed unless
# iteration_strategy.seed is given).
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='random')
