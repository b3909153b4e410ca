"""Tests of the Mask2Former segmentation head and its shared-encoder pixel decoder."""
import numpy as np
import pytest
import torch
from mmcv.runner import BaseModule
from mmseg.core.evaluation import eval_metrics, mean_iou

from rscotr.models import build_model
from rscotr.models.heads.base import BaseTaskHead
from rscotr.models.heads.mask2former_head import (Mask2FormerSegHead, default_seg_decoder,
                                                  default_seg_train_cfg)
from rscotr.models.layers.encoder import default_encoder_layer

EMBED = 32
NUM_CLASSES = 5
NUM_LAYERS = 3
# class colours of the synthetic images (clutter = 5 is ignored)
COLOURS = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 1.0, 0.0],
                        [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def tiny_seg_head(**kwargs) -> dict:
    """Tiny Mask2FormerSegHead config: 32 dims, 3 layers, 16 queries, 256 points."""
    cfg = dict(
        type='Mask2FormerSegHead',
        in_channels=24,
        feat_channels=EMBED,
        out_channels=EMBED,
        num_classes=NUM_CLASSES,
        ignore_index=5,
        num_queries=16,
        pixel_decoder=dict(type='SharedEncoderPixelDecoder', decoder_levels=(2, 1, 0),
                           backbone_index=0, norm_cfg=dict(type='GN', num_groups=8)),
        transformer_decoder=default_seg_decoder(embed_dims=EMBED, num_heads=4,
                                                feedforward_channels=64,
                                                num_layers=NUM_LAYERS),
        positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                 normalize=True),
        encoder_inputs=dict(
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                     normalize=True, temperature=10000),
            num_levels=4, embed_dims=EMBED),
        train_cfg=default_seg_train_cfg(num_points=256))
    cfg.update(kwargs)
    return cfg


def tiny_model(**head_kwargs) -> dict:
    return tiny_model_with(tiny_seg_head(**head_kwargs))


def tiny_model_with(seg_head: dict) -> dict:
    """A tiny RSCoTr (Swin 24, 1 encoder layer of 32 dims) with the segmentation head only."""
    return dict(
        type='RSCoTr',
        backbone=dict(type='mmdet.SwinTransformer', embed_dims=24, depths=(1, 1, 1, 1),
                      num_heads=(1, 2, 3, 4), window_size=4, drop_path_rate=0.0,
                      out_indices=(0, 1, 2, 3)),
        neck=dict(type='mmdet.ChannelMapper', in_channels=[48, 96, 192], kernel_size=1,
                  out_channels=EMBED, act_cfg=None, norm_cfg=dict(type='GN', num_groups=8),
                  num_outs=4),
        encoder=dict(type='SharedDeformableEncoder', num_layers=1,
                     transformerlayers=default_encoder_layer(embed_dims=EMBED, num_heads=4,
                                                             feedforward_channels=64)),
        heads=dict(seg=seg_head))


def build_tiny(seed: int = 0, **head_kwargs):
    torch.manual_seed(seed)
    model = build_model(tiny_model(**head_kwargs))
    model.init_weights()
    if not isinstance(model.heads, BaseModule):
        # RSCoTr keeps its heads in a torch nn.ModuleDict, which mmcv's
        # init_weights does not descend into (see test_model_init_weights_reaches_heads)
        for head in model.heads.values():
            head.init_weights()
    return model


def metas(bs, img_shape=(64, 64), pad_shape=(64, 64), ori_shape=None, **extra):
    ori_shape = ori_shape or img_shape
    return [dict(img_shape=(*img_shape, 3), pad_shape=(*pad_shape, 3),
                 ori_shape=(*ori_shape, 3), batch_input_shape=tuple(pad_shape), **extra)
            for _ in range(bs)]


