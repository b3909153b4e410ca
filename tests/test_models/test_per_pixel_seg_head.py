"""Tests of the released segmentation head (PerPixelMask2FormerHead) on the shared encoder."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.core.evaluation import mean_iou

from rscotr.models import build_model
from rscotr.models.heads.mask2former_head import MaskedAttentionSegHead

from ..tiny_rscotr import tiny_heads
from .test_mask2former_head import metas, synthetic_batch, tiny_model_with

EMBED = 32
NUM_CLASSES = 6  # as released: clutter (5) is a class


def tiny_head(**kwargs) -> dict:
    """The tiny released seg head of the tool tests (32 dims, 3 layers, 8 queries),
    with the released protocol's 6 classes."""
    cfg = copy.deepcopy(tiny_heads(('seg', ))['seg'])
    cfg.update(num_classes=NUM_CLASSES, **kwargs)
    return cfg


def build_tiny(seed: int = 0, **head_kwargs):
    torch.manual_seed(seed)
    model = build_model(tiny_model_with(tiny_head(**head_kwargs)))
    model.init_weights()
    return model


def feats_of(model, img, img_metas):
    return model.head_feats('seg', model.extract_feat(img, ['seg']), img_metas)


def test_reference_head_as_released():
    head = build_model(dict(type='PerPixelMask2FormerHead'))
    assert isinstance(head, MaskedAttentionSegHead) and head.task == 'seg'
    assert head.num_queries == 100 and head.scheme == 2 and head.num_transformer_feat_level == 4
    assert len(head.transformer_decoder.layers) == 9
    assert head.transformer_decoder.layers[0].operation_order == (
        'cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')
    builder = head.encoder_input_builder
    assert builder.level_order == 'coarse_to_fine' and not builder.mask_padding
    names = {n for n, _ in head.named_parameters()}
    # no class branch (scheme 2), no FPN convs: only the 1x1 mask-feature conv
    assert not any(n.startswith('cls_embed') for n in names)
    assert {n for n in names if n.startswith('pixel_decoder.')} == {
        'pixel_decoder.mask_feature.weight', 'pixel_decoder.mask_feature.bias'}


def test_init_as_released():
    torch.manual_seed(0)
    head = build_model(dict(type='PerPixelMask2FormerHead'))
    head.init_weights()
    assert torch.all(head.pixel_decoder.mask_feature.bias == 0)
    # caffe2-xavier (uniform, gain 1, fan_in): bound sqrt(3 / fan_in)
    bound = (3 / 256) ** 0.5
    assert head.pixel_decoder.mask_feature.weight.abs().max() <= bound
    assert 0.8 < head.encoder_input_builder.level_embed.std().item() < 1.2
    # xavier-normal decoder matrices: std sqrt(2 / (fan_in + fan_out))
    w = head.transformer_decoder.layers[0].ffns[0].layers[0][0].weight  # (2048, 256)
    assert abs(w.std().item() - (2 / (2048 + 256)) ** 0.5) < 2e-3


@pytest.mark.parametrize('scheme, channels', [(2, 8), (1, NUM_CLASSES)])
def test_forward_shapes(scheme, channels):
    model = build_tiny(scheme=scheme)
    img, _ = synthetic_batch(bs=2)
    img_metas = metas(2)
    feats = feats_of(model, img, img_metas)
    head = model.heads['seg']
    mask_features, memories = head.pixel_decoder(feats)
    assert mask_features.shape == (2, EMBED, 8, 8)  # stride 8: the finest encoder level
    assert [tuple(m.shape[-2:]) for m in memories] == [(1, 1), (2, 2), (4, 4), (8, 8)]
    cls_scores, mask_preds = head(feats, img_metas)
    assert len(mask_preds) == 3 + 1
    assert all(m.shape == (2, 8, 8, 8) for m in mask_preds)
    if scheme == 2:
        assert all(c is None for c in cls_scores)
    else:
        assert all(c.shape == (2, 8, NUM_CLASSES) for c in cls_scores)
    assert head.seg_logits(feats, img_metas).shape == (2, channels, 8, 8)


def test_scheme1_logits_are_mask_weighted_class_logits(monkeypatch):
    head = build_model(tiny_head(scheme=1, num_queries=2))
    cls = torch.tensor([[[1.0, 0, 0, 0, 0, 2.0], [0, 0, 3.0, 0, 0, 0]]])  # (1, 2, 6)
    masks = torch.stack([torch.full((4, 4), 0.5), torch.full((4, 4), -1.0)])[None]
    monkeypatch.setattr(head, 'forward', lambda feats, img_metas: ([cls], [masks]))
    logits = head.seg_logits({}, [{}])
    expected = torch.tensor([0.5, 0, -3.0, 0, 0, 1.0])[None, :, None, None].expand(1, 6, 4, 4)
    torch.testing.assert_close(logits, expected)


