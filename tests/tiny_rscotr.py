"""A tiny three-task RSCoTr (the real heads on the shared encoder), its config file and
checkpoint, on the session's demo data (``tests/conftest.py::demo_data``).

Shared by the tests of the inference API and of the tools. Inputs are
small (cls 64, det 96, seg 64 pixels) so that every test runs in seconds on
a CPU. (``tests/cotrain_helpers.py`` has the co-training counterpart, with
stand-in detection and segmentation heads.)
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import torch

from rscotr.models.heads.mask2former_head import default_seg_decoder
from rscotr.models.layers.dino_decoder import default_decoder_layer
from rscotr.models.layers.encoder import default_encoder_layer

EMBED = 32
BACKBONE_DIMS = 16
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
#: Test input sizes of the tiny configs.
SIZES = dict(cls=64, det=96, seg=64)


def tiny_backbone(embed_dims: int = BACKBONE_DIMS) -> dict:
    """A 4-stage Swin small enough for CPU tests (stage channels d, 2d, 4d, 8d)."""
    return dict(type='mmdet.SwinTransformer', embed_dims=embed_dims, depths=(1, 1, 1, 1),
                num_heads=(1, 2, 2, 4), window_size=4, mlp_ratio=2, drop_path_rate=0.0,
                patch_norm=True, out_indices=(0, 1, 2, 3), convert_weights=False)


def tiny_heads(tasks: Sequence[str] = ('cls', 'det', 'seg')) -> Dict:
    d = BACKBONE_DIMS
    heads = dict(
        cls=dict(type='SingleLevelClsHead', num_classes=45, in_channels=8 * d),
        det=dict(
            type='DINOHead', num_classes=20, embed_dims=EMBED, num_query=20,
            decoder=dict(type='DINODecoder', num_layers=1,
                         transformerlayers=default_decoder_layer(EMBED, 4, 4, 2, 64)),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=EMBED),
            dn_cfg=dict(num_dn_queries=10, label_noise_scale=0.5, box_noise_scale=1.0),
            test_cfg=dict(max_per_img=20)),
        seg=dict(
            type='PerPixelMask2FormerHead', num_classes=5, scheme=2, feat_channels=EMBED,
            out_channels=EMBED, num_queries=8,
            transformer_decoder=default_seg_decoder(embed_dims=EMBED, num_heads=4,
                                                    feedforward_channels=64, num_layers=3),
            positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                     normalize=True),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=EMBED // 2,
                                         normalize=True, temperature=10000),
                num_levels=4, embed_dims=EMBED, level_order='coarse_to_fine',
                mask_padding=False)))
    return {task: heads[task] for task in tasks}


def tiny_model_cfg(tasks: Sequence[str] = ('cls', 'det', 'seg'), heads: Optional[Dict] = None,
                   backbone_dims: int = BACKBONE_DIMS, stand_ins: bool = False) -> Dict:
    """The tiny RSCoTr of the tests.

    By default a 4-stage Swin (``d, 2d, 4d, 8d`` channels), a ChannelMapper neck
    and a one-layer shared deformable encoder of ``EMBED`` dims, with the real
    heads of ``tasks`` (:func:`tiny_heads`), or with ``heads`` (head configs by
    name) for the tests of one head.

    ``stand_ins=True``: the Swin alone, with the real single-level
    classification head and the stand-in detection and segmentation heads of
    ``tests/cotrain_helpers.py`` (registered when that module is imported), so
    that the runner, loaders and evaluation are tested in seconds.
    """
    d = backbone_dims
    if stand_ins:
        all_heads = dict(
            cls=dict(type='SingleLevelClsHead', num_classes=45, in_channels=8 * d,
                     loss=dict(type='mmcls.CrossEntropyLoss', loss_weight=1.0)),
            det=dict(type='StandInDetHead', num_classes=20, in_channels=8 * d),
            seg=dict(type='StandInSegHead', num_classes=5, in_channels=d))
        return dict(type='RSCoTr', backbone=tiny_backbone(d),
                    heads={task: all_heads[task] for task in tasks}, task_weights=dict(seg=0.1))
    heads = tiny_heads(tasks) if heads is None else heads
    return dict(
        type='RSCoTr', backbone=tiny_backbone(d),
        neck=dict(type='mmdet.ChannelMapper', in_channels=[2 * d, 4 * d, 8 * d], kernel_size=1,
                  out_channels=EMBED, act_cfg=None, norm_cfg=dict(type='GN', num_groups=8),
                  num_outs=4),
        encoder=dict(type='SharedDeformableEncoder', num_layers=1,
                     transformerlayers=default_encoder_layer(EMBED, 4, 4, 2, 64)),
        heads=heads,
        task_weights=dict(seg=0.1) if 'seg' in heads else None)


def tiny_test_pipelines(sizes: Optional[Dict[str, int]] = None) -> Dict:
    sizes = dict(SIZES, **(sizes or {}))
    cls = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', size=(sizes['cls'] + 8, -1), backend='pillow'),
        dict(type='CenterCrop', crop_size=sizes['cls']),
        dict(type='Normalize', **NORM),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img'])
    ]
    det = [
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(sizes['det'], sizes['det']), flip=False,
             transforms=[
                 dict(type='Resize', keep_ratio=True),
                 dict(type='RandomFlip'),
                 dict(type='Normalize', **NORM),
                 dict(type='Pad', size_divisor=1),
                 dict(type='ImageToTensor', keys=['img']),
                 dict(type='Collect', keys=['img'])
             ])
    ]
    seg = [
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(sizes['seg'], sizes['seg']), flip=False,
             transforms=[
                 dict(type='Resize', keep_ratio=True),
                 dict(type='RandomFlip'),
                 dict(type='Normalize', **NORM),
                 dict(type='ImageToTensor', keys=['img']),
                 dict(type='Collect', keys=['img'])
             ])
    ]
    return dict(cls=cls, det=det, seg=seg)


def tiny_data_cfg(root: str, tasks: Sequence[str] = ('cls', 'det', 'seg'),
                  sizes: Optional[Dict[str, int]] = None, resisc_split: str = 'test',
                  batch: Optional[Dict[str, int]] = None) -> Dict:
    """``data`` with test (and val) entries on the demo data under ``root`` (the parent
    of the ``demo_data`` fixture's ``raw/`` and ``prepared/{resisc45,dior,potsdam}``):
    RESISC45 ``resisc_split``, DIOR test, Potsdam val; ``batch``: images per batch by
    task (default cls 16, det 1, seg 1)."""
    pipelines = tiny_test_pipelines(sizes)
    batch = dict(dict(cls=16, det=1, seg=1), **(batch or {}))
    entries = dict(
        resisc=dict(task='cls', samples_per_gpu=batch['cls'], workers_per_gpu=0,
                    dataset=dict(type='RESISC45Dataset',
                                 data_prefix=osp.join(root, 'prepared/resisc45', resisc_split),
                                 ann_file=osp.join(root, f'prepared/resisc45/meta/'
                                                   f'{resisc_split}.txt'),
                                 pipeline=pipelines['cls']),
                    eval_cfg=dict(metric='accuracy', metric_options=dict(topk=(1, 5)))),
        dior=dict(task='det', samples_per_gpu=batch['det'], workers_per_gpu=0,
                  dataset=dict(type='DIORDataset',
                               ann_file=osp.join(root, 'prepared/dior/annotations/dior_test.json'),
                               img_prefix=osp.join(root, 'raw/DIOR/'),
                               pipeline=pipelines['det'])),
        potsdam=dict(task='seg', samples_per_gpu=batch['seg'], workers_per_gpu=0,
                     dataset=dict(type='PotsdamIndexDataset',
                                  data_root=osp.join(root, 'prepared/potsdam'),
                                  img_dir='img_dir/val', ann_dir='ann_dir/val',
                                  ignore_labels=[5], pipeline=pipelines['seg'])))
    test = {name: e for name, e in entries.items() if e['task'] in tasks}
    return dict(test=test, val=test)


def write_config(cfg, path: str) -> str:
    """Write ``cfg`` (an mmcv ``Config`` or a dict) as a config file of Python literals and
    return ``path``: what ``Config.dump`` writes, without its yapf formatting, which
    takes seconds per config (``tools/train.py`` still dumps and logs with it)."""
    items = cfg._cfg_dict.to_dict() if hasattr(cfg, '_cfg_dict') else dict(cfg)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(f'{key} = {value!r}\n' for key, value in items.items()))
    return path


def write_tiny_config(path: str, data_root: str = '/nonexistent/demo',
                      tasks: Sequence[str] = ('cls', 'det', 'seg'),
                      sizes: Optional[Dict[str, int]] = None,
                      extra: str = '') -> str:
    """Write a tiny config file (Python dict literals) and return its path."""
    text = (f'model = {tiny_model_cfg(tasks)!r}\n'
            f'data = {tiny_data_cfg(data_root, tasks, sizes)!r}\n'
            f'{extra}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


def save_tiny_checkpoint(config_path: str, ckpt_path: str, seed: int = 0) -> str:
    """Build the model of ``config_path`` with initialised weights and save it."""
    from mmcv import Config

    from rscotr.models import build_model
    torch.manual_seed(seed)
    model = build_model(Config.fromfile(config_path).model)
    model.init_weights()
    for head in model.heads.values():  # the heads' ModuleDict is not recursed into
        if not getattr(head, '_is_init', True):
            head.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {'seed': seed}}, ckpt_path)
    return ckpt_path


def tool_main(rel_path: str):
    """``main(argv)`` of a script in ``tools/``, run in-process."""
    import runpy
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    return runpy.run_path(osp.join(root, rel_path), run_name='tool')['main']


def write_geotiff(path: str, data, nodata=None, compress: Optional[str] = None,
                  tiled: bool = False) -> str:
    """Write a (bands, H, W) array as a georeferenced GeoTIFF (UTM 32N, 0.05 m pixels).

    Args:
        compress: GDAL's compression (``'lzw'``, ``'deflate'``, ``'jpeg'`` (as
            YCbCr for 3 bands), ``'zstd'``, ...); None: uncompressed.
        tiled: 32 x 32 tiles instead of strips.
    """
    import rasterio
    from rasterio.transform import from_origin
    bands, height, width = data.shape
    options = dict(tiled=True, blockxsize=32, blockysize=32) if tiled else {}
    if compress is not None:
        options['compress'] = compress
        if compress == 'jpeg' and bands == 3:
            options['photometric'] = 'ycbcr'
    with rasterio.open(path, 'w', driver='GTiff', height=height, width=width, count=bands,
                       dtype=str(data.dtype), crs='EPSG:32632',
                       transform=from_origin(368000.0, 5807000.0, 0.05, 0.05),
                       nodata=nodata, **options) as dst:
        dst.write(data)
    with rasterio.open(path) as src:  # what the tests rely on
        assert (src.compression.value.lower() if src.compression else None) == compress
        assert src.is_tiled == tiled
    return path
