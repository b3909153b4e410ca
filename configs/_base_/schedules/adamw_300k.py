# Co-training schedule of DESIGN.md section 2: AdamW lr 5e-5, weight decay
# 1e-4, backbone lr x0.1, no decay on query / level / label embeddings,
# grad-norm clip 0.1, 300k iterations with lr steps (x0.1) at 240k and 285k.
# mmcv matches custom_keys as substrings of parameter names, longest key first.
optimizer = dict(
    type='AdamW',
    lr=5e-5,
    weight_decay=1e-4,
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'query_embed': dict(decay_mult=0.0),  # also query_embedding
            'query_feat': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
            'label_embedding': dict(decay_mult=0.0),
        }))
optimizer_config = dict(grad_clip=dict(max_norm=0.1, norm_type=2))
lr_config = dict(policy='step', step=[240000, 285000], by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=300000)
# as released: a checkpoint every 100k iterations (100k, 200k, 300k; the
# best checkpoint by the weighted metrics is kept by the evaluation hook),
# evaluation every 15k
checkpoint_config = dict(by_epoch=False, interval=100000, max_keep_ckpts=3)
evaluation = dict(interval=15000)
