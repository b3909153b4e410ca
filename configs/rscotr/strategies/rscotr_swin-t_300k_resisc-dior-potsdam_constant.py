# Co-training machinery with the constant strategy: every batch from one
# loader (here RESISC45). Loader references are indices or dataset names.
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='constant', idx='resisc')
