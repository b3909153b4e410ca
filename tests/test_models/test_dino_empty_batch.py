"""DINO steps on batches with images without boxes: what reaches the focal loss, and its value.

On a GPU mmdet's ``FocalLoss`` calls mmcv's compiled sigmoid focal loss, whose
CUDA kernel raises on an empty tensor ("max(): Expected reduction dim to be
specified for input.numel() == 0", measured on an H200); the pure-PyTorch path
used on CPU does not. So every call of the head's focal loss is recorded here
(forward hooks; the loss itself runs unchanged) and a test fails when a call
gets an empty tensor. Each recorded value is checked against the sigmoid focal
loss written out in numpy from the recorded logits and labels (an image
without boxes: every query a negative of every class).
"""
import numpy as np
import pytest
import torch

from rscotr.models import build_model
from tests.tiny_rscotr import tiny_model_cfg

NUM_CLASSES = 20


def _det_batch(boxes_per_image, size=64):
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3), pad_shape=(size, size, 3),
                  scale_factor=1.0, flip=False) for _ in boxes_per_image]
    gt_bboxes, gt_labels = [], []
    for n in boxes_per_image:
        xy = torch.rand(n, 2) * size * 0.6
        gt_bboxes.append(torch.cat((xy, xy + 8 + torch.rand(n, 2) * size * 0.3), 1))
        gt_labels.append(torch.randint(NUM_CLASSES, (n, )))
    return dict(img=torch.randn(len(boxes_per_image), 3, size, size), img_metas=metas,
                gt_bboxes=gt_bboxes, gt_labels=gt_labels)


@pytest.fixture
def model():
    torch.manual_seed(0)
    model = build_model(tiny_model_cfg(tasks=('det', )))
    model.init_weights()
    return model.train()


@pytest.fixture
def focal_calls(model):
    """Every call of the det head's focal loss: (logits, labels, avg_factor, value)."""
    loss_cls = model.heads.det.loss_cls
    calls, pending = [], []

    def before(module, args, kwargs):
        pending.append((args[0].detach().clone(), args[1].detach().clone(),
                        float(kwargs['avg_factor'])))

    def after(module, args, kwargs, output):
        calls.append(pending.pop() + (output.detach().clone(), ))

    hooks = [loss_cls.register_forward_pre_hook(before, with_kwargs=True),
             loss_cls.register_forward_hook(after, with_kwargs=True)]
    yield calls
    for hook in hooks:
        hook.remove()


def numpy_sigmoid_focal_loss(logits, labels, avg_factor, alpha=0.25, gamma=2.0):
    """sum over queries and classes of the focal loss / avg_factor; label
    ``NUM_CLASSES`` is background (a negative of every class)."""
    x = logits.double().numpy()
    target = np.zeros_like(x)
    fg = labels.numpy() < NUM_CLASSES
    target[np.nonzero(fg)[0], labels.numpy()[fg]] = 1
    p = 1 / (1 + np.exp(-x))
    positive = alpha * (1 - p)**gamma * -np.log(p)
    negative = (1 - alpha) * p**gamma * -np.log(1 - p)
    return float(np.where(target == 1, positive, negative).sum() / avg_factor)


@pytest.mark.parametrize('boxes', [[0, 0], [2, 0], [1, 3]])
def test_no_empty_tensor_reaches_the_focal_loss(model, focal_calls, boxes):
    losses = model.forward_train(task='det', **_det_batch(boxes))
    # 1 decoder layer + encoder proposals, and the denoising queries when there are boxes
    assert len(focal_calls) == (2 if sum(boxes) == 0 else 3)
    for logits, labels, _, _ in focal_calls:
        assert logits.numel() > 0 and logits.shape == (labels.numel(), NUM_CLASSES)
    terms = {k: v for k, v in losses.items() if 'loss' in k}
    assert all(torch.isfinite(v) for v in terms.values())
    dn = {k: float(v) for k, v in terms.items() if 'dn_loss' in k}
    assert dn and all((v == 0) == (sum(boxes) == 0) for v in dn.values()), dn
    sum(terms.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize('boxes', [[0, 0], [1, 3]])
def test_focal_loss_values_against_numpy(model, focal_calls, boxes):
    loss_cls = model.heads.det.loss_cls
    assert (loss_cls.alpha, loss_cls.gamma, loss_cls.loss_weight) == (0.25, 2.0, 1.0)
    losses = model.forward_train(task='det', **_det_batch(boxes))
    for logits, labels, avg_factor, value in focal_calls:
        if sum(boxes) == 0:
            assert (labels == NUM_CLASSES).all()  # no box: every query is background
        assert float(value) == pytest.approx(
            numpy_sigmoid_focal_loss(logits, labels, avg_factor), rel=1e-5)
    # the head reports the values of those calls: decoder layer, proposals
    assert float(losses['loss_cls']) == pytest.approx(float(focal_calls[0][3]), rel=1e-6)
    assert float(losses['interm_loss_cls']) == pytest.approx(float(focal_calls[1][3]), rel=1e-6)
