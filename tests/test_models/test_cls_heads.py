import numpy as np
import pytest
import torch

from rscotr.models import build_model

from ..tiny_rscotr import tiny_model_cfg


def tiny_model(cls_type='SingleLevelClsHead', num_classes=4, train_augments=None):
    cls = dict(type=cls_type, num_classes=num_classes, train_augments=train_augments)
    if cls_type == 'SingleLevelClsHead':
        cls['in_channels'] = 128
    else:
        cls.update(embed_dims=32, encoder_inputs=dict(
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=16, normalize=True),
            num_levels=4, embed_dims=32))
    return tiny_model_cfg(heads=dict(cls=cls))


def _batch(bs=2, size=64):
    img = torch.randn(bs, 3, size, size)
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3),
                  batch_input_shape=(size, size), pad_shape=(size, size, 3))] * bs
    return img, metas, torch.arange(bs) % 4


@pytest.mark.parametrize('cls_type', ['SingleLevelClsHead', 'MultiLevelClsHead'])
def test_forward_train_and_simple_test(cls_type):
    model = build_model(tiny_model(cls_type))
    model.init_weights()
    img, metas, label = _batch()
    losses = model.forward_train(img, metas, task='cls', gt_label=label)
    assert torch.isfinite(losses['loss_cls'])
    assert 'accuracy_top-1' in losses
    losses['loss_cls'].backward()
    grads = {n: p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()}
    assert grads['heads.cls.fc.weight']
    assert any(v for n, v in grads.items() if n.startswith('backbone.'))
    uses_encoder = cls_type == 'MultiLevelClsHead'
    assert any(v for n, v in grads.items() if n.startswith('encoder.')) == uses_encoder
    assert any(v for n, v in grads.items() if n.startswith('neck.')) == uses_encoder
    model.eval()
    with torch.no_grad():
        res = model.simple_test(img, metas, task='cls')
    assert len(res) == 2 and res[0].shape == (4, )
    assert np.allclose(res[0].sum(), 1.0, atol=1e-5)


def test_mixup_cutmix_soft_labels():
    aug = [dict(type='BatchMixup', alpha=0.8, num_classes=4, prob=0.5),
           dict(type='BatchCutMix', alpha=1.0, num_classes=4, prob=0.5)]
    model = build_model(tiny_model(train_augments=aug))
    img, metas, label = _batch(bs=4)
    original = img.clone()
    aug_img, gt = model.heads.cls.batch_augment(img, dict(gt_label=label))
    assert torch.equal(img, original)  # the input batch is not modified
    assert gt['gt_label'].shape == (4, 4)
    assert torch.allclose(gt['gt_label'].sum(1), torch.ones(4))
    assert not torch.equal(aug_img, img)
    losses = model.forward_train(img, metas, task='cls', gt_label=label)
    assert torch.isfinite(losses['loss_cls']) and 'accuracy_top-1' not in losses


def test_task_weight_scales_only_that_task():
    cfg = tiny_model()
    model = build_model(cfg)
    cfg['task_weights'] = dict(cls=0.25)
    weighted = build_model(cfg)
    weighted.load_state_dict(model.state_dict())
    img, metas, label = _batch()
    a = model.forward_train(img, metas, task='cls', gt_label=label)
    b = weighted.forward_train(img, metas, task='cls', gt_label=label)
    assert torch.allclose(b['loss_cls'], a['loss_cls'] * 0.25)
    assert torch.allclose(b['accuracy_top-1'], a['accuracy_top-1'])


def test_train_step_prefixes_and_errors():
    model = build_model(tiny_model())
    img, metas, label = _batch()
    out = model.train_step(dict(img=img, img_metas=metas, gt_label=label, task='cls',
                                dataset='resisc'))
    assert set(out['log_vars']) == {'cls.resisc.loss_cls', 'cls.resisc.accuracy_top-1',
                                    'cls.resisc.loss'}  # top-5 dropped: only 4 classes
    assert out['num_samples'] == 2 and out['loss'].requires_grad
    with pytest.raises(KeyError, match="no head 'det' in this model"):
        model.train_step(dict(img=img, img_metas=metas, task='det', dataset='dior'))


