# Batch-weighted random: p proportional to the batches per epoch of each loader
# (394 / 5862 / 1728 with the reference splits and batch sizes 16 / 1 / 2),
# computed from the loaders at start-up. For fixed weights use
# iteration_strategy = dict(type='weighted_random', p=[394, 5862, 1728]).
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='weighted_random', batch_weighted=True)