def test_scheme2_needs_a_query_per_class():
    with pytest.raises(ValueError, match='num_queries'):
        build_model(tiny_head(num_queries=4))
    with pytest.raises(ValueError, match='scheme'):
        build_model(tiny_head(scheme=3))


def test_loss_is_the_released_pixel_cross_entropy():
    """Last prediction resized to the labels (bilinear), one softmax cross-entropy that
    ignores 255 and, as released (mmseg 0.30's default), averages over every pixel."""
    model = build_tiny()
    img, gt = synthetic_batch(bs=2)
    gt[0, 0, :10] = 255
    img_metas = metas(2)
    feats = feats_of(model, img, img_metas)
    head = model.heads['seg']
    losses = head.forward_train(feats, img_metas, gt_semantic_seg=gt)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    logits = F.interpolate(head.seg_logits(feats, img_metas), size=(64, 64), mode='bilinear',
                           align_corners=False)
    log_p = logits.log_softmax(1)
    label = gt[:, 0]
    labelled = label != 255
    picked = log_p.gather(1, label.clamp(max=7)[:, None])[:, 0]
    expected = -(picked * labelled).sum() / label.numel()
    torch.testing.assert_close(losses['loss_ce'], expected, rtol=1e-5, atol=1e-6)
    acc = (logits.argmax(1) == label)[labelled].float().mean() * 100
    assert abs(losses['acc_seg'].item() - acc.item()) < 1e-3
    losses['loss_ce'].backward()
    assert model.encoder.layers[0].attentions[0].value_proj.weight.grad.abs().sum() > 0


def test_inference_restores_crop_size_and_flip(monkeypatch):
    head = build_model(tiny_head())
    # channel 1 wins on the top quarter of the padded 64x64 input (16x16 logits), 2 below
    logits = torch.full((1, 8, 16, 16), -5.0)
    logits[0, 1, :4] = 5.0
    logits[0, 2, 4:] = 5.0
    monkeypatch.setattr(head, 'seg_logits', lambda feats, img_metas: logits)
    img_metas = metas(1, img_shape=(32, 64), pad_shape=(64, 64), ori_shape=(64, 128))
    labels = head.simple_test({}, img_metas, rescale=True)[0]
    assert labels.shape == (64, 128)
    assert (labels[:28] == 1).all() and (labels[36:] == 2).all()
    assert head.simple_test({}, img_metas, rescale=False)[0].shape == (32, 64)
    scores = head.simple_test_scores({}, img_metas)[0]
    # the 6 class probabilities, then the best of the 2 channels that are no class
    assert head.has_no_class_score and scores.shape == (NUM_CLASSES + 1, 64, 128)
    np.testing.assert_array_equal(scores.argmax(0).numpy(), labels)
    full = F.softmax(head.simple_test_logits({}, img_metas)[0], dim=0)
    torch.testing.assert_close(scores[:NUM_CLASSES], full[:NUM_CLASSES])
    torch.testing.assert_close(scores[NUM_CLASSES], full[NUM_CLASSES:].max(0).values)
    logits[0, 1, :, :8] = -5.0  # left half of the first rows -> another channel
    logits[0, 3, :4, :8] = 5.0
    flipped = head.simple_test({}, metas(1, flip=True, flip_direction='horizontal'))[0]
    plain = head.simple_test({}, metas(1))[0]
    np.testing.assert_array_equal(flipped, plain[:, ::-1])


def test_tiny_model_overfits_two_images():
    """Two synthetic images, 60 steps: the loss halves and the mIoU reaches 0.9 (seed 0
    gets there by step 30-40)."""
    model = build_tiny(0)
    img, gt = synthetic_batch(seed=0, bs=2)
    img_metas = metas(2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    first = None
    for _ in range(60):
        loss = model.forward_train(img, img_metas, task='seg', gt_semantic_seg=gt)['loss_ce']
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    model.eval()
    with torch.no_grad():
        results = model.simple_test(img, img_metas, task='seg')
    miou = np.nanmean(mean_iou(results, [g[0].numpy() for g in gt], NUM_CLASSES,
                               ignore_index=255)['IoU'])
    assert miou >= 0.9, miou
