"""Every config under configs/ builds its model, loaders, strategy, optimizer and evaluation.

Datasets are pointed at tiny generated + converted demo data; one batch of
every loader goes through the config's pipelines. Identical model and data
settings (most configs are small deltas) are built once.
"""
import copy
import glob
import os.path as osp
import re

import pytest
from mmcv import Config
from mmcv.runner import build_optimizer

from rscotr.core.evaluation import MultiTaskEvalHook
from rscotr.datasets import MultiTaskLoader, build_task_loaders
from rscotr.models import build_model
from tests.cotrain_helpers import point_data_at

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO_ROOT)
    for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
REFERENCE = 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
DEMO = 'configs/demo/rscotr_demo.py'

_models = {}
_data = {}




def _model(cfg):
    key = repr(cfg.model)
    if key not in _models:
        _models[key] = build_model(copy.deepcopy(cfg.model))
    return _models[key]


def _loaders(cfg):
    """Train, val and test loaders of ``cfg.data`` (built once per data setting)."""
    key = repr(cfg.data)
    if key not in _data:
        _data[key] = {split: build_task_loaders(cfg.data[split], train=split == 'train')
                      for split in ('train', 'val', 'test')}
        for split, loaders in _data[key].items():
            for loader in loaders:  # one batch through the pipelines
                batch = next(iter(loader.dataloader))
                assert 'img' in batch and 'img_metas' in batch, (split, loader.name)
    return _data[key]


def test_there_are_configs():
    assert REFERENCE in CONFIGS
    assert len([c for c in CONFIGS if '/strategies/' in c]) == 6
    # three single-task baselines and stage 1 of the paper's run (DINO on DIOR)
    assert len([c for c in CONFIGS if c.startswith('configs/single_task/')]) == 4
    assert [c for c in CONFIGS if 'stage1' in c] == [
        'configs/single_task/rscotr_swin-t_stage1_50e_dior.py']


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path, demo_data):
    assert re.fullmatch(r'[A-Za-z0-9_.-]+\.py', osp.basename(path)), path
    cfg = point_data_at(Config.fromfile(osp.join(REPO_ROOT, path)), demo_data)

    model = _model(cfg)
    # every head is fed by a training dataset of its task
    feeds = {e.get('head', e.task): e.task for e in cfg.data.train.values() if e}
    assert feeds == {name: head.task for name, head in model.heads.items()}

    loaders = _loaders(cfg)
    train = MultiTaskLoader(loaders['train'], cfg.get('iteration_strategy'), seed=0)
    tasks = {loader.name: loader.task for loader in loaders['train']}
    for _ in range(3):
        batch = next(train)
        assert batch['task'] == tasks[batch['dataset']]
        assert model.heads[batch['head']].task == batch['task']

    evaluation = dict(cfg.evaluation)
    evaluation.pop('interval')
    hook = MultiTaskEvalHook(loaders['val'], **evaluation)
    assert hook.loaders

    build_optimizer(model, copy.deepcopy(cfg.optimizer))


def test_reference_optimizer_groups():
    cfg = Config.fromfile(osp.join(REPO_ROOT, REFERENCE))
    model = _model(cfg)
    optimizer = build_optimizer(model, copy.deepcopy(cfg.optimizer))
    group_of = {id(p): g for g in optimizer.param_groups for p in g['params']}
    named = dict(model.named_parameters())
    base_lr, base_wd = cfg.optimizer.lr, cfg.optimizer.weight_decay
    backbone = [n for n in named if n.startswith('backbone.')]
    # as released: query and level embeddings of DINO and the seg decoder are not decayed
    # (the seg encoder pass's level encoding is: tests/test_core/test_optimizer_groups.py)
    embeds = [n for n in named if 'query_embed' in n or n in (
        'heads.det.encoder_input_builder.level_embed', 'heads.seg.level_embed.weight')]
    assert backbone and embeds
    for name in backbone:
        assert group_of[id(named[name])]['lr'] == pytest.approx(0.1 * base_lr), name
    for name in embeds:
        assert group_of[id(named[name])]['weight_decay'] == 0, name
    other = [n for n in named if n.startswith('heads.') and n.endswith('.weight')
             and 'embed' not in n]
    assert group_of[id(named[other[0]])]['weight_decay'] == pytest.approx(base_wd)
    assert cfg.optimizer_config.grad_clip == dict(max_norm=0.1, norm_type=2)
    assert cfg.lr_config.step == [240000, 285000] and cfg.runner.max_iters == 300000


def _differences(a, b, path=''):
    """Paths at which two config values differ (keys present in one only included)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b), key=str)
                for p in (_differences(a[k], b[k], f'{path}.{k}') if k in a and k in b
                          else [f'{path}.{k}'])]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) \
            and not all(isinstance(v, (int, float)) for v in list(a) + list(b)):
        return [p for i, (u, v) in enumerate(zip(a, b)) for p in _differences(u, v, f'{path}[{i}]')]
    return [] if a == b else [path]


# demo pipeline (data.<split>.<dataset>) -> (its variable in the dataset bases, the
# full-size pipeline it is made from, the keys in which the two may differ)
DEMO_PIPELINES = {
    ('train', 'resisc'): ('resisc_train_pipeline_light_64', 'resisc_train_pipeline_light',
                          {'size', 'scale'}),
    ('test', 'resisc'): ('resisc_test_pipeline_crop_64', 'resisc_test_pipeline_crop',
                         {'size', 'crop_size'}),
    ('train', 'dior'): ('dior_train_pipeline_256', 'dior_train_pipeline',
                        {'img_scale', 'multiscale_mode'}),
    ('test', 'dior'): ('dior_test_pipeline_256', 'dior_test_pipeline', {'img_scale'}),
    ('train', 'potsdam'): ('potsdam_train_pipeline_5class_128', 'potsdam_train_pipeline_5class',
                           {'img_scale', 'crop_size', 'size'}),
    ('test', 'potsdam'): ('potsdam_test_pipeline_256', 'potsdam_test_pipeline', {'img_scale'}),
}


def test_demo_pipelines_are_the_dataset_bases_at_small_sizes():
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO))
    for (split, name), (variable, full_size, sizes) in DEMO_PIPELINES.items():
        splits = ('val', 'test') if split == 'test' else ('train', )
        for s in splits:
            assert cfg.data[s][name].dataset.pipeline == cfg[variable], (s, name)
        small, full = cfg[variable], cfg[full_size]
        assert [t['type'] for t in small] == [t['type'] for t in full], variable
        changed = {p.rsplit('.', 1)[-1].split('[')[0] for p in _differences(small, full)}
        assert changed and changed <= sizes, (variable, changed)
