# Our config of the tiny released model of release_tiny_model.json (the
# release's config at tiny sizes): Swin embed 32, depths 1-1-1-1; neck
# 64/128/256 -> 256; 1 shared encoder layer (FFN 256); DINO with 30 queries, 2
# decoder layers, 10 dn queries; released seg head (scheme 2, 8 queries, 2
# layers, 6 label classes = the release's num_classes 5 + clutter); task
# weights 1/1/0.1. Every other option takes the reference (released) default.
embed_dims = 256
ffn = 256


def _msda():
    return dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=8, num_levels=4,
                num_points=4, dropout=0.0, batch_first=True)


def _ffn():
    return dict(type='FFN', embed_dims=embed_dims, feedforward_channels=ffn, num_fcs=2,
                ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))


model = dict(
    type='RSCoTr',
    backbone=dict(
        type='mmdet.SwinTransformer', embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8),
        window_size=7, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.0,
        attn_drop_rate=0.0, drop_path_rate=0.0, patch_norm=True, out_indices=(0, 1, 2, 3),
        with_cp=False, convert_weights=True),
    neck=dict(
        type='mmdet.ChannelMapper', in_channels=[64, 128, 256], kernel_size=1,
        out_channels=embed_dims, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    neck_in_indices=(1, 2, 3),
    encoder=dict(
        type='SharedDeformableEncoder', num_layers=1,
        transformerlayers=dict(
            type='BaseTransformerLayer', attn_cfgs=_msda(), ffn_cfgs=_ffn(),
            operation_order=('self_attn', 'norm', 'ffn', 'norm'), batch_first=True)),
    heads=dict(
        cls=dict(type='SingleLevelClsHead', num_classes=45, in_channels=256),
        det=dict(
            type='DINOHead', num_classes=20, embed_dims=embed_dims, num_query=30,
            decoder=dict(
                type='DINODecoder', num_layers=2,
                transformerlayers=dict(
                    type='BaseTransformerLayer',
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=8,
                             attn_drop=0.0, proj_drop=0.0, batch_first=True),
                        _msda(),
                    ],
                    ffn_cfgs=_ffn(),
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
                    batch_first=True)),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=embed_dims),
            dn_cfg=dict(num_dn_queries=10, label_noise_scale=0.5, box_noise_scale=1.0),
            test_cfg=dict(max_per_img=300)),
        seg=dict(
            type='PerPixelMask2FormerHead', num_classes=6, scheme=2, num_queries=8,
            transformer_decoder=dict(
                type='DetrTransformerDecoder', num_layers=2, return_intermediate=True,
                transformerlayers=dict(
                    type='BaseTransformerLayer',
                    attn_cfgs=dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=8,
                                   attn_drop=0.0, proj_drop=0.0, dropout_layer=None,
                                   batch_first=False),
                    ffn_cfgs=_ffn(),
                    operation_order=('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')),
                init_cfg=None))),
    task_weights=dict(cls=1.0, det=1.0, seg=0.1))
