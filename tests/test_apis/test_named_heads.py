"""Heads by name, task by type: one head per dataset or a head shared by datasets.

Co-training, evaluation, checkpoints, task pretraining, the test tool and
single-image inference with heads that are not named like their tasks.
"""
import copy
import glob
import json
import logging
import os.path as osp

import pytest
import torch
from mmcv.runner import CheckpointLoader

from rscotr.apis import train_model
from rscotr.apis.checkpoint import CheckpointError, load_model_checkpoint
from rscotr.models import build_model, load_task_pretrain
from rscotr.models.multitask.rscotr import head_tasks_of_config, resolve_head_cfgs
from tests.cotrain_helpers import tiny_train_cfg
from tests.tiny_rscotr import (save_tiny_checkpoint, tiny_model_cfg,
                               tool_main, write_tiny_config)


# ---------------------------------------------------------------- head configs
def test_like_reuses_another_heads_config_with_its_own_keys():
    heads = dict(det=dict(type='DINOHead', num_classes=20, test_cfg=dict(max_per_img=100),
                          dn_cfg=dict(num_dn_queries=20, box_noise_scale=1.0)),
                 boxes=dict(like='det', num_classes=3, dn_cfg=dict(num_dn_queries=8)),
                 more=dict(like='boxes', test_cfg=dict(max_per_img=5)), seg=None)
    resolved = resolve_head_cfgs(heads)
    assert list(resolved) == ['det', 'boxes', 'more']  # None heads left out
    assert resolved['boxes'] == dict(type='DINOHead', num_classes=3,
                                     test_cfg=dict(max_per_img=100),
                                     dn_cfg=dict(num_dn_queries=8, box_noise_scale=1.0))
    assert resolved['more']['num_classes'] == 3 and resolved['more']['test_cfg'] == dict(
        max_per_img=5)
    assert heads['det']['num_classes'] == 20  # the referenced config is not changed
    assert head_tasks_of_config(heads) == {'det': 'det', 'boxes': 'det', 'more': 'det'}
    with pytest.raises(KeyError, match=r"model.heads.boxes: like='dett' names no head"):
        resolve_head_cfgs(dict(det=heads['det'], boxes=dict(like='dett')))
    with pytest.raises(KeyError, match='the like= references loop: a -> b -> a'):
        resolve_head_cfgs(dict(a=dict(like='b'), b=dict(like='a')))


# ---------------------------------------------------------------- co-training
def _named_heads_cfg(demo_data, work_dir):
    """The tiny co-training config plus a second classification dataset with its
    own head (``scenes``, 45 classes: the RESISC45 images again) and a third
    that shares the ``cls`` head."""
    cfg = tiny_train_cfg(demo_data, work_dir, max_iters=5,
                         iteration_strategy=dict(type='repeated_sequence',
                                                 sequence=['resisc', 'scenes', 'shared',
                                                           'dior', 'potsdam']),
                         log_config=dict(interval=1, hooks=[dict(type='TextLoggerHook',
                                                                 by_epoch=False)]),
                         evaluation=dict(interval=5, save_best=dict(
                             keys={'scenes.accuracy_top-1': 1, 'resisc.accuracy_top-1': 1})))
    cfg.model.heads.scenes = dict(like='cls')
    cfg.model.task_weights = dict(seg=0.1, shared=0.5)
    for split in ('train', 'val', 'test'):
        resisc = cfg.data[split].resisc
        cfg.data[split].scenes = dict(copy.deepcopy(resisc), head='scenes')
        cfg.data[split].shared = copy.deepcopy(resisc)  # head: cls, by its task
    return cfg


