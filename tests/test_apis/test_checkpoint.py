"""Tests of rscotr.apis.checkpoint: every broken checkpoint is refused with the file and
the problem named; good ones (ours, DataParallel, release) load."""
import logging
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv import Config
from torch import nn

from rscotr.apis.checkpoint import (CheckpointError, check_resume_checkpoint,
                                    check_task_pretrain_report, load_model_checkpoint,
                                    read_checkpoint)

RELEASE_DATA = Path(__file__).resolve().parents[1] / 'data' / 'release_parity'


class _Head(nn.Module):

    def __init__(self, dims: int = 4, classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(dims, classes)


class ToyModel(nn.Module):
    """The names of an RSCoTr at toy size: backbone, encoder, heads.{cls,det}."""

    def __init__(self, dims: int = 4, heads=('cls', 'det')):
        super().__init__()
        self.backbone = nn.Linear(3, dims)
        self.encoder = nn.Linear(dims, dims)
        self.heads = nn.ModuleDict({task: _Head(dims) for task in heads})


def _state(seed: int = 1, **kwargs) -> 'OrderedDict[str, torch.Tensor]':
    torch.manual_seed(seed)
    return ToyModel(**kwargs).state_dict()


def _save(path, obj) -> str:
    torch.save(obj, str(path))
    return str(path)


def _same(model: nn.Module, state) -> bool:
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items())


# ---------------------------------------------------------------------- good checkpoints
def test_loads_state_dict_and_returns_meta(tmp_path):
    state = _state()
    path = _save(tmp_path / 'ok.pth', {'state_dict': state, 'meta': {'iter': 7},
                                       'optimizer': {}})
    model = ToyModel()
    assert load_model_checkpoint(model, path) == {'iter': 7}
    assert _same(model, state)
    bare = _save(tmp_path / 'bare.pth', state)
    assert load_model_checkpoint(ToyModel(), bare) == {}


def test_module_prefix_and_numpy_meta(tmp_path):
    """DataParallel names load; mmcv's meta may hold numpy scores."""
    state = _state()
    path = _save(tmp_path / 'dp.pth', {
        'state_dict': OrderedDict(('module.' + k, v) for k, v in state.items()),
        'meta': {'hook_msgs': {'best_score': np.float64(0.75)}, 'arr': np.arange(3)}})
    model = ToyModel()
    meta = load_model_checkpoint(model, path)
    assert meta['hook_msgs']['best_score'] == 0.75 and list(meta['arr']) == [0, 1, 2]
    assert _same(model, state)


def test_weights_of_absent_heads_are_a_warning(tmp_path, caplog):
    state = _state(heads=('cls', 'det', 'seg'))
    path = _save(tmp_path / 'three_heads.pth', {'state_dict': state})
    model = ToyModel(heads=('cls', ))
    with caplog.at_level(logging.WARNING, logger='rscotr'):
        load_model_checkpoint(model, path)
    assert "head(s) ['det', 'seg']" in caplog.text and path in caplog.text
    assert _same(model, {k: v for k, v in state.items() if 'heads.cls' in k or 'heads' not in k})


