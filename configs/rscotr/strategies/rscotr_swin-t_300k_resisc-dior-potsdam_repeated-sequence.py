# dior, potsdam, potsdam, resisc, resisc, resisc, repeated.
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='repeated_sequence', sequence=[1, 2, 2, 0, 0, 0])
