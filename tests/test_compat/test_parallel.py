"""The one batch-moving function and the wrappers built on it, with real collated batches."""
import pytest
import torch
from mmcv.parallel import DataContainer, is_module_wrapper
from mmcv.parallel.scatter_gather import scatter_kwargs

from rscotr.datasets import build_multitask_loader
from rscotr.models import build_model
from rscotr.compat import parallel
from rscotr.compat.parallel import RSCoTrDataParallel, batch_to_device, resolve_device, wrap_model
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import tiny_model_cfg


@pytest.fixture(scope='module')
def batches(demo_data, tmp_path_factory):
    """One collated training batch of each task, as the co-training loader gives them."""
    root = tmp_path_factory.mktemp('parallel')
    cfg = tiny_train_cfg(demo_data, str(root / 'work'))
    loader = build_multitask_loader(cfg.data.train, dict(type='round_robin'), dist=False,
                                    seed=0)
    out = {}
    for _ in range(3):
        batch = next(loader)
        out[batch['task']] = batch
    return out


def _same(a, b):
    """Structure and values equal (tensors compared by value, dtype and device)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.device == b.device
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, 'shape'):  # numpy arrays in metas
        return (a == b).all()
    return a == b


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_cpu_batch_equals_mmcv_cpu_scatter(batches, task):
    batch = batches[task]
    assert any(isinstance(v, DataContainer) for v in batch.values())
    moved = batch_to_device(batch, 'cpu')
    (expected, ), _ = scatter_kwargs((batch, ), {}, [-1])
    assert _same(moved, expected[0] if isinstance(expected, tuple) else expected)
    assert not any(isinstance(v, DataContainer) for v in moved.values())
    assert moved['task'] == task and isinstance(moved['img'], torch.Tensor)


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_batch_moves_to_another_device_and_metas_stay(batches, task):
    # the meta device stands in for a GPU: the same function, another device
    moved = batch_to_device(batches[task], torch.device('meta'))
    assert moved['img'].device.type == 'meta'
    assert moved['img'].shape == batch_to_device(batches[task], 'cpu')['img'].shape
    gt_keys = {'cls': ['gt_label'], 'det': ['gt_bboxes', 'gt_labels'],
               'seg': ['gt_semantic_seg']}[task]
    for key in gt_keys:
        tensors = list(_tensors(moved[key]))
        assert tensors and all(t.device.type == 'meta' for t in tensors), key
    if task == 'det':
        assert isinstance(moved['gt_bboxes'], list)
        assert len(moved['gt_bboxes']) == len(moved['img_metas'])
    # img_metas were a cpu_only container: plain dicts, untouched
    assert isinstance(moved['img_metas'], list) and isinstance(moved['img_metas'][0], dict)
    assert moved['img_metas'][0] is batches[task]['img_metas'].data[0][0]


def test_cpu_only_tensors_stay_and_nesting_is_kept():
    meta_tensor = torch.ones(2)
    batch = dict(a=DataContainer([[meta_tensor]], cpu_only=True),
                 b=[DataContainer([torch.zeros(1, 2)], stack=True)],
                 c=(torch.zeros(1), 'text', 3), d=None)
    moved = batch_to_device(batch, 'meta')
    assert moved['a'][0] is meta_tensor
    assert moved['b'][0].device.type == 'meta'
    assert moved['c'][0].device.type == 'meta' and moved['c'][1:] == ('text', 3)
    assert moved['d'] is None


def test_several_chunks_are_an_error():
    batch = dict(img=DataContainer([torch.zeros(1, 3), torch.zeros(1, 3)], stack=True))
    with pytest.raises(ValueError, match='samples_per_gpu'):
        batch_to_device(batch, 'cpu')


def test_unsupported_device_named():
    with pytest.raises(ValueError, match="'xla'"):
        resolve_device('xla')
    assert resolve_device('cpu') == torch.device('cpu')


def test_single_device_wrapper_uses_the_one_function(batches, monkeypatch):
    """(The DDP wrapper, which moves with the same function, runs in
    tests/test_apis/test_train.py with two CPU processes.)"""
    model = build_model(tiny_model_cfg(stand_ins=True))
    model.init_weights()
    wrapped = wrap_model(model, 'cpu')
    assert isinstance(wrapped, RSCoTrDataParallel) and is_module_wrapper(wrapped)
    calls = []
    real = parallel.batch_to_device

    def spy(data, device, **kwargs):
        calls.append(torch.device(device))
        return real(data, device, **kwargs)

    monkeypatch.setattr(parallel, 'batch_to_device', spy)
    for task, batch in batches.items():
        out = wrapped.train_step(batch, None)
        assert out['task'] == task and torch.isfinite(out['loss'])
    assert calls and set(calls) == {torch.device('cpu')}
