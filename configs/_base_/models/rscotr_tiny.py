# A tiny RSCoTr (same parts as the reference, as released, with small
# dimensions and 1-3 layers) for the demo: trains on CPU in minutes.
embed_dims = 32
tiny_backbone_dims = 16
tiny_norm = dict(type='GN', num_groups=8)

model = dict(
    type='RSCoTr',
    backbone=dict(
        type='mmdet.SwinTransformer', embed_dims=tiny_backbone_dims, depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4), window_size=4, mlp_ratio=2, drop_path_rate=0.0,
        patch_norm=True, out_indices=(0, 1, 2, 3), convert_weights=False),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[2 * tiny_backbone_dims, 4 * tiny_backbone_dims, 8 * tiny_backbone_dims],
        kernel_size=1, out_channels=embed_dims, act_cfg=None, norm_cfg=tiny_norm, num_outs=4),
    neck_in_indices=(1, 2, 3),
    encoder=dict(
        type='SharedDeformableEncoder',
        num_layers=1,
        transformerlayers=dict(
            type='BaseTransformerLayer',
            attn_cfgs=dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=4,
                           num_levels=4, num_points=2, dropout=0.0, batch_first=True),
            ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=64, num_fcs=2,
                          ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)),
            operation_order=('self_attn', 'norm', 'ffn', 'norm'),
            batch_first=True)),
    heads=dict(
        cls=dict(type='SingleLevelClsHead', num_classes=45, in_channels=8 * tiny_backbone_dims),
        det=dict(
            type='DINOHead', num_classes=20, embed_dims=embed_dims, num_query=30,
            decoder=dict(
                type='DINODecoder', num_layers=2,
                transformerlayers=dict(
                    type='BaseTransformerLayer',
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4,
                             attn_drop=0.0, proj_drop=0.0, batch_first=True),
                        dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=4,
                             num_levels=4, num_points=2, dropout=0.0, batch_first=True),
                    ],
                    ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=64,
                                  num_fcs=2, ffn_drop=0.0,
                                  act_cfg=dict(type='ReLU', inplace=True)),
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
                    batch_first=True)),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=embed_dims // 2,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=embed_dims),
            dn_cfg=dict(num_dn_queries=20, label_noise_scale=0.5, box_noise_scale=1.0),
            test_cfg=dict(max_per_img=100)),
        # the released segmentation head (scheme 2: the 8 query masks are the
        # class logits), its encoder pass coarse to fine without padding mask
        seg=dict(
            type='PerPixelMask2FormerHead', num_classes=5, scheme=2, feat_channels=embed_dims,
            out_channels=embed_dims, num_queries=8, num_transformer_feat_level=4,
            pixel_decoder=dict(type='SharedEncoderPixelDecoder', decoder_levels=(0, 1, 2, 3),
                               backbone_index=None),
            transformer_decoder=dict(
                type='DetrTransformerDecoder', num_layers=3, return_intermediate=True,
                transformerlayers=dict(
                    type='DetrTransformerDecoderLayer',
                    attn_cfgs=dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4,
                                   attn_drop=0.0, proj_drop=0.0, dropout_layer=None,
                                   batch_first=False),
                    ffn_cfgs=dict(embed_dims=embed_dims, feedforward_channels=64, num_fcs=2,
                                  act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                                  dropout_layer=None, add_identity=True),
                    feedforward_channels=64,
                    operation_order=('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')),
                init_cfg=None),
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=embed_dims // 2,
                                     normalize=True),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=embed_dims // 2,
                                         normalize=True, temperature=10000),
                num_levels=4, embed_dims=embed_dims, level_order='coarse_to_fine',
                mask_padding=False))),
    task_weights=dict(cls=1.0, det=1.0, seg=0.1))
