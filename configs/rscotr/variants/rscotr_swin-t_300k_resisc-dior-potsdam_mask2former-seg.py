# Variant: standard (matching-based) Mask2Former segmentation instead of the
# released per-pixel head. The pixel decoder fuses the shared encoder's finest
# level with Swin stage 1 into stride-4 mask features (an FPN step); the
# 9-layer decoder cycles over the encoder levels of strides 32/16/8; the 100
# queries are matched (Hungarian) to one mask per class present and trained
# with class CE (2, no-object 0.1) and point-sampled mask BCE (5) and Dice (5)
# on 12544 points at every layer; inference multiplies softmax class scores by
# sigmoid masks. Its encoder pass feeds the neck levels fine to coarse with
# padding masks, like DINO's. Clutter is ignored (the 5-class protocol), as in
# the standard Mask2Former recipe for Potsdam.
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(
    heads=dict(
        seg=dict(
            _delete_=True,
            type='Mask2FormerSegHead',
            in_channels=96,
            feat_channels=256,
            out_channels=256,
            num_classes=5,
            ignore_index=5,
            num_queries=100,
            num_transformer_feat_level=3,
            pixel_decoder=dict(type='SharedEncoderPixelDecoder', decoder_levels=(2, 1, 0),
                               backbone_index=0),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, temperature=10000),
                num_levels=4, embed_dims=256, level_order='fine_to_coarse',
                mask_padding=True))))
data = dict(
    train=dict(potsdam=dict(dataset={{_base_.potsdam_train_5class}})),
    val=dict(potsdam=dict(dataset={{_base_.potsdam_val_5class}})),
    test=dict(potsdam=dict(dataset={{_base_.potsdam_test_5class}})))
