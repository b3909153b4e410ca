"""The head contract of BaseTaskHead: float32 losses, simple_test_scores, uses_neck."""
import inspect

import numpy as np
import pytest
import torch

from rscotr.models import MODELS, build_model
from rscotr.models.heads import BaseTaskHead, SingleLevelClsHead
from tests.tiny_rscotr import BACKBONE_DIMS, EMBED, tiny_model_cfg


@MODELS.register_module()
class NeckPooledClsHead(SingleLevelClsHead):
    """A head that reads the neck levels itself, without the shared encoder."""

    uses_neck = True

    def forward(self, feats, img_metas=None):
        return self.fc(feats['neck'][-1].mean(dim=(2, 3)))


def _metas(size, bs=1):
    return [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3), pad_shape=(size, size, 3),
                 scale_factor=np.ones(4, np.float32), flip=False) for _ in range(bs)]


def _neck_runs(model):
    calls = []
    model.neck.register_forward_hook(lambda module, args, out: calls.append(1))
    return calls


def test_every_registered_head_declares_its_loss_float32():
    heads = [cls for cls in MODELS.module_dict.values()
             if isinstance(cls, type) and issubclass(cls, BaseTaskHead)
             and not inspect.isabstract(cls) and cls.__module__.startswith('rscotr.')]
    names = {cls.__name__ for cls in heads}
    assert {'SingleLevelClsHead', 'MultiLevelClsHead', 'DINOHead', 'Mask2FormerSegHead',
            'PerPixelMask2FormerHead'} <= names
    undeclared = [cls.__name__ for cls in heads if not getattr(cls.loss, 'forces_float32', False)]
    assert undeclared == []


def test_simple_test_scores_default_and_seg_override():
    """cls and det keep the default (their results are the scores); the seg head's
    scores are per-class maps whose argmax is its label map."""
    model = build_model(tiny_model_cfg()).eval()
    assert 'simple_test_scores' not in vars(type(model.heads['cls']))
    assert 'simple_test_scores' not in vars(type(model.heads['det']))
    img = torch.randn(1, 3, 64, 64)
    tasks = ['cls', 'det', 'seg']
    with torch.no_grad():
        results = model.simple_test_tasks(img, _metas(64), tasks)
        scores = model.simple_test_tasks(img, _metas(64), tasks, scores=True)
    np.testing.assert_array_equal(scores['cls'][0], results['cls'][0])
    assert abs(float(scores['cls'][0].sum()) - 1) < 1e-5
    for got, expected in zip(scores['det'][0], results['det'][0]):
        np.testing.assert_array_equal(got, expected)
    seg = model.heads['seg']
    seg_scores = scores['seg'][0]
    assert seg.has_no_class_score  # 8 queries, 5 classes: one "no class" channel
    assert tuple(seg_scores.shape) == (seg.num_classes + 1, 64, 64)
    # a label >= num_classes (a query that is no class) is the extra channel
    labels = np.minimum(results['seg'][0], seg.num_classes)
    np.testing.assert_array_equal(seg_scores.argmax(0).numpy(), labels)


def test_the_neck_runs_only_for_heads_that_use_it():
    model = build_model(tiny_model_cfg()).eval()
    assert not model.heads['cls'].uses_neck
    assert model.heads['det'].uses_neck and model.heads['seg'].uses_neck  # via the encoder
    calls = _neck_runs(model)
    with torch.no_grad():
        model.simple_test(torch.randn(1, 3, 64, 64), _metas(64), 'cls')
        assert calls == []
        model.simple_test(torch.randn(1, 3, 64, 64), _metas(64), 'seg')
    assert calls == [1]


def test_a_head_declaring_uses_neck_gets_the_neck_levels():
    cfg = tiny_model_cfg(('cls', ))
    cfg['heads'] = dict(cls=dict(type='NeckPooledClsHead', num_classes=3, in_channels=EMBED))
    model = build_model(cfg).eval()
    calls = _neck_runs(model)
    with torch.no_grad():
        (scores, ) = model.simple_test(torch.randn(1, 3, 64, 64), _metas(64), 'cls')
    assert calls == [1] and scores.shape == (3, )
    with pytest.raises(ValueError, match='the cls head uses the neck: configure model.neck'):
        build_model(dict(cfg, neck=None, encoder=None))
    # a head that does not use the neck needs none
    build_model(dict(cfg, neck=None, encoder=None,
                     heads=dict(cls=dict(type='SingleLevelClsHead', num_classes=3,
                                         in_channels=8 * BACKBONE_DIMS))))
