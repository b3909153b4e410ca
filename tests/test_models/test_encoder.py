import pytest
import torch

from rscotr.models.layers.encoder import (EncoderInputBuilder, SharedDeformableEncoder,
                                          default_encoder_layer, encoder_reference_points)

POS = dict(type='SinePositionalEncoding', num_feats=8, normalize=True, offset=-0.5,
           temperature=20)


def _feats(bs=2, c=16, sizes=((8, 8), (4, 4), (2, 2), (1, 1))):
    return [torch.randn(bs, c, h, w) for h, w in sizes]


def test_inputs_shapes_and_masks():
    builder = EncoderInputBuilder(POS, num_levels=4, embed_dims=16)
    builder.init_weights()
    metas = [dict(img_shape=(64, 64, 3), batch_input_shape=(64, 64)),
             dict(img_shape=(32, 48, 3), batch_input_shape=(64, 64))]
    inp = builder(_feats(), metas)
    assert inp.query.shape == (2, 85, 16) and inp.query_pos.shape == (2, 85, 16)
    assert inp.spatial_shapes.tolist() == [[8, 8], [4, 4], [2, 2], [1, 1]]
    assert inp.level_start_index.tolist() == [0, 64, 80, 84]
    assert inp.reference_points.shape == (2, 85, 4, 2)
    assert not inp.padding_mask[0].any()
    first = inp.padding_mask[1, :64].view(8, 8)
    assert first[:4, :6].logical_not().all() and first[4:].all() and first[:, 6:].all()
    assert torch.allclose(inp.valid_ratios[1, 0], torch.tensor([0.75, 0.5]))
    levels = inp.split_levels(inp.query)
    assert [tuple(x.shape) for x in levels] == [(2, 16, 8, 8), (2, 16, 4, 4), (2, 16, 2, 2),
                                                (2, 16, 1, 1)]


def test_split_levels_roundtrip():
    builder = EncoderInputBuilder(POS, num_levels=4, embed_dims=16)
    feats = _feats()
    metas = [dict(img_shape=(64, 64, 3), batch_input_shape=(64, 64))] * 2
    inp = builder(feats, metas)
    for a, b in zip(inp.split_levels(inp.query), feats):
        assert torch.equal(a, b)


def test_reference_points_centres():
    shapes = torch.tensor([[2, 4]])
    pts = encoder_reference_points(shapes, torch.ones(1, 1, 2))
    assert torch.allclose(pts[0, :, 0, 0], torch.tensor([.125, .375, .625, .875] * 2))
    assert torch.allclose(pts[0, :, 0, 1], torch.tensor([.25] * 4 + [.75] * 4))


def test_encoder_runs_and_ignores_padding():
    builder = EncoderInputBuilder(POS, num_levels=4, embed_dims=16)
    enc = SharedDeformableEncoder(default_encoder_layer(16, 2, 4, 2, 32), num_layers=2)
    enc.init_weights()
    enc.eval()
    feats = _feats(bs=1)
    metas = [dict(img_shape=(64, 64, 3), batch_input_shape=(64, 64))]
    out = enc(builder(feats, metas))
    assert out.memory.shape == (1, 85, 16)
    assert torch.isfinite(out.memory).all()
    # a padded copy: the valid region's memory is unchanged by what lies in the padding
    padded = [torch.cat([f, torch.randn_like(f)], dim=-1) for f in feats]
    metas_p = [dict(img_shape=(64, 64, 3), batch_input_shape=(64, 128))]
    out_p = enc(builder(padded, metas_p))
    first_p = out_p.memory_levels()[0][..., :8]
    assert torch.allclose(first_p, out.memory_levels()[0], atol=1e-4)


def test_coarse_to_fine_pass_without_padding_mask():
    """The released segmentation head's pass: levels reversed, nothing masked, ratios 1,
    reference points at the cell centres of each level, level embedding by position."""
    builder = EncoderInputBuilder(POS, num_levels=4, embed_dims=16, level_order='coarse_to_fine',
                                  mask_padding=False)
    builder.init_weights()
    feats = _feats()
    metas = [dict(img_shape=(32, 48, 3), batch_input_shape=(64, 64))] * 2  # padded, not masked
    inp = builder(feats, metas)
    assert inp.spatial_shapes.tolist() == [[1, 1], [2, 2], [4, 4], [8, 8]]
    assert inp.level_start_index.tolist() == [0, 1, 5, 21]
    assert not inp.padding_mask.any() and torch.all(inp.valid_ratios == 1)
    levels = inp.split_levels(inp.query)
    for got, want in zip(levels, feats[::-1]):
        assert torch.equal(got, want)
    # level 1 (2x2): centres (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75) on every level
    pts = inp.reference_points[0, 1:5]
    expected = torch.tensor([[.25, .25], [.75, .25], [.25, .75], [.75, .75]])
    assert torch.allclose(pts, expected[:, None].expand(4, 4, 2))
    # position 0 (the coarsest level) gets level_embed[0] on top of the sine encoding
    sine = builder.positional_encoding(torch.zeros(2, 1, 1, dtype=torch.bool)).flatten(2)
    assert torch.allclose(inp.query_pos[:, 0], sine[..., 0] + builder.level_embed[0])


def test_level_order_is_checked():
    with pytest.raises(ValueError, match='level_order'):
        EncoderInputBuilder(POS, num_levels=4, embed_dims=16, level_order='random')
