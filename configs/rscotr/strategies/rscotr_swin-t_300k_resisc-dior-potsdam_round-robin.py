# resisc, dior, potsdam, resisc, ... (the reference strategy, spelled out).
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='round_robin')
