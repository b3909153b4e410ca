"""The order in which a head's class names are found (``resolve_class_names``, used by
``init_model``), and that the names agree with those of the dataset the test path builds.

Order: the checkpoint's ``meta['CLASSES']`` (by head, then by dataset name), the
task's first test dataset config (its ``classes``: a list or a file of one name per
line; else the classes its options give, e.g. the Potsdam protocol; else its type's
classes), the paper's dataset of the task; a list of another length than the head's
``num_classes`` is skipped with a warning; last, ``class_0, class_1, ...``.

The expected names are written out here (the published class lists of NWPU-RESISC45,
DIOR and ISPRS Potsdam, and the test's own lists), not read from the code under test.
"""
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
from mmcv import Config

from rscotr.apis.inference import resolve_class_names
from rscotr.datasets import build_task_loaders

#: ISPRS Potsdam, in the label order of the prepared data, and its colours (RGB).
POTSDAM = ('impervious_surface', 'building', 'low_vegetation', 'tree', 'car', 'clutter')
POTSDAM_RGB = [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0],
               [255, 0, 0]]


def _model(**num_classes):
    """Just what the resolution reads of a model: its heads' tasks and class counts."""
    return SimpleNamespace(heads={task: SimpleNamespace(task=task, num_classes=n)
                                  for task, n in num_classes.items()})


def _cfg(**datasets):
    """``data.test`` with one entry per ``name=(task, dataset config)``."""
    return Config(dict(data=dict(test={name: dict(task=task, dataset=dataset)
                                       for name, (task, dataset) in datasets.items()})))


def _resisc(**kwargs):
    return ('cls', dict(type='RESISC45Dataset', data_prefix='/nowhere', **kwargs))


def _names(cfg, model, meta=None):
    return resolve_class_names(cfg, model, meta)[0]


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger='rscotr')
    return caplog


def test_checkpoint_meta_first_by_head_then_by_dataset(warnings):
    cfg = _cfg(resisc=_resisc(classes=['x', 'y', 'z']))
    model = _model(cls=3)
    assert _names(cfg, model) == {'cls': ('x', 'y', 'z')}
    by_dataset = {'CLASSES': {'resisc': ['d0', 'd1', 'd2']}}
    assert _names(cfg, model, by_dataset) == {'cls': ('d0', 'd1', 'd2')}
    both = {'CLASSES': {'resisc': ['d0', 'd1', 'd2'], 'cls': ['h0', 'h1', 'h2']}}
    assert _names(cfg, model, both) == {'cls': ('h0', 'h1', 'h2')}
    assert _names(cfg, model, {'CLASSES': ['not', 'by', 'task']}) == {'cls': ('x', 'y', 'z')}
    assert not warnings.records


def test_a_list_of_another_length_is_skipped_with_a_warning(warnings):
    cfg = _cfg(resisc=_resisc(classes=['x', 'y', 'z']))
    model = _model(cls=3)
    assert _names(cfg, model, {'CLASSES': {'cls': ['a', 'b']}}) == {'cls': ('x', 'y', 'z')}
    (record, ) = warnings.records
    assert record.levelno == logging.WARNING
    assert 'checkpoint meta has 2 classes' in record.getMessage()
    assert 'predicts 3' in record.getMessage()
    warnings.clear()
    # neither the meta nor the dataset fits, nor RESISC45's 45: numbered names
    assert _names(cfg, _model(cls=4), {'CLASSES': {'cls': ['a', 'b']}}) == {
        'cls': ('class_0', 'class_1', 'class_2', 'class_3')}
    messages = [r.getMessage() for r in warnings.records]
    assert len(messages) == 2
    assert 'checkpoint meta has 2 classes' in messages[0]
    assert "dataset 'resisc' has 3 classes" in messages[1]


