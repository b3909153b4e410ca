# Variant: the DINO head with the options this project had before release
# parity, each of which differs from the released code:
# - rank_invalid_proposals=False: encoder proposals at padded positions or
#   outside (0.01, 0.99) are never selected (released: infinite boxes, ranked
#   by class score like the others);
# - query_pos_from_scaled_boxes=False: the positional query embeds the box in
#   the image's own frame (released: scaled by the level-0 valid ratio, i.e.
#   in the padded batch's frame). With the previous option, an image's
#   detections do not depend on how its batch is padded;
# - count_negatives=True: 100 denoising queries in all, positives and
#   negatives (released: max(1, 100 // max_gt) groups of a positive and a
#   negative per box, up to 200 queries);
# - copy_branches=False, query_init='xavier': per-layer branches initialised
#   on their own, xavier content queries (released: copies of one branch,
#   torch's normal(0, 1) queries).
_base_ = '../rscotr_swin-t_300k_resisc-dior-potsdam.py'
model = dict(
    heads=dict(
        det=dict(
            decoder=dict(query_pos_from_scaled_boxes=False),
            dn_cfg=dict(count_negatives=True),
            rank_invalid_proposals=False,
            copy_branches=False,
            query_init='xavier')))
