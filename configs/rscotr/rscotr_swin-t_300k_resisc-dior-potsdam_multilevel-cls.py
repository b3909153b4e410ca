# The multi-level classification head: classifies from the shared encoder's
# memory over the 4 neck levels instead of pooling Swin stage 4.
_base_ = './rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(
    heads=dict(
        cls=dict(
            _delete_=True,
            type='MultiLevelClsHead',
            num_classes=45,
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, temperature=10000),
                num_levels=4,
                embed_dims=256),
            embed_dims=256,
            loss=dict(type='mmcls.LabelSmoothLoss', label_smooth_val=0.1, mode='original',
                      loss_weight=1.0),
            train_augments=[
                dict(type='BatchMixup', alpha=0.8, num_classes=45, prob=0.5),
                dict(type='BatchCutMix', alpha=1.0, num_classes=45, prob=0.5),
            ])))
