# RSCoTr reference model, as released: Swin-T backbone, 4-level channel mapper,
# 6-layer shared deformable encoder, single-level classification head, DINO
# detection head, and the released Mask2Former-style segmentation head
# (per-pixel cross-entropy, scheme 2). A release checkpoint loads into this
# model (tools/model_converters/rscotr_release.py; README "Fidelity").
#
# The ImageNet Swin-T weights are read from a local file (nothing is downloaded):
# put the official `swin_tiny_patch4_window7_224.pth` at the path below or
# override `model.backbone.init_cfg.checkpoint` with --cfg-options.
swin_pretrained = 'checkpoints/swin_tiny_patch4_window7_224.pth'
embed_dims = 256

model = dict(
    type='RSCoTr',
    backbone=dict(
        type='mmdet.SwinTransformer',
        embed_dims=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=swin_pretrained)),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[192, 384, 768],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    neck_in_indices=(1, 2, 3),
    encoder=dict(
        type='SharedDeformableEncoder',
        num_layers=6,
        transformerlayers=dict(
            type='BaseTransformerLayer',
            attn_cfgs=dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=8,
                           num_levels=4, num_points=4, dropout=0.0, batch_first=True),
            ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=2048,
                          num_fcs=2, ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)),
            operation_order=('self_attn', 'norm', 'ffn', 'norm'),
            batch_first=True)),
    heads=dict(
        cls=dict(
            type='SingleLevelClsHead',
            num_classes=45,
            in_channels=768,
            loss=dict(type='mmcls.LabelSmoothLoss', label_smooth_val=0.1, mode='original',
                      loss_weight=1.0),
            train_augments=[
                dict(type='BatchMixup', alpha=0.8, num_classes=45, prob=0.5),
                dict(type='BatchCutMix', alpha=1.0, num_classes=45, prob=0.5),
            ]),
        # DINO as released: two-stage query selection (600 queries; invalid
        # proposals get infinite boxes and are ranked with the others), CDN with
        # max(1, 100 // max_gt) groups, 6-layer decoder with look-forward-twice
        # whose positional queries embed the valid-ratio-scaled boxes.
        det=dict(
            type='DINOHead',
            num_classes=20,
            embed_dims=embed_dims,
            num_query=600,
            decoder=dict(
                type='DINODecoder',
                num_layers=6,
                query_pos_from_scaled_boxes=True,
                transformerlayers=dict(
                    type='BaseTransformerLayer',
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=8,
                             attn_drop=0.0, proj_drop=0.0, batch_first=True),
                        dict(type='RSCoTrMSDeformAttn', embed_dims=embed_dims, num_heads=8,
                             num_levels=4, num_points=4, dropout=0.0, batch_first=True),
                    ],
                    ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=2048,
                                  num_fcs=2, ffn_drop=0.0,
                                  act_cfg=dict(type='ReLU', inplace=True)),
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
                    batch_first=True)),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=embed_dims),
            dn_cfg=dict(num_dn_queries=100, label_noise_scale=0.5, box_noise_scale=1.0,
                        count_negatives=False),
            rank_invalid_proposals=True,
            copy_branches=True,
            query_init='normal',
            loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=5.0),
            loss_iou=dict(type='mmdet.GIoULoss', loss_weight=2.0),
            test_cfg=dict(max_per_img=300)),
        # The released segmentation head: encoder pass coarse to fine without
        # padding mask, mask features from the stride-8 encoder level, 9-layer
        # masked-attention decoder over the 4 levels, 100 queries whose mask
        # logits are the per-pixel class logits (scheme 2), one cross-entropy.
        seg=dict(
            type='PerPixelMask2FormerHead',
            num_classes=6,  # the released Potsdam protocol: clutter is a class
            scheme=2,
            feat_channels=embed_dims,
            out_channels=embed_dims,
            num_queries=100,
            num_transformer_feat_level=4,
            pixel_decoder=dict(type='SharedEncoderPixelDecoder', decoder_levels=(0, 1, 2, 3),
                               backbone_index=None),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, temperature=10000),
                num_levels=4, embed_dims=embed_dims, level_order='coarse_to_fine',
                mask_padding=False),
            ignore_index=255,
            loss_decode=dict(type='mmseg.CrossEntropyLoss', use_sigmoid=False,
                             loss_weight=1.0)),
    ),
    task_weights=dict(cls=1.0, det=1.0, seg=0.1))
