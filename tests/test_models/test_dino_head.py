import json
import random

import numpy as np
import pytest
import torch

from rscotr.models import build_model
from rscotr.models.heads.dino_head import encoder_proposals
from rscotr.models.layers.cdn import DenoisingQueryGenerator, denoising_attn_mask
from rscotr.models.layers.dino_decoder import box_sine_embedding, default_decoder_layer
from rscotr.models.layers.encoder import SharedDeformableEncoder, default_encoder_layer

from ..tiny_rscotr import tiny_model_cfg

EMBED = 32
STRIDES = (8, 16, 32, 64)
LOSS_NAMES = ('loss_cls', 'loss_bbox', 'loss_iou')




#: The options that differ from the release, set to this project's earlier behaviour.
PRE_RELEASE = dict(rank_invalid_proposals=False, query_pos_from_scaled_boxes=False)


def tiny_head(num_classes=4, num_query=30, num_layers=2, num_dn_queries=20, max_per_img=50,
              rank_invalid_proposals=True, query_pos_from_scaled_boxes=True, **kwargs):
    return dict(
        type='DINOHead', num_classes=num_classes, embed_dims=EMBED, num_query=num_query,
        decoder=dict(type='DINODecoder', num_layers=num_layers,
                     query_pos_from_scaled_boxes=query_pos_from_scaled_boxes,
                     transformerlayers=default_decoder_layer(EMBED, 4, 4, 2, 64)),
        rank_invalid_proposals=rank_invalid_proposals,
        encoder_inputs=dict(
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                     normalize=True, offset=0.0, temperature=20),
            num_levels=4, embed_dims=EMBED),
        dn_cfg=dict(num_dn_queries=num_dn_queries, label_noise_scale=0.5, box_noise_scale=1.0),
        test_cfg=dict(max_per_img=max_per_img), **kwargs)


def tiny_model(backbone_dims=16, **head_kwargs):
    return tiny_model_cfg(heads=dict(det=tiny_head(**head_kwargs)), backbone_dims=backbone_dims)


def init_model(model):
    """``model.init_weights()``, plus the heads' own init (the model keeps its heads in a
    plain ``nn.ModuleDict``, which mmcv's ``BaseModule.init_weights`` does not recurse into)."""
    model.init_weights()
    for head in model.heads.values():
        if not head._is_init:
            head.init_weights()


def build_head(**kwargs):
    head = build_model(tiny_head(**kwargs))
    head.init_weights()
    encoder = SharedDeformableEncoder(default_encoder_layer(EMBED, 4, 4, 2, 64), num_layers=1)
    encoder.init_weights()
    return head, encoder


def meta(h, w, batch_shape=None, scale=1.0):
    batch_shape = batch_shape or (h, w)
    ori = (int(round(h / scale)), int(round(w / scale)), 3)
    return dict(img_shape=(h, w, 3), ori_shape=ori, pad_shape=batch_shape + (3,),
                batch_input_shape=batch_shape,
                scale_factor=np.array([scale] * 4, dtype=np.float32))