def synthetic_batch(seed: int = 0, bs: int = 2, size: int = 64):
    """Images whose 16x16 blocks have class-dependent colours, plus their labels."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, NUM_CLASSES + 1, (bs, size // 16, size // 16), generator=g)
    labels = blocks.repeat_interleave(16, 1).repeat_interleave(16, 2)
    img = COLOURS[labels].permute(0, 3, 1, 2).contiguous()
    img = (img - 0.5) / 0.5 + 0.05 * torch.randn(img.shape, generator=g)
    return img, labels[:, None].long()


def seg_losses(model, img, img_metas, gt):
    return model.forward_train(img, img_metas, task='seg', gt_semantic_seg=gt)


def total(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


# ---------------------------------------------------------------------- build
def test_head_is_a_task_head_without_encoder():
    model = build_tiny()
    head = model.heads['seg']
    assert isinstance(head, Mask2FormerSegHead) and isinstance(head, BaseTaskHead)
    assert head.task == 'seg' and head.uses_encoder
    # the shared encoder lives in the model only
    assert not any('encoder.layers' in n for n, _ in head.named_parameters())
    assert not any(m is model.encoder for m in head.modules())
    assert head.encoder_input_builder.level_embed.shape == (4, EMBED)
    level_embed = head.encoder_input_builder.level_embed
    assert torch.isfinite(level_embed).all() and level_embed.std() > 0.5


def test_model_init_weights_reaches_heads():
    model = build_model(tiny_model())
    head = model.heads['seg']
    head.encoder_input_builder.level_embed.data.zero_()
    model.init_weights()
    assert head.encoder_input_builder.level_embed.std() > 0.5


def test_reference_head_builds():
    head = build_model(dict(type='Mask2FormerSegHead'))
    assert head.num_queries == 100 and head.num_classes == 5
    assert len(head.transformer_decoder.layers) == 9
    assert head.transformer_decoder.layers[0].operation_order == (
        'cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')
    assert head.transformer_decoder.layers[0].ffns[0].feedforward_channels == 2048
    assert head.num_points == 12544
    assert head.class_weight == [1.0] * 5 + [0.1]
    assert head.encoder_input_builder.positional_encoding.temperature == 10000
    n_params = sum(p.numel() for p in head.parameters())
    assert 15e6 < n_params < 20e6, n_params


# ---------------------------------------------------------------------- forward
def test_forward_shapes():
    model = build_tiny()
    img, _ = synthetic_batch(bs=2)
    img_metas = metas(2)
    feats = model.head_feats('seg', model.extract_feat(img, ['seg']), img_metas)
    mask_features, memories = model.heads['seg'].pixel_decoder(feats)
    assert mask_features.shape == (2, EMBED, 16, 16)
    assert [m.shape[-2:] for m in memories] == [(2, 2), (4, 4), (8, 8)]  # strides 32/16/8
    cls_scores, mask_preds = model.heads['seg'](feats, img_metas)
    assert len(cls_scores) == len(mask_preds) == NUM_LAYERS + 1
    for c, m in zip(cls_scores, mask_preds):
        assert c.shape == (2, 16, NUM_CLASSES + 1)
        assert m.shape == (2, 16, 16, 16)


# ---------------------------------------------------------------------- training
def test_forward_train_losses_and_gradients():
    model = build_tiny()
    img, gt = synthetic_batch(bs=2)
    gt[0, 0, :5] = 255  # padding-like ignore
    losses = seg_losses(model, img, metas(2), gt)
    expected = {'loss_cls', 'loss_mask', 'loss_dice'}
    for i in range(NUM_LAYERS):
        expected |= {f'd{i}.loss_cls', f'd{i}.loss_mask', f'd{i}.loss_dice'}
    assert set(losses) == expected
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    assert losses['loss_mask'] > 0 and losses['loss_dice'] > 0
    total(losses).backward()
    head = model.heads['seg']
    # The deformable attention starts with zero offset/weight projections, so
    # the encoder's query_pos (and this head's level embedding) only gets a
    # gradient after one step: take one, then check every part.
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    model.zero_grad()
    total(seg_losses(model, img, metas(2), gt)).backward()
    for name, module in [('backbone', model.backbone), ('neck', model.neck),
                         ('encoder', model.encoder), ('pixel_decoder', head.pixel_decoder),
                         ('transformer_decoder', head.transformer_decoder),
                         ('encoder_input_builder', head.encoder_input_builder)]:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    for p in (head.query_feat.weight, head.query_embed.weight, head.level_embed.weight,
              head.cls_embed.weight, head.mask_embed[0].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize('ignore', [5, 255])
def test_all_ignore_label_map(ignore):
    model = build_tiny()
    img, _ = synthetic_batch(bs=2)
    gt = torch.full((2, 1, 64, 64), ignore, dtype=torch.long)
    losses = seg_losses(model, img, metas(2), gt)
    for k, v in losses.items():
        assert torch.isfinite(v), k
        if 'loss_mask' in k or 'loss_dice' in k:
            assert v.item() == 0.0, k
    assert losses['loss_cls'] > 0
    total(losses).backward()
    assert model.heads['seg'].cls_embed.weight.grad.abs().sum() > 0


def test_mixed_empty_and_single_class_batch():
    model = build_tiny()
    img, _ = synthetic_batch(bs=2)
    gt = torch.full((2, 1, 64, 64), 3, dtype=torch.long)
    gt[0] = 5  # first image all clutter, second a single class
    head = model.heads['seg']
    labels, masks = head.semantic_targets(gt)
    assert labels[0].numel() == 0 and masks[0].shape == (0, 64, 64)
    assert labels[1].tolist() == [3] and masks[1].shape == (1, 64, 64) and masks[1].all()
    losses = seg_losses(model, img, metas(2), gt)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_mask'] > 0
    total(losses).backward()


def test_semantic_targets_drop_ignored_labels():
    head = build_model(tiny_seg_head())
    gt = torch.tensor([[[0, 1, 5], [255, 4, 4]]])[:, None]
    labels, masks = head.semantic_targets(gt)
    assert labels[0].tolist() == [0, 1, 4]
    assert masks[0].sum().item() == 4  # 5 and 255 pixels are in no mask
    assert masks[0][2].tolist() == [[0, 0, 0], [0, 1, 1]]


# ---------------------------------------------------------------------- test
def test_simple_test_rescale_and_mmseg_metrics():
    model = build_tiny()
    model.eval()
    # a 80x100 image resized to 51x64, padded to 64x64
    img, _ = synthetic_batch(bs=2)
    img_metas = metas(2, img_shape=(51, 64), pad_shape=(64, 64), ori_shape=(80, 100),
                      scale_factor=np.array([0.64, 0.6375, 0.64, 0.6375], dtype=np.float32),
                      flip=False)
    with torch.no_grad():
        results = model.simple_test(img, img_metas, task='seg', rescale=True)
        no_rescale = model.simple_test(img, img_metas, task='seg', rescale=False)
    assert isinstance(results, list) and len(results) == 2
    for r in results:
        assert isinstance(r, np.ndarray) and r.shape == (80, 100)
        assert np.issubdtype(r.dtype, np.integer)
        assert r.min() >= 0 and r.max() < NUM_CLASSES
    assert all(r.shape == (51, 64) for r in no_rescale)
    gts = [np.random.RandomState(i).randint(0, 6, (80, 100)) for i in range(2)]
    iou = mean_iou(results, gts, num_classes=NUM_CLASSES, ignore_index=5)
    assert set(iou) >= {'aAcc', 'IoU', 'Acc'}
    metrics = eval_metrics(results, gts, NUM_CLASSES, 5, metrics=['mIoU', 'mFscore'])
    assert metrics['IoU'].shape == (NUM_CLASSES, ) and np.isfinite(metrics['aAcc'])


def test_semantic_inference_crops_and_rescales(monkeypatch):
    head = build_model(tiny_seg_head(num_queries=2))
    # query 0 = class 1 on the top 16 rows of the padded 64x64 input, query 1 = class 2
    masks = torch.full((1, 2, 16, 16), -10.0)
    masks[0, 0, :4] = 10.0
    masks[0, 1, 4:] = 10.0
    cls = torch.full((1, 2, NUM_CLASSES + 1), -10.0)
    cls[0, 0, 1] = 10.0
    cls[0, 1, 2] = 10.0
    monkeypatch.setattr(head, 'forward', lambda feats, img_metas: ([cls], [masks]))
    # the image fills the top 32x64 of the padded input; its original size is 64x128
    img_metas = metas(1, img_shape=(32, 64), pad_shape=(64, 64), ori_shape=(64, 128))
    result = head.simple_test({}, img_metas, rescale=True)[0]
    assert result.shape == (64, 128)
    assert (result[:28] == 1).all() and (result[36:] == 2).all()
    assert head.simple_test({}, img_metas, rescale=False)[0].shape == (32, 64)
    scores = head.simple_test_scores({}, img_metas)[0]
    assert scores.shape == (NUM_CLASSES, 64, 128) and (scores >= 0).all() and (scores <= 1).all()
    np.testing.assert_array_equal(scores.argmax(0).numpy(), result)


def test_simple_test_flip_back():
    model = build_tiny()
    model.eval()
    img, _ = synthetic_batch(bs=1)
    with torch.no_grad():
        plain = model.simple_test(img, metas(1), task='seg')[0]
        back = model.simple_test(img, metas(1, flip=True, flip_direction='horizontal'),
                                 task='seg')[0]
    assert back.shape == (64, 64)
    np.testing.assert_array_equal(back, plain[:, ::-1])


# ---------------------------------------------------------------------- overfit
def test_tiny_model_overfits_two_images():
    """Two synthetic images, 80 steps: the loss halves and the mIoU reaches 0.9 (seed 0
    gets there by step 50)."""
    model = build_tiny(0)
    img, gt = synthetic_batch(seed=0, bs=2)
    img_metas = metas(2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    first = None
    for _ in range(80):
        losses = seg_losses(model, img, img_metas, gt)
        loss = total(losses)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = loss.item()
    assert last < 0.5 * first, (first, last)
    model.eval()
    with torch.no_grad():
        results = model.simple_test(img, img_metas, task='seg')
    gts = [g[0].numpy() for g in gt]
    miou = np.nanmean(mean_iou(results, gts, NUM_CLASSES, ignore_index=5)['IoU'])
    assert miou >= 0.9, (first, last, miou)