def test_a_head_per_dataset_and_a_shared_head_train_and_evaluate(demo_data, tmp_path):
    work_dir = str(tmp_path)
    cfg = _named_heads_cfg(demo_data, work_dir)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    initial = copy.deepcopy(model.state_dict())
    assert model.head_task('scenes') == 'cls' and model.loss_weight('cls', 'shared') == 0.5
    train_model(model, cfg, validate=True, timestamp='named')

    (log, ) = glob.glob(osp.join(work_dir, '*.log.json'))
    with open(log) as f:
        records = [json.loads(line) for line in f if line.strip()]
    keys = set().union(*(r for r in records if r.get('mode') == 'train'))
    assert {'cls.resisc.loss', 'cls.scenes.loss', 'cls.shared.loss', 'det.dior.loss',
            'seg.potsdam.loss'} <= keys
    ckpt = CheckpointLoader.load_checkpoint(osp.join(work_dir, 'iter_5.pth'), map_location='cpu')
    state = ckpt['state_dict']
    assert {k.split('.')[1] for k in state if k.startswith('heads.')} == {
        'cls', 'scenes', 'det', 'seg'}
    for head in ('cls', 'scenes'):  # both classification heads were trained
        assert not torch.equal(state[f'heads.{head}.fc.weight'], initial[f'heads.{head}.fc.weight'])
    assert ckpt['meta']['multitask_loader']['steps'] == {
        'resisc': 1, 'dior': 1, 'potsdam': 1, 'scenes': 1, 'shared': 1}
    with open(osp.join(work_dir, 'eval_iter_5.json')) as f:
        metrics = json.load(f)['metrics']
    for name in ('resisc', 'scenes', 'shared'):  # evaluated per dataset, through its head
        assert 0 <= metrics[f'{name}.accuracy_top-1'] <= 100
    # a dataset and its copy through the same head score alike, another head differently
    assert metrics['shared.accuracy_top-1'] == metrics['resisc.accuracy_top-1']


def test_the_shared_head_gets_the_weighted_loss_of_each_dataset(demo_data, tmp_path):
    cfg = _named_heads_cfg(demo_data, str(tmp_path))
    model = build_model(cfg.model)
    from rscotr.datasets import build_task_loaders
    (loader, ) = build_task_loaders(dict(resisc=cfg.data.train.resisc), train=True)
    batch = loader.next_batch()
    batch = dict(batch, img=batch['img'], img_metas=batch['img_metas'].data[0])
    plain = model.train_step(dict(batch, dataset='resisc'))
    shared = model.train_step(dict(batch, dataset='shared'))
    assert shared['head'] == plain['head'] == 'cls'
    assert shared['log_vars']['cls.shared.loss'] == pytest.approx(
        0.5 * plain['log_vars']['cls.resisc.loss'], rel=1e-6)


# ---------------------------------------------------------------- checkpoints
def _five_heads_model_cfg():
    cfg = tiny_model_cfg()
    cfg['heads']['scenes10'] = dict(like='cls', num_classes=10)
    cfg['heads']['objects3'] = dict(like='det', num_classes=3)
    return cfg


def test_a_checkpoint_of_five_heads_loads_into_a_subset(tmp_path, caplog):
    torch.manual_seed(0)
    five = build_model(_five_heads_model_cfg())
    path = str(tmp_path / 'five.pth')
    torch.save({'state_dict': five.state_dict(), 'meta': {}}, path)
    three = build_model(tiny_model_cfg())
    with caplog.at_level(logging.WARNING):
        load_model_checkpoint(three, path)
    assert "weights of head(s) ['objects3', 'scenes10'] that the model does not have" in \
        caplog.text
    assert torch.equal(three.state_dict()['heads.det.cls_branches.0.weight'],
                       five.state_dict()['heads.det.cls_branches.0.weight'])
    # the other way round: heads the checkpoint lacks are an error that names them
    small = str(tmp_path / 'three.pth')
    torch.save({'state_dict': three.state_dict(), 'meta': {}}, small)
    with pytest.raises(CheckpointError, match=r'three.pth: .*heads.objects3.*heads.scenes10'):
        load_model_checkpoint(build_model(_five_heads_model_cfg()), small)


