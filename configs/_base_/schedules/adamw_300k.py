# Co-training schedule as released (README: Fidelity): AdamW lr 5e-5, weight
# decay 1e-4, grad-norm clip 0.1, 300k iterations with lr steps (x0.1) at 240k
# and 285k. mmcv matches custom_keys as substrings of parameter names, longest
# key first. The keys select exactly the parameters the release's keys
# ('backbone' lr x0.1; 'query_embed', 'query_feat', 'level_embed' no decay)
# select among the released names (tests/test_core/test_optimizer_groups.py):
# - no decay: DINO's and the seg decoder's queries and level embeddings
#   (release: bbox_head.transformer.query_embed / .level_embeds,
#   seg_head.query_embed / query_feat / level_embed);
# - decayed, as released: the level encodings of the segmentation and
#   multi-level-classification encoder passes (release:
#   {seg,cls}_head.pixel_decoder.level_encoding, here
#   heads.{seg,cls}.encoder_input_builder.level_embed) and DINO's denoising
#   label embedding (release: bbox_head.label_embedding).
optimizer = dict(
    type='AdamW',
    lr=5e-5,
    weight_decay=1e-4,
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'query_embed': dict(decay_mult=0.0),  # also heads.det.query_embedding
            'query_feat': dict(decay_mult=0.0),
            'heads.det.encoder_input_builder.level_embed': dict(decay_mult=0.0),
            'heads.seg.level_embed': dict(decay_mult=0.0),
        }))
# The optimizer hook (rscotr.core.optimizer.RSCoTrOptimizerHook; mmcv's
# OptimizerHook is mapped to it). grads_to_none=False reproduces the release
# (torch 1.11): gradients are zeroed to zero tensors, so a head that did not
# run in a step keeps a zero gradient and AdamW keeps moving it (momentum and
# weight decay) once it has been trained. grads_to_none=True is torch 2's
# behaviour: gradients become None and heads that did not run stay frozen.
# Gradient clipping gives the same norm either way.
optimizer_config = dict(grad_clip=dict(max_norm=0.1, norm_type=2), grads_to_none=False)
# Mixed precision of the training forward pass: None (float32), 'bf16'
# (bfloat16 autocast), 'fp16' (float16 autocast with dynamic loss scaling) or
# dict(dtype='fp16', loss_scale=dict(init_scale=2.**16)). Deformable attention
# and the heads' losses stay in float32. E.g. --cfg-options mixed_precision=bf16
mixed_precision = None
lr_config = dict(policy='step', step=[240000, 285000], by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=300000)
# as released: a checkpoint every 100k iterations (100k, 200k, 300k; the
# best checkpoint by the weighted metrics is kept by the evaluation hook),
# evaluation every 15k
checkpoint_config = dict(by_epoch=False, interval=100000, max_keep_ckpts=3)
evaluation = dict(interval=15000)