# ---------------------------------------------------------------------- broken files
def _truncated(tmp_path):
    good = _save(tmp_path / 'good.pth', {'state_dict': _state()})
    data = Path(good).read_bytes()
    path = tmp_path / 'half.pth'
    path.write_bytes(data[:len(data) // 2])
    return str(path)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


class _Opaque:
    """A class in a pickle: never unpickled by the loader."""


BROKEN = {
    'missing': (lambda d: str(d / 'nope.pth'), 'no such file'),
    'folder': (lambda d: str(d), 'is a folder'),
    'empty': (lambda d: _write(d / 'empty.pth', b''), 'empty file'),
    'truncated': (_truncated, 'truncated or corrupt checkpoint'),
    'text': (lambda d: _write(d / 'notes.pth', b'weights are elsewhere\n'),
             'not a PyTorch checkpoint'),
    'garbage_pickle': (lambda d: _write(d / 'bad.pth', b'\x80\x02garbage'),
                       'unreadable or corrupt checkpoint'),
    'list': (lambda d: _save(d / 'list.pth', [1, 2, 3]), 'not a checkpoint: it holds a list'),
    'no_tensors': (lambda d: _save(d / 'model_key.pth', {'model': {'a': 1}, 'epoch': 3}),
                   "not a checkpoint: .*top-level keys: epoch, model"),
    'empty_state': (lambda d: _save(d / 'none.pth', {'state_dict': {}}), 'holds no weights'),
    'python_objects': (lambda d: _save(d / 'obj.pth', {'state_dict': _state(),
                                                       'meta': {'x': _Opaque()}}),
                       'holds Python objects .*_Opaque'),
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_files_name_file_and_problem(tmp_path, kind):
    make, message = BROKEN[kind]
    path = make(tmp_path)
    model = ToyModel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=message) as info:
        load_model_checkpoint(model, path)
    assert info.value.path == path and str(info.value).startswith(f'{path}: ')
    assert isinstance(info.value, ValueError)
    assert _same(model, before)  # nothing loaded
    copy = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries intact
    assert (copy.path, copy.problem) == (info.value.path, info.value.problem)
    assert isinstance(info.value, FileNotFoundError) == (kind == 'missing')


@pytest.mark.parametrize('kind,message', [
    ('shape', r'another model: 6 tensor\(s\) of another shape: backbone.bias: checkpoint '
              r'\(8,\) vs model \(4,\)'),
    ('missing_head', r'model tensor\(s\) missing from the checkpoint: heads.det \(2 tensors\)'),
    ('extra', r'tensor\(s\) the model has no place for: neck \(1 tensor\)'),
    ('unrelated', r'missing from the checkpoint: backbone \(2 tensors\), encoder'),
])
def test_checkpoint_of_another_model(tmp_path, kind, message):
    if kind == 'shape':
        state = _state(dims=8)
    elif kind == 'missing_head':
        state = _state(heads=('cls', ))
    elif kind == 'extra':
        state = _state()
        state['neck.weight'] = torch.zeros(2)
    else:  # e.g. an image classifier's weights
        state = {'conv1.weight': torch.zeros(8, 3, 7, 7), 'fc.weight': torch.zeros(10, 8)}
    path = _save(tmp_path / f'{kind}.pth', {'state_dict': state})
    model = ToyModel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=message) as info:
        load_model_checkpoint(model, path)
    assert str(info.value).startswith(path) and 'use the config' in str(info.value)
    assert _same(model, before)


# ---------------------------------------------------------------------- release checkpoints
def _release_names(state):
    """Our toy names -> the release's (backbone stays, encoder -> shared_encoder, ...)."""
    out = OrderedDict()
    for key, value in state.items():
        key = key.replace('encoder.', 'shared_encoder.', 1) if key.startswith('encoder.') \
            else key.replace('heads.cls.', 'cls_head.', 1)
        out[key] = value
    return out


def test_release_checkpoint_is_recognised_and_converted(tmp_path, caplog):
    state = _state(heads=('cls', ))
    path = _save(tmp_path / 'release.pth', {'state_dict': _release_names(state),
                                            'meta': {'epoch': 0}})
    model = ToyModel(heads=('cls', ))
    with caplog.at_level(logging.INFO, logger='rscotr'):
        assert load_model_checkpoint(model, path) == {'epoch': 0}
    assert _same(model, state)
    assert 'original RSCoTr release by its key names' in caplog.text and path in caplog.text


def test_release_checkpoint_of_another_model(tmp_path, caplog):
    state = _release_names(_state(heads=('cls', )))
    state['bbox_head.transformer.decoder.norm.weight'] = torch.ones(4)  # a head we lack: warning
    path = _save(tmp_path / 'release_det.pth', state)
    with caplog.at_level(logging.WARNING, logger='rscotr'):
        load_model_checkpoint(ToyModel(heads=('cls', )), path)
    assert "head(s) ['det']" in caplog.text
    state['cls_head.fc.weight'] = torch.zeros(45, 4)  # another number of classes
    path = _save(tmp_path / 'release_45.pth', state)
    with pytest.raises(CheckpointError, match=r'release checkpoint does not fit the model .*'
                       r'heads.cls.fc.weight: checkpoint \(45, 4\) vs model \(3, 4\)') as info:
        load_model_checkpoint(ToyModel(heads=('cls', )), path)
    assert str(info.value).startswith(f'{path}: release') and str(info.value).count(path) == 1


def test_tiny_release_weights_load_into_the_release_config(tmp_path):
    """The parity fixture (weights of the released code, stored as float16) loads
    into our model of the same config with every tensor."""
    from rscotr.models import build_model
    state = torch.load(RELEASE_DATA / 'release_tiny_state.pth', map_location='cpu',
                       weights_only=True)
    path = _save(tmp_path / 'release_tiny.pth', {'state_dict': state})
    model = build_model(Config.fromfile(str(RELEASE_DATA / 'rscotr_release_tiny.py')).model)
    load_model_checkpoint(model, path)
    own = model.state_dict()
    weight = 'encoder.layers.0.attentions.0.value_proj.weight'
    assert torch.equal(own[weight], state['shared_' + weight].float())


# ---------------------------------------------------------------------- resume, task pretraining
def test_resume_needs_a_training_checkpoint(tmp_path):
    weights = _save(tmp_path / 'weights.pth', {'state_dict': _state()})
    with pytest.raises(CheckpointError, match=r"cannot resume: the checkpoint has no meta "
                       r"\['iter', 'epoch'\].*load_from="):
        check_resume_checkpoint(ToyModel(), weights)
    ok = _save(tmp_path / 'iter_4.pth', {'state_dict': _state(), 'meta': dict(iter=4, epoch=0)})
    check_resume_checkpoint(ToyModel(), ok)
    with pytest.raises(CheckpointError, match='another shape'):
        check_resume_checkpoint(ToyModel(dims=8), ok)


def test_task_pretrain_report():
    assert check_task_pretrain_report('dino.pth', dict(missing=['a'], shape_mismatch=[]),
                                      10) == (9, 10)
    with pytest.raises(CheckpointError, match=r'dino.pth: .*1 tensor\(s\) of another shape'):
        check_task_pretrain_report('dino.pth', dict(missing=[], shape_mismatch=['x']), 10)
    with pytest.raises(CheckpointError, match='no tensor of the checkpoint has a place'):
        check_task_pretrain_report('r50.pth', dict(missing=list('abc'), unexpected=['fc.w'],
                                                   shape_mismatch=[]), 3)
    # a detector of another class count (COCO): its class tensors are only a warning
    coco = ['heads.det.cls_branches.0.weight: checkpoint (80, 256) vs model (20, 256)',
            'heads.det.dn_generator.label_embedding.weight: checkpoint (80, 256) vs model '
            '(20, 256)']
    assert check_task_pretrain_report('coco.pth', dict(missing=['a', 'b'],
                                                       shape_mismatch=coco), 10) == (8, 10)
    with pytest.raises(CheckpointError, match='1 tensor'):
        check_task_pretrain_report('other.pth', dict(missing=[], shape_mismatch=coco + [
            'encoder.layers.0.norms.0.weight: checkpoint (128,) vs model (256,)']), 10)


def test_read_checkpoint_wraps_a_bare_state_dict(tmp_path):
    state = _state()
    ckpt = read_checkpoint(_save(tmp_path / 'bare.pth', state))
    assert set(ckpt) == {'state_dict'} and list(ckpt['state_dict']) == list(state)


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_unreadable_file(tmp_path):
    path = _save(tmp_path / 'locked.pth', {'state_dict': _state()})
    os.chmod(path, 0)
    with pytest.raises(CheckpointError, match='cannot open'):
        read_checkpoint(path)


# ---------------------------------------------------------------------- training's weight sources
class _Recorded:
    """The model's weights when the run starts (set by :class:`_RecordStartHook`)."""
    state = None


def _record_start_hook():
    from mmcv.runner import HOOKS, Hook

    @HOOKS.register_module(force=True)
    class RecordStartHook(Hook):

        def before_run(self, runner):
            model = getattr(runner.model, 'module', runner.model)
            _Recorded.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    return dict(type='RecordStartHook')


def _tiny_run_cfg(demo_data, tmp_path, **overrides):
    from tests.cotrain_helpers import tiny_train_cfg
    overrides.setdefault('custom_hooks', [_record_start_hook()])
    return tiny_train_cfg(demo_data, str(tmp_path / 'work'), max_iters=2,
                          evaluation=dict(interval=1000), **overrides)


def test_load_from_loads_the_weights_and_refuses_another_models(demo_data, tmp_path,
                                                                monkeypatch):
    """``load_from`` goes through the checkpoint reader and the fit check: the run starts
    from exactly its weights; another model's weights are refused, naming the file and
    the keys, before any loader is built."""
    import rscotr.apis.train as train_mod
    from rscotr.apis import train_model
    from rscotr.models import build_model
    cfg = _tiny_run_cfg(demo_data, tmp_path)
    torch.manual_seed(7)
    source = build_model(cfg.model)
    source.init_weights()
    path = _save(tmp_path / 'source.pth', {'state_dict': source.state_dict()})
    cfg.load_from = path
    torch.manual_seed(0)
    train_model(build_model(cfg.model), cfg, validate=False)
    assert set(_Recorded.state) == set(source.state_dict())
    assert all(torch.equal(_Recorded.state[k], v) for k, v in source.state_dict().items())

    other_cfg = _tiny_run_cfg(demo_data, tmp_path)
    other_cfg.model.heads.cls.num_classes = 10
    other = _save(tmp_path / 'other.pth', {'state_dict': build_model(other_cfg.model)
                                           .state_dict()})
    cfg.load_from = other
    monkeypatch.setattr(train_mod, 'build_multitask_loader',
                        lambda *a, **k: pytest.fail('loaders built before the weights'))
    with pytest.raises(CheckpointError, match=r'other.pth: the checkpoint is of another model: '
                       r'.*heads.cls.fc.weight'):
        train_model(build_model(cfg.model), cfg, validate=False)


def test_resume_reads_the_checkpoint_once(demo_data, tmp_path, monkeypatch):
    """The checkpoint of a resume is read once (checked, fitted and resumed from that read),
    and the run continues from its weights, iteration and optimizer state."""
    from rscotr.apis import train_model
    from rscotr.models import build_model
    first = _tiny_run_cfg(demo_data, tmp_path, custom_hooks=[])
    first.checkpoint_config = dict(by_epoch=False, interval=2)
    train_model(build_model(first.model), first, validate=False)
    saved = read_checkpoint(str(tmp_path / 'work' / 'iter_2.pth'))

    reads = []
    real = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    cfg = _tiny_run_cfg(demo_data, tmp_path, resume_from=str(tmp_path / 'work' / 'iter_2.pth'))
    cfg.runner.max_iters = 3
    cfg.lr_config.step = [1]
    cfg.work_dir = str(tmp_path / 'resumed')
    torch.manual_seed(3)
    train_model(build_model(cfg.model), cfg, validate=False)
    assert reads == [str(tmp_path / 'work' / 'iter_2.pth')]  # by any reader
    assert all(torch.equal(_Recorded.state[k], v) for k, v in saved['state_dict'].items())