def test_bad_configs():
    cfg = tiny_model()
    cfg['heads']['scene-2'] = dict(type='SingleLevelClsHead', num_classes=3, in_channels=128)
    with pytest.raises(KeyError, match=r"identifiers.*scene-2"):
        build_model(cfg)
    cfg = tiny_model()  # a module that is no task head
    cfg['heads']['scene2'] = dict(type='mmdet.ChannelMapper', in_channels=[8], out_channels=8)
    with pytest.raises(ValueError, match='scene2 is a ChannelMapper, which declares no task'):
        build_model(cfg)
    cfg = tiny_model()
    cfg['heads']['seg'] = cfg['heads'].pop('cls')
    with pytest.raises(ValueError, match="which is a 'cls' head"):
        build_model(cfg)


def test_tiny_classifier_overfits():
    """Two fixed images, 30 steps: the classifier separates them perfectly (it does by
    step 10 with seed 0)."""
    torch.manual_seed(0)
    model = build_model(tiny_model(num_classes=4))
    model.init_weights()
    img, metas, label = _batch(bs=2, size=32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(30):
        loss = model.forward_train(img, metas, task='cls', gt_label=label)['loss_cls']
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = np.stack(model.simple_test(img, metas, task='cls'))
    assert (scores.argmax(1) == label.numpy()).all()
    assert loss.item() < first / 2


def _pooling_model(pool_level, mask_padding=False):
    cfg = tiny_model('MultiLevelClsHead')
    cls = cfg['heads']['cls']
    cls['pool_level'] = pool_level
    cls['encoder_inputs'].update(level_order='coarse_to_fine', mask_padding=mask_padding)
    model = build_model(cfg)
    model.init_weights()
    return model.eval()


def _head_io(model, img, metas):
    """The encoder output the cls head receives and the logits it returns."""
    seen = {}
    head = model.heads.cls
    hooks = [head.register_forward_pre_hook(lambda m, args: seen.update(enc=args[0]['encoder'])),
             head.register_forward_hook(lambda m, args, out: seen.update(logits=out))]
    with torch.no_grad():
        model.simple_test(img, metas, task='cls')
    for hook in hooks:
        hook.remove()
    return seen['enc'], seen['logits']


def _classify(head, pooled):
    return pooled @ head.fc.weight.T + head.fc.bias


def test_multilevel_head_pools_the_second_coarsest_level():
    """``pool_level=1`` (released): the mean over the 2 x 2 positions of the stride-32
    level of a 64 px input, written out from the flat memory."""
    model = _pooling_model(pool_level=1)
    img, metas, _ = _batch(bs=2, size=64)
    enc, logits = _head_io(model, img, metas)
    # levels coarse to fine: strides 64, 32, 16, 8 -> 1, 4, 16, 64 positions
    assert enc.inputs.spatial_shapes.tolist() == [[1, 1], [2, 2], [4, 4], [8, 8]]
    memory = enc.memory.double()
    pooled = memory[:, 1:5].sum(1) / 4  # positions 1..4: the 2 x 2 level
    assert not torch.allclose(pooled, memory.mean(1))  # another level would differ
    expected = _classify(model.heads.cls.double(), pooled)
    assert torch.allclose(logits.double(), expected, atol=1e-5)


def test_multilevel_head_pools_the_valid_positions_of_every_level():
    """``pool_level=None`` with padding masked: the mean over the positions of every
    level that hold the image, not the padding."""
    model = _pooling_model(pool_level=None, mask_padding=True)
    img, metas, _ = _batch(bs=2, size=64)
    metas = [dict(metas[0]), dict(metas[1], img_shape=(64, 32, 3))]  # right half padded
    enc, logits = _head_io(model, img, metas)
    memory = enc.memory.double()
    shapes = enc.inputs.spatial_shapes.tolist()
    assert shapes == [[1, 1], [2, 2], [4, 4], [8, 8]]
    # image 1 is 32 of 64 columns wide: the left half of each level (and the
    # single stride-64 position, which the image covers in part)
    valid = []
    for h, w in shapes:
        level = torch.zeros(h, w, dtype=torch.bool)
        level[:, :max(w // 2, 1)] = True
        valid.append(level.flatten())
    valid = torch.cat(valid)
    assert valid.sum() == 1 + 2 + 8 + 32
    pooled = torch.stack([memory[0].mean(0), memory[1][valid].mean(0)])
    expected = _classify(model.heads.cls.double(), pooled)
    assert torch.allclose(logits.double(), expected, atol=1e-5)
    # the padded positions count for nothing: the unmasked mean gives other logits
    assert not torch.allclose(logits[1].double(), _classify(model.heads.cls.double(),
                                                            memory[1].mean(0)), atol=1e-5)