def test_dataset_classes_from_a_list_a_file_and_inside_a_wrapper(tmp_path):
    names_file = tmp_path / 'classes.txt'
    names_file.write_text('first\nsecond\n')
    model = _model(cls=2)
    assert _names(_cfg(resisc=_resisc(classes=['p', 'q'])), model) == {'cls': ('p', 'q')}
    assert _names(_cfg(resisc=_resisc(classes=str(names_file))), model) == {
        'cls': ('first', 'second')}
    wrapped = ('cls', dict(type='RepeatDataset', times=2,
                           dataset=_resisc(classes=str(names_file))[1]))
    assert _names(_cfg(resisc=wrapped), model) == {'cls': ('first', 'second')}


def test_dataset_type_classes_and_options():
    resisc = _names(_cfg(resisc=_resisc()), _model(cls=45))['cls']
    assert len(resisc) == 45 and len(set(resisc)) == 45
    assert resisc[:3] == ('airplane', 'airport', 'baseball_diamond')
    assert resisc[-3:] == ('terrace', 'thermal_power_station', 'wetland')
    dior = _names(_cfg(dior=('det', dict(type='DIORDataset', ann_file='x.json'))),
                  _model(det=20))['det']
    assert len(dior) == 20
    assert dior[:3] == ('airplane', 'airport', 'baseballfield')
    assert dior[-2:] == ('vehicle', 'windmill')
    for protocol, num in (('5class', 5), ('release', 6)):
        cfg = _cfg(potsdam=('seg', dict(type='PotsdamIndexDataset', protocol=protocol,
                                        data_root='/nowhere')))
        names, palettes = resolve_class_names(cfg, _model(seg=num))
        assert names == {'seg': POTSDAM[:num]}
        assert [list(c) for c in palettes['seg']] == POTSDAM_RGB[:num]


def test_without_a_test_dataset_the_papers_classes_by_count(warnings):
    cfg = Config(dict(data=dict()))
    names, palettes = resolve_class_names(cfg, _model(cls=45, det=20, seg=6))
    assert names['cls'][0] == 'airplane' and names['cls'][-1] == 'wetland'
    assert names['det'][0] == 'airplane' and names['det'][-1] == 'windmill'
    assert names['seg'] == POTSDAM and [list(c) for c in palettes['seg']] == POTSDAM_RGB
    assert _names(cfg, _model(seg=5)) == {'seg': POTSDAM[:5]}
    assert _names(cfg, _model(seg=3)) == {'seg': ('class_0', 'class_1', 'class_2')}
    # a 5-class Potsdam test set and a 6-class head: the released 6 classes
    five = _cfg(potsdam=('seg', dict(type='PotsdamIndexDataset', data_root='/nowhere')))
    assert _names(five, _model(seg=6)) == {'seg': POTSDAM}
    assert "dataset 'potsdam' has 5 classes, the head predicts 6" in warnings.text
    assert names.keys() == palettes.keys() == {'cls', 'det', 'seg'}


def test_the_names_are_those_of_the_datasets_the_test_path_builds(demo_data, tmp_path):
    """``init_model``'s names for a config equal ``CLASSES`` of the datasets that
    ``tools/test.py`` builds from it (whose ``evaluate`` names the per-class metrics)."""
    prepared = demo_data['prepared']
    names_file = tmp_path / 'resisc_names.txt'
    names_file.write_text(''.join(f'scene_{i}\n' for i in range(45)))
    cfg = _cfg(
        resisc=('cls', dict(type='RESISC45Dataset',
                            data_prefix=osp.join(prepared, 'resisc45/val'),
                            ann_file=osp.join(prepared, 'resisc45/meta/val.txt'),
                            classes=str(names_file), pipeline=[])),
        potsdam=('seg', dict(type='PotsdamIndexDataset', protocol='release',
                             data_root=osp.join(prepared, 'potsdam'), img_dir='img_dir/val',
                             ann_dir='ann_dir/val', pipeline=[])))
    names = _names(cfg, _model(cls=45, seg=6))
    assert names['cls'] == tuple(f'scene_{i}' for i in range(45)) and names['seg'] == POTSDAM
    built = {loader.task: loader.dataset for loader in build_task_loaders(cfg.data.test,
                                                                          train=False)}
    assert tuple(built['cls'].CLASSES) == names['cls']
    assert tuple(built['seg'].CLASSES) == names['seg']