def test_task_pretraining_into_a_named_detection_head(caplog):
    torch.manual_seed(0)
    detector = build_model(tiny_model_cfg(('det', )))
    detector_state = {'state_dict': detector.state_dict()}
    torch.manual_seed(1)
    model = build_model(_five_heads_model_cfg())
    before = copy.deepcopy(model.state_dict())
    report = load_task_pretrain(model, detector_state, head='objects3')
    after = model.state_dict()
    # the detector's head went to objects3 (but its 20-class tensors: 3 classes here)
    key = 'heads.objects3.decoder.layers.0.ffns.0.layers.1.weight'
    assert torch.equal(after[key], detector.state_dict()[key.replace('objects3', 'det')])
    assert not torch.equal(after['heads.objects3.cls_branches.0.weight'],
                           detector.state_dict()['heads.det.cls_branches.0.weight'][:3])
    assert any(m.startswith('heads.objects3.cls_branches.0.weight')
               for m in report['shape_mismatch'])
    # the det head and the other heads keep their weights; the shared parts are loaded
    for name, value in before.items():
        if name.startswith(('heads.det.', 'heads.cls.', 'heads.seg.', 'heads.scenes10.')):
            assert torch.equal(after[name], value), name
    assert torch.equal(after['encoder.layers.0.ffns.0.layers.1.weight'],
                       detector.state_dict()['encoder.layers.0.ffns.0.layers.1.weight'])
    with pytest.raises(ValueError, match=r"no detection head 'scenes10' \(detection heads: "
                       r"\['det', 'objects3'\]\)"):
        load_task_pretrain(model, detector_state, head='scenes10')


# ---------------------------------------------------------------- tools
@pytest.fixture(scope='module')
def named(demo_data, tmp_path_factory):
    """The tiny model with two more heads (scenes10, objects3) and a test dataset for
    objects3 in COCO json (the 3-class demo set of the standard formats);
    scenes10 has no test dataset (its pipeline is the config's inference section)."""
    root = str(tmp_path_factory.mktemp('named_heads'))
    det = osp.join(demo_data['raw'], 'extra_det')
    extra = ("model['heads']['objects3'] = dict(like='det', num_classes=3)\n"
             "model['heads']['scenes10'] = dict(like='cls', num_classes=10)\n"
             "data['test']['objects3'] = dict(data['test']['dior'], head='objects3')\n"
             "data['test']['objects3']['dataset'] = dict(type='CocoJsonDataset', "
             f"ann_file={osp.join(det, 'annotations', 'test.json')!r}, "
             f"img_prefix={osp.join(det, 'images') + '/'!r}, "
             "pipeline=data['test']['dior']['dataset']['pipeline'])\n"
             "inference = dict(pipelines=dict(scenes10=data['test']['resisc']['dataset']"
             "['pipeline']))\n")
    config = write_tiny_config(osp.join(root, 'named.py'),
                               data_root=osp.dirname(demo_data['raw']), extra=extra)
    ckpt = save_tiny_checkpoint(config, osp.join(root, 'named.pth'))
    return dict(root=root, config=config, ckpt=ckpt, det=det)


def test_test_tool_selects_datasets_by_name_or_task(named, tmp_path):
    main = tool_main('tools/test.py')
    assert main([named['config'], named['ckpt'], '--tasks', 'objects3', 'cls',
                 '--work-dir', str(tmp_path / 'a'), '--device', 'cpu']) == 0
    (path, ) = glob.glob(str(tmp_path / 'a' / 'test_*.json'))
    with open(path) as f:
        summary = json.load(f)
    assert list(summary['datasets']) == ['resisc', 'objects3']
    assert {k.split('.')[0] for k in summary['metrics']} == {'resisc', 'objects3'}
    assert 'objects3.bbox_mAP' in summary['metrics']
    assert main([named['config'], named['ckpt'], '--tasks', 'dota',
                 '--work-dir', str(tmp_path / 'b'), '--device', 'cpu']) == 2


