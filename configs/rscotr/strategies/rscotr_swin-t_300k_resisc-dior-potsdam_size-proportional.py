# p proportional to dataset length; an exhausted loader waits until every
# loader is exhausted, then all restart together.
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
iteration_strategy = dict(type='size_proportional')
