"""A DINO step on a batch without any box, with mmdet's focal loss on the compiled path.

On a GPU mmdet's ``FocalLoss`` calls mmcv's compiled sigmoid focal loss, whose
CUDA kernel raises on an empty tensor ("max(): Expected reduction dim to be
specified for input.numel() == 0", measured on an H200); the pure-PyTorch
path used on CPU does not, so a CPU test would not see the failure. Here the
loss function of ``FocalLoss`` is replaced by one that behaves like the
compiled kernel (raises on empty input), so the test fails whenever an empty
tensor reaches the focal loss.
"""
import math

import pytest
import torch
from mmdet.models.losses import focal_loss

from rscotr.models import build_model
from tests.tiny_rscotr import tiny_model_cfg

CUDA_KERNEL_ERROR = ('max(): Expected reduction dim to be specified for input.numel() == 0. '
                     'Specify the reduction dim with the \'dim\' argument.')


@pytest.fixture
def compiled_focal_loss(monkeypatch):
    """mmdet's FocalLoss with a loss function that raises on empty input like the CUDA kernel."""
    original = focal_loss.py_sigmoid_focal_loss
    calls = []

    def like_the_cuda_kernel(pred, target, *args, **kwargs):
        calls.append(tuple(pred.shape))
        if pred.numel() == 0:
            raise RuntimeError(CUDA_KERNEL_ERROR)
        return original(pred, target, *args, **kwargs)

    monkeypatch.setattr(focal_loss, 'py_sigmoid_focal_loss', like_the_cuda_kernel)
    return calls


def _det_batch(boxes_per_image, size=64):
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3), pad_shape=(size, size, 3),
                  scale_factor=1.0, flip=False) for _ in boxes_per_image]
    gt_bboxes, gt_labels = [], []
    for n in boxes_per_image:
        xy = torch.rand(n, 2) * size * 0.6
        gt_bboxes.append(torch.cat((xy, xy + 8 + torch.rand(n, 2) * size * 0.3), 1))
        gt_labels.append(torch.randint(20, (n, )))
    return dict(img=torch.randn(len(boxes_per_image), 3, size, size), img_metas=metas,
                gt_bboxes=gt_bboxes, gt_labels=gt_labels)


@pytest.fixture
def model():
    torch.manual_seed(0)
    model = build_model(tiny_model_cfg(tasks=('det', )))
    model.init_weights()
    return model.train()


def test_the_forced_path_raises_on_empty_input(compiled_focal_loss):
    loss = focal_loss.FocalLoss(use_sigmoid=True)
    assert torch.isfinite(loss(torch.randn(3, 20), torch.tensor([0, 5, 20])))
    with pytest.raises(RuntimeError, match='numel'):
        loss(torch.randn(0, 20), torch.zeros(0, dtype=torch.long))
    assert compiled_focal_loss == [(3, 20), (0, 20)]


def test_dino_step_on_an_all_empty_batch_gives_finite_losses(model, compiled_focal_loss):
    losses = model.forward_train(task='det', **_det_batch([0, 0]))
    assert compiled_focal_loss and all(math.prod(s) > 0 for s in compiled_focal_loss)
    terms = {k: v for k, v in losses.items() if 'loss' in k}
    assert any('dn_loss' in k for k in terms)
    for name, value in terms.items():
        assert torch.isfinite(value).all(), name
    dn = [v for k, v in terms.items() if 'dn_loss' in k]
    assert all(float(v) == 0 for v in dn)  # no box: zero denoising losses
    total = sum(terms.values())
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_dino_step_with_boxes_uses_the_forced_path(model, compiled_focal_loss):
    losses = model.forward_train(task='det', **_det_batch([2, 0]))
    dn = [v for k, v in losses.items() if 'dn_loss_cls' in k]
    assert dn and all(float(v) > 0 for v in dn)
    assert len(compiled_focal_loss) >= 2 * len(dn)  # matching and denoising losses
