"""Mixed precision: the config switch, bf16 training on CPU, float32 losses and attention."""
import glob
import json
import math
import os.path as osp

import pytest
import torch

from rscotr.apis import train_model
from rscotr.core.mixed_precision import (MixedPrecision, autocast, force_float32,
                                         parse_mixed_precision)
from rscotr.core.optimizer import RSCoTrOptimizerHook
from rscotr.models import build_model
from rscotr.ops import multi_scale_deformable_attn
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import tiny_model_cfg


def test_parse_mixed_precision():
    assert parse_mixed_precision(None) == MixedPrecision()
    assert parse_mixed_precision('fp32').dtype is None
    assert parse_mixed_precision('bf16').dtype is torch.bfloat16
    assert parse_mixed_precision(dict(dtype='bfloat16')).loss_scale is None
    fp16 = parse_mixed_precision('fp16')
    assert fp16.dtype is torch.float16 and fp16.loss_scale == {}
    assert parse_mixed_precision(dict(dtype='fp16', loss_scale=dict(init_scale=8.))).loss_scale \
        == dict(init_scale=8.)
    for bad, match in (('fp8', "mixed_precision='fp8'"), (dict(dtype='bf16', scale=1), 'scale'),
                       (dict(dtype='bf16', loss_scale='dynamic'), 'float16 only'),
                       (dict(dtype='fp16', loss_scale=512), 'loss_scale=512')):
        with pytest.raises(ValueError, match=match):
            parse_mixed_precision(bad)


def test_deformable_attention_runs_in_float32_under_autocast():
    gen = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[6, 6], [3, 3]])
    starts = torch.tensor([0, 36])
    value = torch.rand(2, 45, 2, 8, generator=gen)
    locations = torch.rand(2, 5, 2, 2, 2, 2, generator=gen)
    weights = torch.rand(2, 5, 2, 2, 2, generator=gen)
    expected = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
    with autocast('cpu', torch.bfloat16):
        # value as a bf16 linear layer would give it under autocast
        out = multi_scale_deformable_attn(value.bfloat16(), shapes, starts, locations, weights)
    assert out.dtype == torch.bfloat16
    # only the bf16 rounding of value (and of the output): sampling was float32
    assert torch.allclose(out.float(), expected, atol=3e-2)
    half = multi_scale_deformable_attn(value.half(), shapes, starts, locations.half(),
                                       weights.half())
    assert half.dtype == torch.float16 and torch.allclose(half.float(), expected, atol=3e-3)


def _first_linear(module):
    return next(m for m in module.modules() if isinstance(m, torch.nn.Linear))


def _batch(task, size=64, batch=2, num_classes=20):
    img = torch.randn(batch, 3, size, size)
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3), pad_shape=(size, size, 3),
                  scale_factor=1.0, flip=False) for _ in range(batch)]
    data = dict(img=img, img_metas=metas, task=task, dataset=task)
    if task == 'cls':
        data['gt_label'] = torch.randint(45, (batch, ))
    elif task == 'det':
        data['gt_bboxes'] = [torch.tensor([[4., 6., 30., 40.], [20., 20., 60., 50.]])] * batch
        data['gt_labels'] = [torch.tensor([1, 7])] * batch
    else:
        data['gt_semantic_seg'] = torch.randint(5, (batch, 1, size, size))
    return data


def test_force_float32_casts_inputs_and_turns_autocast_off():
    class Head(torch.nn.Module):
        @force_float32
        def loss(self, x, extra):
            return x.dtype, extra['y'].dtype, torch.is_autocast_enabled('cpu'), x.sum()

    x = torch.ones(3, dtype=torch.bfloat16, requires_grad=True)
    with autocast('cpu', torch.bfloat16):
        x_dtype, y_dtype, autocast_on, total = Head().loss(x, dict(y=torch.ones(2).half()))
        assert torch.is_autocast_enabled('cpu')  # on again after the call
    assert (x_dtype, y_dtype, autocast_on) == (torch.float32, torch.float32, False)
    total.backward()  # the cast is differentiable
    assert x.grad.dtype == torch.bfloat16 and torch.equal(x.grad.float(), torch.ones(3))
    assert Head.loss.forces_float32


#: The loss module each head of the tiny model calls in its ``loss``.
LOSS_MODULES = dict(cls='loss_module', det='loss_cls', seg='loss_decode')


def test_bf16_steps_of_the_encoder_model_on_cpu():
    """The tiny model with the shared encoder, DINO and segmentation heads, as
    built (nothing patched): the forward runs in bfloat16, the loss modules of
    each head get float32 inputs with autocast off (the heads declare their
    ``loss`` with force_float32), every loss is finite."""
    model = build_model(tiny_model_cfg())
    model.init_weights()
    model.train()
    loss_inputs = {}
    for task, name in LOSS_MODULES.items():
        getattr(model.heads[task], name).register_forward_pre_hook(
            lambda module, args, _task=task: loss_inputs.setdefault(_task, set()).add(
                (args[0].dtype, torch.is_autocast_enabled('cpu'))))
    seen = {}
    _first_linear(model.backbone).register_forward_hook(
        lambda m, i, o: seen.__setitem__('backbone', o.dtype))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    hook = RSCoTrOptimizerHook(grad_clip=dict(max_norm=0.1), mixed_precision='bf16')
    for task in ('cls', 'det', 'seg', 'det'):
        with autocast('cpu', torch.bfloat16):
            outputs = model.train_step(_batch(task))
        assert seen.pop('backbone') == torch.bfloat16
        assert loss_inputs.pop(task) == {(torch.float32, False)}, task
        # the sum of the head's losses: float32 only if every term was float32
        assert outputs['loss'].dtype == torch.float32, task
        assert math.isfinite(float(outputs['loss']))
        norm = hook.step(outputs['loss'], optimizer, model.parameters())
        assert norm is not None and math.isfinite(norm)


def test_bf16_switch_trains_through_train_model(demo_data, tmp_path):
    paths = demo_data
    work_dir = str(tmp_path / 'work')
    cfg = tiny_train_cfg(paths, work_dir, max_iters=3, mixed_precision='bf16',
                         log_config=dict(interval=1,
                                         hooks=[dict(type='TextLoggerHook', by_epoch=False)]))
    model = build_model(cfg.model)
    model.init_weights()
    seen = []
    _first_linear(model.backbone).register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    train_model(model, cfg, validate=False, timestamp='bf16')
    assert seen == [torch.bfloat16] * 3  # every training forward under autocast
    (log, ) = glob.glob(osp.join(work_dir, '*.log.json'))
    with open(log) as f:
        records = [json.loads(line) for line in f if '"mode": "train"' in line]
    losses = [v for r in records for k, v in r.items() if k.endswith('.loss')]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
