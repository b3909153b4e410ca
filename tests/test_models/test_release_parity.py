"""Parity with the released RSCoTr: its weights load into our model and give its outputs.

The fixtures in ``tests/data/release_parity/`` were produced by running the
original release's model code at tiny sizes on this project's stack (see the
README there). Our model is built from ``rscotr_release_tiny.py`` (the same
model in our config language), loaded through the release converter, and must
reproduce the release's outputs.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv import Config

from rscotr.models import build_model
from rscotr.models.multitask.release import (ReleaseCheckpointError, convert_release_state_dict,
                                             is_release_state_dict)
from tests.tiny_rscotr import tool_main

DATA = Path(__file__).resolve().parents[1] / 'data' / 'release_parity'
ROOT = Path(__file__).resolve().parents[2]


def _metas(shapes):
    return [dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(128, 128, 3),
                 batch_input_shape=(128, 128), scale_factor=np.ones(4, dtype=np.float32),
                 flip=False) for h, w in shapes]


@pytest.fixture(scope='module')
def io():
    return torch.load(DATA / 'release_tiny_io.pth', map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def release_state():
    state = torch.load(DATA / 'release_tiny_state.pth', map_location='cpu', weights_only=False)
    # stored as float16; the fixture outputs were computed with these values in float32
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


@pytest.fixture(scope='module')
def model(release_state):
    torch.manual_seed(0)
    model = build_model(Config.fromfile(str(DATA / 'rscotr_release_tiny.py')).model)
    model.init_weights()
    mapped = convert_release_state_dict(release_state, model.state_dict(), source='tiny')
    result = model.load_state_dict(mapped, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model.eval()


def test_fixture_is_a_release_state_dict(release_state):
    assert is_release_state_dict(release_state)
    names = [line.split(' ')[0] for line in
             (DATA / 'release_tiny_keys.txt').read_text().splitlines() if line.strip()]
    assert sorted(names) == sorted(release_state)


def test_cls_scores(model, io):
    with torch.no_grad():
        scores = model.simple_test(io['img_cls'], [{} for _ in range(2)], task='cls')
    np.testing.assert_allclose(np.stack(scores), io['cls_scores'].numpy(), atol=1e-5, rtol=0)


def test_seg_logits_and_labels(model, io):
    metas = _metas([(128, 128)])
    with torch.no_grad():
        feats = model.head_feats('seg', model.extract_feat(io['img'][:1], ['seg']), metas)
        logits = model.heads['seg'].simple_test_logits(feats, metas)
        labels = model.simple_test(io['img'][:1], _metas([(128, 128)]), task='seg')
    np.testing.assert_allclose(logits[0].numpy(), io['seg_logit_single'][0].numpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_array_equal(labels[0], io['seg_single'][0].numpy())


def _assert_same_detections(ours, theirs, atol_box=1e-3, atol_score=1e-5):
    assert len(ours) == len(theirs) == 20
    for cls, (a, b) in enumerate(zip(ours, theirs)):
        b = b.numpy() if torch.is_tensor(b) else np.asarray(b)
        assert a.shape == b.shape, f'class {cls}: {a.shape[0]} boxes, release {b.shape[0]}'
        # same set of boxes: order each by (score, coordinates)
        order_a = np.lexsort(np.round(a[:, ::-1], 3).T)
        order_b = np.lexsort(np.round(b[:, ::-1], 3).T)
        np.testing.assert_allclose(a[order_a, :4], b[order_b, :4], atol=atol_box, rtol=0,
                                   err_msg=f'class {cls} boxes')
        np.testing.assert_allclose(a[order_a, 4], b[order_b, 4], atol=atol_score, rtol=0,
                                   err_msg=f'class {cls} scores')


def test_det_single_image(model, io):
    with torch.no_grad():
        results = model.simple_test(io['img'][:1], _metas([(128, 128)]), task='det')
    _assert_same_detections(results[0], io['det_single'][0])


def test_det_padded_batch(model, io):
    with torch.no_grad():
        results = model.simple_test(io['img'], _metas([(128, 128), (96, 112)]), task='det')
    for ours, theirs in zip(results, io['det_batch']):
        _assert_same_detections(ours, theirs)


def test_train_losses(model, io):
    model.train()
    try:
        with torch.no_grad():
            cls = model.forward_train(io['img_cls'], [{} for _ in range(2)], task='cls',
                                      gt_label=io['cls_label'])
            metas = _metas([(128, 128)])
            feats = model.head_feats('seg', model.extract_feat(io['img'][:1], ['seg']), metas)
            seg = model.heads['seg'].forward_train(feats, metas, gt_semantic_seg=io['seg_gt'])
            weighted = model.forward_train(io['img'][:1], _metas([(128, 128)]), task='seg',
                                           gt_semantic_seg=io['seg_gt'])
    finally:
        model.eval()
    assert abs(cls['loss_cls'].item() - io['loss_cls']['loss'].item()) < 1e-5
    assert abs(seg['loss_ce'].item() - io['loss_seg']['seg.loss_ce'].item()) < 1e-5
    assert abs(seg['acc_seg'].item() - io['loss_seg']['seg.acc_seg'].item()) < 1e-4
    # the task weight (0.1) scales the loss, not the accuracy
    assert abs(weighted['loss_ce'].item() - 0.1 * seg['loss_ce'].item()) < 1e-6
    assert abs(weighted['acc_seg'].item() - seg['acc_seg'].item()) < 1e-6


def _random_state(keys_file: Path):
    state = {}
    for line in keys_file.read_text().splitlines():
        name, shape = line.split(' ', 1)
        shape = tuple(int(x) for x in shape.strip('()').split(',') if x.strip())
        state[name] = torch.randn(shape) if 'index' not in name else torch.zeros(
            shape, dtype=torch.long)
    return state


@pytest.mark.parametrize('config, keys', [
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py', 'release_reference_keys.txt'),
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py',
     'release_multilevel_cls_keys.txt'),
])
def test_reference_names_and_shapes_load(config, keys, reference_model):
    if config.endswith('/rscotr_swin-t_300k_resisc-dior-potsdam.py'):
        model = reference_model()
    else:
        cfg = Config.fromfile(str(ROOT / config))
        cfg.model.backbone.init_cfg = None
        model = build_model(cfg.model)
    state = _random_state(DATA / keys)
    mapped = convert_release_state_dict(state, model.state_dict(), source=keys)
    result = model.load_state_dict(mapped, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(mapped) == len(state)


def test_misfit_checkpoint_is_refused_with_names(release_state):
    cfg = Config.fromfile(str(DATA / 'rscotr_release_tiny.py'))
    own = build_model(cfg.model).state_dict()
    state = dict(release_state)
    state['bbox_head.transformer.query_embed.weight'] = torch.zeros(31, 256)
    state['seg_head.something_new.weight'] = torch.zeros(3)
    del state['cls_head.fc.bias']
    with pytest.raises(ReleaseCheckpointError) as err:
        convert_release_state_dict(state, own, source='bad.pth')
    text = str(err.value)
    assert 'bad.pth' in text
    assert 'seg_head.something_new.weight' in text
    assert 'heads.cls.fc.bias' in text
    assert 'heads.det.query_embedding.weight' in text and '(31, 256)' in text


def test_converter_tool(tmp_path, release_state):
    src = tmp_path / 'release.pth'
    torch.save(dict(state_dict={'module.' + k: v for k, v in release_state.items()},
                    meta=dict(note='kept')), src)
    out = tmp_path / 'ours.pth'
    main = tool_main('tools/model_converters/rscotr_release.py')  # in process: the result
    assert main([str(src), str(out), '--config', str(DATA / 'rscotr_release_tiny.py')]) == 0
    ckpt = torch.load(out, map_location='cpu', weights_only=False)
    assert ckpt['meta']['note'] == 'kept'
    assert 'heads.seg.pixel_decoder.mask_feature.weight' in ckpt['state_dict']
    assert not is_release_state_dict(ckpt['state_dict'])

    bad = tmp_path / 'bad.pth'
    state = dict(release_state)
    state['cls_head.fc.weight'] = torch.zeros(10, 256)
    torch.save(state, bad)
    # in a process: the exit status and stderr as a shell sees them
    run = subprocess.run([sys.executable, str(ROOT / 'tools/model_converters/rscotr_release.py'),
                          str(bad), str(tmp_path / 'x.pth'), '--config',
                          str(DATA / 'rscotr_release_tiny.py')], capture_output=True, text=True)
    assert run.returncode == 2
    assert 'heads.cls.fc.weight' in run.stderr and 'Traceback' not in run.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_init_model_takes_a_release_checkpoint_directly(tmp_path, release_state, io, caplog):
    from rscotr.apis import init_model
    path = tmp_path / 'release.pth'
    torch.save(dict(state_dict=release_state, meta=dict(epoch=1)), path)
    model = init_model(str(DATA / 'rscotr_release_tiny.py'), str(path))
    assert 'original RSCoTr release' in caplog.text
    with torch.no_grad():
        scores = model.simple_test(io['img_cls'], [{} for _ in range(2)], task='cls')
    np.testing.assert_allclose(np.stack(scores), io['cls_scores'].numpy(), atol=1e-5, rtol=0)