def neck_levels(bs, batch_shape):
    h, w = batch_shape
    return tuple(torch.randn(bs, EMBED, h // s, w // s) for s in STRIDES)


def head_feats(head, encoder, metas, levels=None):
    levels = levels if levels is not None else neck_levels(len(metas),
                                                           metas[0]['batch_input_shape'])
    feats = dict(neck=levels)
    feats['encoder'] = encoder(head.encoder_inputs(feats, metas))
    return feats


def random_gt(n, h, w, num_classes=4):
    xy = torch.rand(n, 2) * torch.tensor([w * 0.7, h * 0.7])
    wh = (torch.rand(n, 2) * 0.25 + 0.05) * torch.tensor([w, h])
    return torch.cat((xy, xy + wh), 1), torch.randint(0, num_classes, (n,))


# ---------------------------------------------------------------------------- stages
def test_encoder_proposals_follow_valid_area():
    mask = torch.zeros(2, 8 * 8 + 4 * 4, dtype=torch.bool)
    lvl0 = mask[1, :64].view(8, 8)
    lvl0[:, 4:] = True  # second image: left half valid
    mask[1, 64:].view(4, 4)[:, 2:] = True
    shapes = torch.tensor([[8, 8], [4, 4]])
    proposals, valid = encoder_proposals(mask, shapes)
    assert proposals.shape == (2, 80, 4) and valid.shape == (2, 80)
    assert not valid[mask].any()
    boxes = proposals.sigmoid()
    # column 3 of level 0: centre 3.5 / valid width (8, then 4)
    assert torch.allclose(boxes[0, 3, 0], torch.tensor(3.5 / 8))
    assert torch.allclose(boxes[1, 3, 0], torch.tensor(3.5 / 4))
    assert torch.allclose(boxes[0, 64:, 2], torch.tensor(0.1))
    assert torch.isfinite(proposals).all()


def test_box_sine_embedding_every_channel():
    """Each block (cy, cx, w, h) interleaves sin/cos of 2*pi*v / T**(2*floor(j/2)/F)."""
    import math
    torch.manual_seed(0)
    boxes = torch.rand(2, 3, 4, dtype=torch.float64)
    for num_feats, temperature in ((16, 10000.0), (128, 10000.0), (8, 20.0)):
        emb = box_sine_embedding(boxes, num_feats=num_feats, temperature=temperature)
        assert emb.shape == (2, 3, 4 * num_feats)
        expected = torch.empty_like(emb)
        for b in range(2):
            for q in range(3):
                cx, cy, w, h = boxes[b, q].tolist()
                for block, v in enumerate((cy, cx, w, h)):
                    for j in range(num_feats):
                        arg = 2 * math.pi * v / temperature ** (2 * (j // 2) / num_feats)
                        expected[b, q, block * num_feats + j] = (math.sin(arg) if j % 2 == 0
                                                                 else math.cos(arg))
        torch.testing.assert_close(emb, expected, atol=1e-12, rtol=0)


def _selection_head(rank_invalid: bool, k: int = 4):
    """A head whose encoder-proposal class score is ``LN(memory)[0]`` and whose
    proposal box branch adds nothing, so that the selection can be worked out by hand."""
    head = build_model(tiny_head(num_query=k, rank_invalid_proposals=rank_invalid))
    head.init_weights()
    with torch.no_grad():
        head.memory_trans_fc.weight.copy_(torch.eye(EMBED))
        head.memory_trans_fc.bias.zero_()
        head.memory_trans_norm.weight.fill_(1.0)
        head.memory_trans_norm.bias.zero_()
        branch = head.cls_branches[head.num_layers]
        branch.weight.zero_()
        branch.weight[:, 0] = 1.0
        branch.bias.zero_()
        head.reg_branches[head.num_layers][-1].weight.zero_()
        head.reg_branches[head.num_layers][-1].bias.zero_()
    return head


@pytest.mark.parametrize('rank_invalid', [True, False])
def test_query_selection_with_invalid_positions(rank_invalid):
    # one level of 4x4 (stride 8 of a 32x32 batch); the image covers the left 2 columns
    shapes = torch.tensor([[4, 4]])
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[:, :, 2:] = True
    mask = mask.flatten(1)
    # valid positions: LN(memory)[0] < 0 with a rank by row; padded ones would score highest
    memory = torch.zeros(1, 16, EMBED)
    memory[0, :, 1] = 1.0
    memory[0, :, 0] = -torch.arange(16, dtype=torch.float32) / 16
    memory[0, mask[0], 0] = 100.0
    head = _selection_head(rank_invalid)
    with torch.no_grad():
        cls, boxes, reference = head.select_queries(memory, mask, shapes)
    if rank_invalid:
        # padded positions have zeroed memory: LN(0) = 0, score 0 beats every valid
        # position; their boxes are infinite before the sigmoid
        assert torch.all(cls[..., 0] == 0)
        assert torch.isinf(reference).all() and torch.all(boxes == 1.0)
    else:
        # the 4 best valid positions: row-major 0, 1, 4, 5 (scores fall with the index)
        expected = torch.tensor([[(0.5 / 2, 0.5 / 4), (1.5 / 2, 0.5 / 4), (0.5 / 2, 1.5 / 4),
                                  (1.5 / 2, 1.5 / 4)]])
        assert torch.isfinite(reference).all()
        torch.testing.assert_close(boxes[..., :2], expected)
        torch.testing.assert_close(boxes[..., 2:], torch.full((1, 4, 2), 0.05))


def test_query_pos_uses_valid_ratio_scaled_boxes():
    """As released the positional query embeds the box scaled by the level-0 valid ratio."""
    seen = {}
    for scaled in (True, False):
        head = build_model(tiny_head(query_pos_from_scaled_boxes=scaled))
        head.init_weights()
        decoder = head.decoder
        calls = []
        original = decoder.ref_point_head.forward
        decoder.ref_point_head.forward = lambda x, calls=calls, original=original: (
            calls.append(x.clone()) or original(x))
        boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])
        ratios = torch.tensor([[[0.5, 0.75]] * 4])
        memory = torch.randn(1, 8 * 8 + 4 * 4 + 2 * 2 + 1, EMBED)
        shapes = torch.tensor([[8, 8], [4, 4], [2, 2], [1, 1]])
        starts = torch.tensor([0, 64, 80, 84])
        with torch.no_grad():
            decoder(torch.randn(1, 1, EMBED), memory, torch.zeros(1, 85, dtype=torch.bool),
                    boxes, shapes, starts, ratios)
        seen[scaled] = calls[0]
    scaled_box = torch.tensor([[[0.25, 0.375, 0.1, 0.15]]])
    torch.testing.assert_close(seen[True], box_sine_embedding(scaled_box, EMBED // 2))
    torch.testing.assert_close(seen[False], box_sine_embedding(
        torch.tensor([[[0.5, 0.5, 0.2, 0.2]]]), EMBED // 2))


def test_branches_start_as_copies_and_query_init():
    torch.manual_seed(0)
    head = build_model(tiny_head(copy_branches=True))
    head.init_weights()
    for branches in (head.cls_branches, head.reg_branches):
        for branch in branches[1:]:
            for a, b in zip(branch.parameters(), branches[0].parameters()):
                assert torch.equal(a, b)
    # the branches are copies in value only: training one leaves the others
    assert head.cls_branches[1].weight.data_ptr() != head.cls_branches[0].weight.data_ptr()
    # torch's default normal(0, 1) content queries as released (std near 1)
    assert 0.8 < head.query_embedding.weight.std().item() < 1.2
    other = build_model(tiny_head(copy_branches=False, query_init='xavier'))
    other.init_weights()
    assert not torch.equal(other.cls_branches[0].weight, other.cls_branches[1].weight)
    bound = (6 / (30 + EMBED)) ** 0.5
    assert other.query_embedding.weight.abs().max().item() <= bound


def test_forward_shapes_train_with_denoising():
    head, encoder = build_head()
    head.train()
    metas = [meta(64, 64), meta(64, 64)]
    gts = [random_gt(3, 64, 64), random_gt(1, 64, 64)]
    outs = head(head_feats(head, encoder, metas), metas, [g[0] for g in gts],
                [g[1] for g in gts])
    groups = max(1, 20 // 3)  # as released: the budget counts boxes, not pairs
    num_dn = groups * 2 * 3
    assert outs.dn.num_groups == groups and outs.dn.num_queries == num_dn
    assert outs.all_cls_scores.shape == (2, 2, 30, 4)
    assert outs.all_bbox_preds.shape == (2, 2, 30, 4)
    assert outs.enc_cls_scores.shape == (2, 30, 4) and outs.enc_bbox_preds.shape == (2, 30, 4)
    assert outs.dn_cls_scores.shape == (2, 2, num_dn, 4)
    assert outs.dn_bbox_preds.shape == (2, 2, num_dn, 4)
    assert outs.dn.attn_mask.shape == (num_dn + 30, num_dn + 30)
    for boxes in (outs.all_bbox_preds, outs.enc_bbox_preds, outs.dn_bbox_preds):
        assert ((boxes >= 0) & (boxes <= 1)).all()


def test_forward_eval_has_no_denoising():
    head, encoder = build_head()
    head.eval()
    metas = [meta(64, 64)]
    gt = random_gt(3, 64, 64)
    outs = head(head_feats(head, encoder, metas), metas, [gt[0]], [gt[1]])
    assert outs.dn is None and outs.dn_cls_scores.shape == (2, 1, 0, 4)
    assert outs.all_cls_scores.shape == (2, 1, 30, 4)


def test_decoder_look_forward_twice():
    """Layer 1's boxes train layer 0's box branch; layer 1 gets a detached reference."""
    head, encoder = build_head()
    metas = [meta(64, 64)]
    feats = head_feats(head, encoder, metas)
    outs = head(feats, metas)
    outs.all_bbox_preds[1].sum().backward()
    assert head.reg_branches[0][-1].weight.grad.abs().sum() > 0
    assert head.reg_branches[1][-1].weight.grad.abs().sum() > 0
    # no gradient reaches the encoder-proposal box branch: the references are detached
    assert head.reg_branches[2][-1].weight.grad is None


# ---------------------------------------------------------------------------- denoising
def test_denoising_attn_mask_property():
    rng = random.Random(0)
    for _ in range(40):
        groups, max_gt, matching = rng.randint(1, 6), rng.randint(1, 5), rng.randint(1, 12)
        size = 2 * max_gt
        mask = denoising_attn_mask(groups, size, matching)
        num_dn = groups * size
        assert mask.shape == (num_dn + matching, num_dn + matching)
        expected = torch.zeros_like(mask)
        for i in range(num_dn + matching):
            for j in range(num_dn + matching):
                if i >= num_dn:  # matching query: only matching queries
                    expected[i, j] = j < num_dn
                elif j < num_dn:  # dn query: only its own group (and matching)
                    expected[i, j] = i // size != j // size
        assert torch.equal(mask, expected)
        assert not mask.all(1).any()  # every query sees something


def corner(b):
    return torch.cat((b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2), 1)


def test_denoising_queries_property():
    rng = random.Random(1)
    gen = DenoisingQueryGenerator(num_classes=5, embed_dims=8, num_dn_queries=100,
                                  label_noise_scale=0.0, box_noise_scale=1.0)
    for _ in range(20):
        counts = [rng.randint(0, 6) for _ in range(rng.randint(1, 3))]
        # boxes well inside the image so the noise is never clamped
        boxes = [torch.cat((torch.rand(n, 2) * 0.2 + 0.4, torch.rand(n, 2) * 0.1 + 0.05), 1)
                 for n in counts]
        labels = [torch.randint(0, 5, (n,)) for n in counts]
        dn = gen(boxes, labels, num_matching=7)
        if max(counts) == 0:
            assert dn is None
            continue
        max_gt = max(counts)
        assert dn.max_gt == max_gt and dn.num_groups == max(1, 100 // max_gt)
        assert dn.label_query.shape == (len(counts), dn.num_queries, 8)
        assert torch.equal(dn.attn_mask, denoising_attn_mask(dn.num_groups, 2 * max_gt, 7))
        noised = dn.box_query.sigmoid()
        for i, n in enumerate(counts):
            pos, gt_inds = dn.positive_indices(n)
            assert len(pos) == n * dn.num_groups
            padding = torch.ones(dn.num_queries, dtype=torch.bool)
            padding[pos] = False
            padding[pos + max_gt] = False
            assert (dn.label_query[i, padding] == 0).all() and (dn.box_query[i, padding] == 0).all()
            # no label noise: the content query is the gt label's embedding
            assert torch.allclose(dn.label_query[i, pos], gen.label_embedding(labels[i][gt_inds]))
            assert torch.allclose(dn.label_query[i, pos + max_gt],
                                  gen.label_embedding(labels[i][gt_inds]))
            if n == 0:
                continue
            gt = boxes[i][gt_inds]
            half = torch.cat((gt[:, 2:], gt[:, 2:]), 1) / 2
            pos_shift = (corner(noised[i, pos]) - corner(gt)).abs() / half
            assert (pos_shift <= 1 + 1e-3).all()
    # corner noise: positives move by less than half the box size, negatives by 1-2 halves
    # (a negative may come out inverted, x1 > x2, as in DINO)
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.1]]).expand(3, 4, 2, 50, 4)
    noised = gen._noised_boxes(gt)
    shift = (corner(noised.reshape(-1, 4)) - corner(gt.reshape(-1, 4))).abs().view(noised.shape)
    shift = shift / torch.tensor([0.1, 0.05, 0.1, 0.05])
    assert (shift[:, :, 0] < 1).all() and (shift[:, :, 1] >= 1).all()
    assert (shift[:, :, 1] < 2).all()


@pytest.mark.parametrize('count_negatives, groups', [(False, 2000 // 3), (True, 2000 // 6)])
def test_denoising_group_budget(count_negatives, groups):
    gen = DenoisingQueryGenerator(num_classes=3, embed_dims=4, num_dn_queries=2000,
                                  count_negatives=count_negatives)
    boxes = [torch.full((3, 4), 0.5), torch.full((1, 4), 0.5)]
    dn = gen(boxes, [torch.zeros(3, dtype=torch.long), torch.zeros(1, dtype=torch.long)], 5)
    assert dn.num_groups == groups and dn.num_queries == groups * 2 * 3


def test_denoising_label_noise_rate():
    """With scale 0.5 a label is re-drawn with probability 0.25, uniformly over the
    classes, so it changes with probability 0.25 * (C - 1) / C."""
    num_classes = 4
    gen = DenoisingQueryGenerator(num_classes=num_classes, embed_dims=8, num_dn_queries=4000,
                                  label_noise_scale=0.5)
    torch.manual_seed(0)
    dn = gen([torch.full((1, 4), 0.5)], [torch.tensor([2])], num_matching=1)
    table = gen.label_embedding.weight
    drawn = (dn.label_query[0][:, None] - table[None]).abs().sum(-1).argmin(-1)
    assert len(drawn) == 8000
    changed = drawn != 2
    # binomial(8000, 0.1875): standard deviation 0.0044
    assert abs(changed.float().mean().item() - 0.25 * 3 / 4) < 0.02
    counts = torch.bincount(drawn[changed], minlength=num_classes).float()
    shares = counts[[0, 1, 3]] / changed.sum()
    assert counts[2] == 0 and (shares - 1 / 3).abs().max() < 0.05


# ---------------------------------------------------------------------------- losses
def expected_keys(num_layers=2):
    keys = set(LOSS_NAMES)
    keys |= {f'interm_{n}' for n in LOSS_NAMES} | {f'dn_{n}' for n in LOSS_NAMES}
    for i in range(num_layers - 1):
        keys |= {f'd{i}.{n}' for n in LOSS_NAMES} | {f'd{i}.dn_{n}' for n in LOSS_NAMES}
    return keys


def _train_losses(counts, size=64, **head_kwargs):
    head, encoder = build_head(**head_kwargs)
    head.train()
    metas = [meta(size, size)] * len(counts)
    gts = [random_gt(n, size, size) for n in counts]
    feats = head_feats(head, encoder, metas)
    losses = head.forward_train(feats, metas, [g[0] for g in gts], [g[1] for g in gts])
    return head, losses


def test_losses_many_boxes_finite_and_backward():
    head, losses = _train_losses([40, 25])  # more boxes than the 30 queries
    assert set(losses) == expected_keys()
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert all(losses[k] > 0 for k in losses)
    sum(losses.values()).backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert head.dn_generator.label_embedding.weight.grad.abs().sum() > 0


def test_losses_batch_without_boxes():
    head, losses = _train_losses([0, 0])
    assert set(losses) == expected_keys()
    for key, value in losses.items():
        assert torch.isfinite(value)
        if key.endswith('loss_cls') and 'dn_' not in key:
            assert value > 0
        else:  # box losses, and every denoising term (there are no dn queries)
            assert value == 0
    sum(losses.values()).backward()  # zero terms stay in the graph


def test_losses_image_without_boxes_in_batch():
    head, losses = _train_losses([0, 3])
    assert set(losses) == expected_keys()
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['dn_loss_bbox'] > 0 and losses['loss_cls'] > 0
    sum(losses.values()).backward()


def test_losses_single_layer_keys():
    _, losses = _train_losses([2], num_layers=1)
    assert set(losses) == expected_keys(1)


# ---------------------------------------------------------------------------- inference
def _expected_detections(cls_logits, boxes_cxcywh, img_shape, scale, k, num_classes):
    """DETR-style top-k decoding in numpy, written out step by step."""
    scores = 1 / (1 + np.exp(-cls_logits.astype(np.float64)))  # (Q, C)
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind='stable')[:k]
    h, w = img_shape
    per_class = [[] for _ in range(num_classes)]
    for index in order:
        query, cls = divmod(int(index), num_classes)
        cx, cy, bw, bh = boxes_cxcywh[query].astype(np.float64)
        x1, x2 = np.clip([(cx - bw / 2) * w, (cx + bw / 2) * w], 0, w) / scale
        y1, y2 = np.clip([(cy - bh / 2) * h, (cy + bh / 2) * h], 0, h) / scale
        per_class[cls].append((x1, y1, x2, y2, flat[index]))
    return [np.array(rows, dtype=np.float64).reshape(-1, 5) for rows in per_class]


def test_simple_test_format_and_boxes_inside_original_image():
    head, encoder = build_head(max_per_img=50)
    head.eval()
    # images resized by 0.5 (original 128x96 and 96x128), padded to 64x64
    metas = [meta(64, 48, (64, 64), scale=0.5), meta(48, 64, (64, 64), scale=0.5)]
    with torch.no_grad():
        feats = head_feats(head, encoder, metas)
        results = head.simple_test(feats, metas, rescale=True)
        outs = head(feats, metas)
    assert len(results) == 2
    for i, m in enumerate(metas):
        expected = _expected_detections(outs.all_cls_scores[-1][i].numpy(),
                                         outs.all_bbox_preds[-1][i].numpy(), m['img_shape'][:2],
                                         0.5, 50, 4)
        assert len(results[i]) == 4
        for ours, ref in zip(results[i], expected):
            assert isinstance(ours, np.ndarray) and ours.dtype == np.float32
            assert ours.shape == ref.shape
            np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-5)
    for res, m in zip(results, metas):
        assert sum(len(r) for r in res) == 50
        ori_h, ori_w = m['ori_shape'][:2]
        for r in res:
            assert r.shape[1] == 5
            assert (r[:, [0, 2]] >= 0).all() and (r[:, [0, 2]] <= ori_w).all()
            assert (r[:, [1, 3]] >= 0).all() and (r[:, [1, 3]] <= ori_h).all()
            assert ((r[:, 4] >= 0) & (r[:, 4] <= 1)).all()
    # without rescale the boxes lie in the resized image
    with torch.no_grad():
        small = head.simple_test(feats, metas, rescale=False)
    boxes = np.concatenate(small[0])
    assert boxes[:, [0, 2]].max() <= 48 and boxes[:, [1, 3]].max() <= 64


def test_padded_batch_equals_single_images():
    """With the pre-release options the padding of a batch does not change an image's
    detections (as released, the positional queries and the proposal ranking see it)."""
    head, encoder = build_head(max_per_img=40, **PRE_RELEASE)
    head.eval()
    single_meta = [meta(64, 128)]
    single = neck_levels(1, (64, 128))
    batch_meta = [meta(64, 128, (128, 128)), meta(128, 128, (128, 128))]
    other = neck_levels(1, (128, 128))
    # the first image padded with noise (its padding must not matter)
    padded = tuple(torch.cat((torch.cat((s, torch.randn_like(s)), 2), o), 0)
                   for s, o in zip(single, other))
    with torch.no_grad():
        res_single = head.simple_test(head_feats(head, encoder, single_meta, single), single_meta)
        res_batch = head.simple_test(head_feats(head, encoder, batch_meta, padded), batch_meta)
        res_other = head.simple_test(
            head_feats(head, encoder, [meta(128, 128)], tuple(o for o in other)),
            [meta(128, 128)])
    for a, b in ((res_single[0], res_batch[0]), (res_other[0], res_batch[1])):
        for ra, rb in zip(a, b):
            assert ra.shape == rb.shape
            np.testing.assert_allclose(ra, rb, atol=1e-3, rtol=1e-4)


# ---------------------------------------------------------------------------- full model
def test_full_tiny_model_train_and_test():
    model = build_model(tiny_model())
    init_model(model)
    img = torch.randn(2, 3, 64, 64)
    metas = [meta(64, 64), meta(64, 48, (64, 64))]
    gts = [random_gt(3, 64, 64), random_gt(0, 64, 48)]
    out = model.train_step(dict(img=img, img_metas=metas, gt_bboxes=[g[0] for g in gts],
                                gt_labels=[g[1] for g in gts], task='det', dataset='dior'))
    assert torch.isfinite(out['loss'])
    assert set(out['log_vars']) == {f'det.dior.{k}' for k in expected_keys()} | {'det.dior.loss'}
    out['loss'].backward()
    model.eval()
    with torch.no_grad():
        results = model.simple_test(img, metas, task='det')
    assert len(results) == 2 and all(len(r) == 4 for r in results)


# ---------------------------------------------------------------------------- overfitting
COLOURS = ((1.0, 0.1, 0.1), (0.1, 1.0, 0.1), (0.1, 0.2, 1.0))
# two 64x64 images, boxes (x1, y1, x2, y2, class)
SCENES = (((4, 6, 28, 26, 0), (36, 30, 60, 58, 1), (8, 40, 24, 60, 2)),
          ((30, 4, 58, 20, 2), (6, 24, 26, 56, 0)))


def _synthetic_batch(size=64):
    imgs, boxes, labels = [], [], []
    for scene in SCENES:
        img = torch.full((3, size, size), -0.5)
        for x1, y1, x2, y2, c in scene:
            img[:, y1:y2, x1:x2] = torch.tensor(COLOURS[c])[:, None, None]
        imgs.append(img)
        boxes.append(torch.tensor([s[:4] for s in scene], dtype=torch.float32))
        labels.append(torch.tensor([s[4] for s in scene]))
    return torch.stack(imgs), boxes, labels


def _coco_eval(tmp_path, results, boxes, labels, size=64):
    from mmdet.datasets import CocoDataset
    classes = ('red', 'green', 'blue')
    images = [dict(id=i, file_name=f'{i}.png', width=size, height=size) for i in range(len(boxes))]
    anns = []
    for i, (bb, ll) in enumerate(zip(boxes, labels)):
        for (x1, y1, x2, y2), c in zip(bb.tolist(), ll.tolist()):
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=c + 1, iscrowd=0,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    ann_file = tmp_path / 'tiny_coco.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    dataset = CocoDataset(str(ann_file), pipeline=[], classes=classes, test_mode=True)
    return dataset.evaluate(results, metric='bbox')['bbox_mAP_50']


def overfit(seed, steps=60, lr=2e-3):
    """Train the tiny model on the 2 synthetic images (60 steps; with seed 0 mAP@0.5
    reaches 1.0 by step 30)."""
    torch.manual_seed(seed)
    model = build_model(tiny_model(backbone_dims=16, num_classes=3, num_query=30, num_layers=2,
                                   num_dn_queries=30, max_per_img=100))
    init_model(model)
    img, boxes, labels = _synthetic_batch()
    metas = [meta(64, 64)] * 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4, foreach=True)
    model.train()
    for _ in range(steps):
        out = model.train_step(dict(img=img, img_metas=metas, gt_bboxes=boxes, gt_labels=labels,
                                    task='det', dataset='toy'))
        optimizer.zero_grad()
        out['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model.simple_test(img, metas, task='det')
    return results, boxes, labels


def test_tiny_model_overfits_two_images(tmp_path):
    results, boxes, labels = overfit(seed=0)
    assert _coco_eval(tmp_path, results, boxes, labels) >= 0.9