def test_inference_runs_the_heads_named(named, tmp_path, capsys):
    img = sorted(glob.glob(osp.join(named['det'], 'images', '*.jpg')))[0]
    main = tool_main('tools/inference_one_img.py')
    out = tmp_path / 'out'
    assert main([named['config'], named['ckpt'], img, '--heads', 'objects3', 'scenes10',
                 '--out-dir', str(out), '--device', 'cpu']) == 0
    stem = osp.splitext(osp.basename(img))[0]
    with open(out / f'{stem}_result.json') as f:
        summary = json.load(f)
    assert summary['tasks'] == ['objects3', 'scenes10']
    assert summary['head_tasks'] == {'objects3': 'det', 'scenes10': 'cls'}
    assert osp.isfile(out / f'{stem}_objects3.png')
    assert not osp.exists(out / f'{stem}_det.png')
    # the classes of the head's test dataset (the json's categories)
    assert {d['label'] for d in summary['objects3']} <= {'storage_tank', 'vehicle', 'ship'}
    assert len(summary['scenes10']['top5']) == 5
    printed = capsys.readouterr().out
    assert '  objects3: ' in printed and '  scenes10: ' in printed
    assert main([named['config'], named['ckpt'], img, '--heads', 'boxes',
                 '--out-dir', str(tmp_path / 'x'), '--device', 'cpu']) == 2
    assert "--heads boxes: no such head" in capsys.readouterr().err


def test_scene_inference_runs_one_named_head_per_task(named, tmp_path):
    import numpy as np

    from rscotr.apis import init_model
    from rscotr.apis.scene import inference_scene
    from tests.tiny_rscotr import write_geotiff
    scene = write_geotiff(str(tmp_path / 'scene.tif'),
                          np.random.RandomState(0).randint(0, 255, (3, 96, 96), np.uint8))
    model = init_model(named['config'], named['ckpt'], device='cpu')
    summary = inference_scene(model, scene, str(tmp_path / 'out'), tasks=['objects3', 'seg'],
                              tile=64, overlap=16, progress=False, score_thr=0.0)
    assert summary['options']['heads'] == {'det': 'objects3', 'seg': 'seg'}
    assert summary['files']['det'].endswith('scene_objects3.geojson')
    assert summary['files']['seg'].endswith('scene_seg.tif')
    with open(summary['files']['det']) as f:
        labels = {feat['properties']['label'] for feat in json.load(f)['features']}
    assert labels and labels <= {'storage_tank', 'vehicle', 'ship'}  # the named head's classes
    with pytest.raises(ValueError, match="the heads 'det' and 'objects3' are both 'det' heads"):
        inference_scene(model, scene, str(tmp_path / 'all'), tile=64, overlap=16,
                        progress=False)


def test_the_readme_config_delta_adds_a_dataset_with_its_own_head(tmp_path):
    """The README's example (section 'Co-training your own datasets') is a valid config."""
    from mmcv import Config

    from rscotr.apis.checks import check_config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'README.md')) as f:
        readme = f.read()
    section = readme[readme.index('## Co-training your own datasets'):]
    start = section.index("_base_ = ['../rscotr/")
    text = section[start:section.index('```', start)]
    text = text.replace("'../rscotr/", repr(osp.join(root, 'configs', 'rscotr')).rstrip("'") + '/')
    path = tmp_path / 'ucm.py'
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    check_config(cfg, files=False)
    assert head_tasks_of_config(cfg.model.heads) == {'cls': 'cls', 'det': 'det', 'seg': 'seg',
                                                     'ucm': 'cls'}
    assert resolve_head_cfgs(cfg.model.heads)['ucm']['num_classes'] == 21
    assert {split: cfg.data[split].ucm.head for split in ('train', 'val', 'test')} == {
        'train': 'ucm', 'val': 'ucm', 'test': 'ucm'}
    assert cfg.data.train.ucm.dataset.pipeline == cfg.data.train.resisc.dataset.pipeline
