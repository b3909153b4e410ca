# The demo with this project's variants instead of the released heads, for the
# learning check's side-by-side figures (tools/analysis/learning_check.py):
# standard Mask2Former segmentation (FPN with Swin stage 1, Hungarian matching,
# point-sampled mask losses; configs/rscotr/variants/..._mask2former-seg.py at
# tiny sizes) and the pre-release DINO options (..._dino-padding-invariant.py).
# Same data, schedule and everything else as configs/demo/rscotr_demo.py.
_base_ = './rscotr_demo.py'
model = dict(
    heads=dict(
        det=dict(
            decoder=dict(query_pos_from_scaled_boxes=False),
            dn_cfg=dict(count_negatives=True),
            rank_invalid_proposals=False,
            copy_branches=False,
            query_init='xavier'),
        seg=dict(
            _delete_=True,
            type='Mask2FormerSegHead', in_channels={{_base_.tiny_backbone_dims}},
            feat_channels={{_base_.embed_dims}}, out_channels={{_base_.embed_dims}},
            num_classes=5, ignore_index=5, num_queries=16, num_transformer_feat_level=3,
            pixel_decoder=dict(type='SharedEncoderPixelDecoder', decoder_levels=(2, 1, 0),
                               backbone_index=0, norm_cfg={{_base_.tiny_norm}}),
            transformer_decoder=dict(
                type='DetrTransformerDecoder', num_layers=3, return_intermediate=True,
                transformerlayers=dict(
                    type='DetrTransformerDecoderLayer',
                    attn_cfgs=dict(type='MultiheadAttention', embed_dims={{_base_.embed_dims}},
                                   num_heads=4, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=False),
                    ffn_cfgs=dict(embed_dims={{_base_.embed_dims}}, feedforward_channels=64,
                                  num_fcs=2, act_cfg=dict(type='ReLU', inplace=True),
                                  ffn_drop=0.0, dropout_layer=None, add_identity=True),
                    feedforward_channels=64,
                    operation_order=('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')),
                init_cfg=None),
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=16,
                                     normalize=True),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=16,
                                         normalize=True, temperature=10000),
                num_levels=4, embed_dims={{_base_.embed_dims}}),
            train_cfg=dict(
                num_points=1024, oversample_ratio=3.0, importance_sample_ratio=0.75,
                assigner=dict(
                    type='MaskHungarianAssigner',
                    cls_cost=dict(type='ClassificationCost', weight=2.0),
                    mask_cost=dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dice_cost=dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)),
                sampler=dict(type='MaskPseudoSampler')))))
