"""A tiny three-task RSCoTr, its config file and checkpoint, and tiny prepared demo data.

Shared by the tests of the inference API and of the tools. Inputs are
small (cls 64, det 96, seg 64 pixels) so that every test runs in seconds on
a CPU.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import torch

from rscotr.models.heads.mask2former_head import default_seg_decoder
from rscotr.models.layers.dino_decoder import default_decoder_layer
from rscotr.models.layers.encoder import default_encoder_layer

from .conftest import tiny_backbone

EMBED = 32
BACKBONE_DIMS = 16
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
#: Test input sizes of the tiny configs.
SIZES = dict(cls=64, det=96, seg=64)


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


def tiny_model_cfg(tasks: Sequence[str] = ('cls', 'det', 'seg')) -> Dict:
    d = BACKBONE_DIMS
    return dict(
        type='RSCoTr', backbone=tiny_backbone(d),
        neck=dict(type='mmdet.ChannelMapper', in_channels=[2 * d, 4 * d, 8 * d], kernel_size=1,
                  out_channels=EMBED, act_cfg=None, norm_cfg=dict(type='GN', num_groups=8),
                  num_outs=4),
        encoder=dict(type='SharedDeformableEncoder', num_layers=1,
                     transformerlayers=default_encoder_layer(EMBED, 4, 4, 2, 64)),
        heads=tiny_heads(tasks),
        task_weights=dict(seg=0.1) if 'seg' in tasks else None)


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
                  sizes: Optional[Dict[str, int]] = None) -> Dict:
    """``data`` with test (and val) entries on the prepared demo data under ``root``
    (``prep/{resisc45,dior,potsdam}`` and the raw ``raw/DIOR`` images)."""
    pipelines = tiny_test_pipelines(sizes)
    entries = dict(
        resisc=dict(task='cls', samples_per_gpu=16, workers_per_gpu=0,
                    dataset=dict(type='RESISC45Dataset',
                                 data_prefix=osp.join(root, 'prep/resisc45/test'),
                                 ann_file=osp.join(root, 'prep/resisc45/meta/test.txt'),
                                 pipeline=pipelines['cls']),
                    eval_cfg=dict(metric='accuracy', metric_options=dict(topk=(1, 5)))),
        dior=dict(task='det', samples_per_gpu=1, workers_per_gpu=0,
                  dataset=dict(type='DIORDataset',
                               ann_file=osp.join(root, 'prep/dior/annotations/dior_test.json'),
                               img_prefix=osp.join(root, 'raw/DIOR/'),
                               pipeline=pipelines['det'])),
        potsdam=dict(task='seg', samples_per_gpu=1, workers_per_gpu=0,
                     dataset=dict(type='PotsdamIndexDataset',
                                  data_root=osp.join(root, 'prep/potsdam'),
                                  img_dir='img_dir/val', ann_dir='ann_dir/val',
                                  ignore_labels=[5], pipeline=pipelines['seg'])))
    test = {name: e for name, e in entries.items() if e['task'] in tasks}
    return dict(test=test, val=test)


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


def make_prepared_demo(root: str) -> str:
    """Tiny raw demo data under ``root/raw`` and its prepared form under ``root/prep``."""
    from rscotr.datasets.converters import convert_dior, convert_potsdam, convert_resisc45
    from rscotr.datasets.demo_data import make_demo_data
    make_demo_data(osp.join(root, 'raw'), seed=0, resisc45_per_class=3, dior_img_size=128,
                   dior_trainval=8, dior_test=4, potsdam_tile_size=160)
    convert_resisc45(osp.join(root, 'raw/NWPU-RESISC45'), osp.join(root, 'prep/resisc45'),
                     show_progress=False)
    convert_dior(osp.join(root, 'raw/DIOR'), osp.join(root, 'prep/dior'), show_progress=False)
    convert_potsdam(osp.join(root, 'raw/Potsdam'), osp.join(root, 'prep/potsdam'), clip_size=64,
                    stride=64, show_progress=False)
    return root


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
