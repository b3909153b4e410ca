"""RSCoTrOptimizerHook: gradient zeroing as released vs torch 2, clipping, loss scaling."""
import os.path as osp

import pytest
import torch
from mmcv import Config, build_from_cfg
from mmcv.runner import HOOKS
from torch import nn

from rscotr.apis.checks import ConfigError
from rscotr.apis.train import optimizer_hook_cfg
from rscotr.core.optimizer import RSCoTrOptimizerHook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 4)
        self.head_a = nn.Linear(4, 1)
        self.head_b = nn.Linear(4, 1)

    def loss(self, x, heads):
        feat = self.trunk(x)
        return sum(getattr(self, f'head_{h}')(feat).pow(2).mean() for h in heads)


def _run(grads_to_none, steps=(('a', 'b'), ('a', ), ('a', )), clip=dict(max_norm=0.1)):
    torch.manual_seed(0)
    model = TwoHeads()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    hook = RSCoTrOptimizerHook(grad_clip=clip, grads_to_none=grads_to_none)
    x = torch.randn(8, 4)
    norms, b_after_first = [], None
    for i, heads in enumerate(steps):
        norms.append(hook.step(model.loss(x, heads), optimizer, model.parameters()))
        if i == 0:
            b_after_first = model.head_b.weight.detach().clone()
    return model, b_after_first, norms


def test_release_mode_keeps_moving_a_head_that_did_not_run():
    model, b_after_first, _ = _run(grads_to_none=False)
    assert torch.equal(model.head_b.weight.grad, torch.zeros_like(model.head_b.weight))
    assert not torch.allclose(model.head_b.weight, b_after_first)


def test_torch2_mode_freezes_a_head_that_did_not_run():
    model, b_after_first, _ = _run(grads_to_none=True)
    assert model.head_b.weight.grad is None
    assert torch.equal(model.head_b.weight, b_after_first)


def test_clipping_norm_is_the_same_in_both_modes():
    _, _, release = _run(grads_to_none=False)
    _, _, torch2 = _run(grads_to_none=True)
    assert release[0] == pytest.approx(torch2[0])
    # step 2: only head a ran in both; the release's zero gradients of head b add nothing
    assert release[1] == pytest.approx(torch2[1], rel=1e-6)
    assert all(n is not None and n > 0.1 for n in release)  # the clip was active


def test_default_is_the_release_and_mmcv_hook_is_mapped():
    assert RSCoTrOptimizerHook().grads_to_none is False
    for opt_cfg in (None, dict(grad_clip=None), dict(type='OptimizerHook', grad_clip=None)):
        hook = build_from_cfg(optimizer_hook_cfg(Config(dict(optimizer_config=opt_cfg))), HOOKS)
        assert type(hook) is RSCoTrOptimizerHook and hook.grads_to_none is False
    hook = build_from_cfg(optimizer_hook_cfg(Config(dict(
        optimizer_config=dict(grad_clip=None, grads_to_none=True)))), HOOKS)
    assert hook.grads_to_none is True


def test_reference_schedule_documents_the_option():
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/schedules/adamw_300k.py'))
    assert cfg.optimizer_config.grads_to_none is False
    assert cfg.mixed_precision is None


def test_bad_settings_named_in_errors():
    with pytest.raises(TypeError, match='grads_to_none'):
        RSCoTrOptimizerHook(grads_to_none='yes')
    for settings, match in ((dict(optimizer_config=dict(grads_to_none=1)), 'grads_to_none=1'),
                            (dict(mixed_precision='fp8'), "mixed_precision='fp8'"),
                            (dict(optimizer_config=dict(mixed_precision='bf16')),
                             'top-level mixed_precision'),
                            (dict(mixed_precision='bf16', optimizer_config=dict(
                                type='GradientCumulativeOptimizerHook')),
                             'RSCoTrOptimizerHook')):
        with pytest.raises(ConfigError, match=match):
            optimizer_hook_cfg(Config(settings))


def test_fp16_loss_scaling_unscales_before_clipping():
    torch.manual_seed(0)
    model = TwoHeads()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    hook = RSCoTrOptimizerHook(grad_clip=dict(max_norm=1e9), mixed_precision='fp16')
    x = torch.randn(8, 4)
    norm = hook.step(model.loss(x, 'ab'), optimizer, model.parameters())
    assert hook.scaler is not None and hook.scaler.get_scale() > 1
    reference = TwoHeads()
    reference.load_state_dict(model.state_dict())
    reference.loss(x, 'ab').backward()
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1e9)
    assert norm == pytest.approx(float(expected), rel=1e-5)  # unscaled before the clip


def test_fp16_loss_scale_travels_with_the_checkpoint_meta():
    """The scale is kept in runner.meta['hook_msgs'] (saved in checkpoints, restored by a
    resume) and a resumed hook starts from it, not from the initial scale."""
    from types import SimpleNamespace
    torch.manual_seed(0)
    model = TwoHeads()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.randn(8, 4)
    runner = SimpleNamespace(meta=None, optimizer=optimizer, model=model,
                             log_buffer=SimpleNamespace(update=lambda *a, **k: None))
    hook = RSCoTrOptimizerHook(mixed_precision=dict(dtype='fp16', loss_scale=dict(
        init_scale=2.0 ** 10, growth_interval=1)))
    hook.before_run(runner)
    for _ in range(3):  # growth every step: 2**10 -> 2**13
        runner.outputs = dict(loss=model.loss(x, 'ab'), num_samples=8)
        hook.after_train_iter(runner)
    saved = runner.meta['hook_msgs']['loss_scaler']
    assert saved['scale'] == 2.0 ** 13
    resumed = RSCoTrOptimizerHook(mixed_precision=dict(dtype='fp16', loss_scale=dict(
        init_scale=2.0 ** 10, growth_interval=1)))
    resumed.before_run(SimpleNamespace(meta=dict(hook_msgs=dict(loss_scaler=saved))))
    resumed.step(model.loss(x, 'ab'), optimizer, model.parameters())
    assert resumed.scaler.get_scale() == 2.0 ** 14  # continued, then grew once


def test_release_mode_continues_after_loading_a_checkpoint():
    """A resumed run moves head b as the uninterrupted run does, although the
    fresh model has no gradients (its optimizer state says b was trained)."""
    full, _, _ = _run(grads_to_none=False, steps=(('a', 'b'), ('a', ), ('a', )))
    torch.manual_seed(0)
    first = TwoHeads()
    optimizer = torch.optim.AdamW(first.parameters(), lr=0.1, weight_decay=0.1)
    hook = RSCoTrOptimizerHook(grad_clip=dict(max_norm=0.1))
    x = torch.randn(8, 4)
    hook.step(first.loss(x, 'ab'), optimizer, first.parameters())
    resumed = TwoHeads()  # "load the checkpoint": weights and optimizer state
    resumed.load_state_dict(first.state_dict())
    optimizer2 = torch.optim.AdamW(resumed.parameters(), lr=0.1, weight_decay=0.1)
    optimizer2.load_state_dict(optimizer.state_dict())
    for _ in range(2):
        hook.step(resumed.loss(x, 'a'), optimizer2, resumed.parameters())
    for name, param in full.named_parameters():
        assert torch.allclose(param, dict(resumed.named_parameters())[name]), name
