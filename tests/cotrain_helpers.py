"""Test support for the co-training machinery (loaders, runner, evaluation, configs).

- :func:`prepare_demo_data`: tiny demo data generated in the official raw
  layouts and converted by the three converters (``raw/`` and ``prepared/``);
- :func:`point_data_at`: rewrite a config's dataset paths to that data;
- :class:`StandInDetHead`, :class:`StandInSegHead`: two small stand-in heads
  for detection and segmentation that keep the head contract and the upstream
  result formats, so that the runner, loaders and evaluation are tested in
  seconds, independently of the DINO / Mask2Former heads (the model:
  ``tests.tiny_rscotr.tiny_model_cfg(stand_ins=True)``, the one tiny-model
  builder of the suite);
- :func:`tiny_train_cfg`: a complete training config on the tiny data.
"""
import json
import os
import os.path as osp
from typing import Dict, List

import numpy as np
import torch.nn.functional as F
from mmcv import Config
from mmcv.runner import HOOKS, Hook
from torch import nn

from rscotr.datasets.converters import convert_dior, convert_potsdam, convert_resisc45
from rscotr.datasets.data_paths import point_data_at as point_data
from rscotr.datasets.demo_data import make_demo_data
from rscotr.models.builder import MODELS
from rscotr.models.heads.base import BaseTaskHead

from .tiny_rscotr import NORM, tiny_model_cfg

#: The metric keys an evaluation of the three demo datasets logs (the README's
#: names: ``<dataset>.<metric>``).
DESIGN_KEYS = ('resisc.accuracy_top-1', 'dior.bbox_mAP', 'potsdam.mIoU', 'potsdam.mFscore',
               'potsdam.aAcc')

#: Demo data small enough for tests: 3 RESISC45 images per class (1 per
#: split), 8 + 4 DIOR images of 128 px, Potsdam tiles of 160 px cut into 4
#: patches of 80 px (12 train, 8 val).
TINY_DEMO = dict(resisc45_per_class=3, dior_img_size=128, dior_trainval=8, dior_test=4,
                 potsdam_tile_size=160)


def prepare_demo_data(root: str) -> Dict[str, str]:
    """Generate and convert the tiny demo data under ``root`` (once per root).

    Returns:
        dict: ``raw`` and ``prepared`` folders.
    """
    raw, prepared = osp.join(root, 'raw'), osp.join(root, 'prepared')
    done = osp.join(root, '.done')
    if not osp.exists(done):
        make_demo_data(raw, seed=0, **TINY_DEMO)
        # the two sets in the standard formats (five-dataset configs)
        make_demo_data(raw, seed=0, datasets=['extra_cls', 'extra_det'], extra_cls_per_class=4,
                       extra_det_images=10)
        convert_resisc45(osp.join(raw, 'NWPU-RESISC45'), osp.join(prepared, 'resisc45'),
                         train_ratio=0.34, val_ratio=0.33, show_progress=False)
        convert_dior(osp.join(raw, 'DIOR'), osp.join(prepared, 'dior'), show_progress=False)
        convert_potsdam(osp.join(raw, 'Potsdam'), osp.join(prepared, 'potsdam'), clip_size=80,
                        stride=80, show_progress=False)
        open(done, 'w').close()
    return dict(raw=raw, prepared=prepared)


def point_data_at(cfg: Config, paths: Dict[str, str], workers: int = 0) -> Config:
    """Point every dataset of ``cfg.data`` at the tiny demo data (in place)."""
    point_data(cfg.data, paths['raw'], paths['prepared'], workers=workers)
    return cfg


@MODELS.register_module(force=True)
class StandInDetHead(BaseTaskHead):
    """One box per image from pooled Swin stage 4 (test stand-in for the DINO head)."""

    task = 'det'

    def __init__(self, num_classes: int = 20, in_channels: int = 128):
        super().__init__()
        self.num_classes = num_classes
        self.box = nn.Linear(in_channels, 4)
        self.cls = nn.Linear(in_channels, num_classes)

    def forward(self, feats, img_metas):
        x = feats['backbone'][-1].mean((2, 3))
        return self.box(x).sigmoid(), self.cls(x)

    def forward_train(self, feats, img_metas, gt_bboxes, gt_labels, **kwargs):
        boxes, logits = self(feats, img_metas)
        loss_bbox = boxes.sum() * 0
        loss_cls = logits.sum() * 0
        for i, (meta, gt, labels) in enumerate(zip(img_metas, gt_bboxes, gt_labels)):
            if len(gt):
                h, w = meta['img_shape'][:2]
                target = gt[0] / gt.new_tensor([w, h, w, h])
                loss_bbox = loss_bbox + F.l1_loss(boxes[i], target)
                loss_cls = loss_cls + F.cross_entropy(logits[i:i + 1], labels[:1])
        return dict(loss_bbox=loss_bbox, loss_cls=loss_cls)

    def simple_test(self, feats, img_metas, rescale=True):
        boxes, logits = self(feats, img_metas)
        scores = logits.softmax(-1)
        results = []
        for i, meta in enumerate(img_metas):
            h, w = (meta['ori_shape'] if rescale else meta['img_shape'])[:2]
            x1, y1, x2, y2 = (boxes[i] * boxes.new_tensor([w, h, w, h])).tolist()
            per_class = [np.zeros((0, 5), np.float32) for _ in range(self.num_classes)]
            c = int(scores[i].argmax())
            per_class[c] = np.array([[min(x1, x2), min(y1, y2), max(x1, x2) + 1,
                                      max(y1, y2) + 1, float(scores[i, c])]], np.float32)
            results.append(per_class)
        return results


@MODELS.register_module(force=True)
class StandInSegHead(BaseTaskHead):
    """1x1 conv on Swin stage 1 (test stand-in for the Mask2Former head)."""

    task = 'seg'

    def __init__(self, num_classes: int = 5, in_channels: int = 16, ignore_index: int = 255):
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(in_channels, num_classes, 1)
        self.ignore_index = ignore_index

    def forward(self, feats, img_metas):
        return self.conv(feats['backbone'][0])

    def forward_train(self, feats, img_metas, gt_semantic_seg, **kwargs):
        logits = self(feats, img_metas)
        logits = F.interpolate(logits, size=gt_semantic_seg.shape[-2:], mode='bilinear',
                               align_corners=False)
        return dict(loss_ce=F.cross_entropy(logits, gt_semantic_seg[:, 0].long(),
                                            ignore_index=self.ignore_index))

    def simple_test(self, feats, img_metas, rescale=True):
        logits = self(feats, img_metas)
        pad_h, pad_w = img_metas[0].get('pad_shape', img_metas[0]['img_shape'])[:2]
        logits = F.interpolate(logits, size=(pad_h, pad_w), mode='bilinear', align_corners=False)
        results = []
        for i, meta in enumerate(img_metas):
            h, w = meta['img_shape'][:2]
            seg = logits[i:i + 1, :, :h, :w]
            if rescale:
                seg = F.interpolate(seg, size=meta['ori_shape'][:2], mode='bilinear',
                                    align_corners=False)
            results.append(seg.argmax(1)[0].cpu().numpy())
        return results


@HOOKS.register_module(force=True)
class TaskRecorderHook(Hook):
    """Record the (task, dataset) of every training step and a parameter checksum.

    Writes ``{'steps': [[task, dataset], ...], 'param_sum': float, 'sums',
    'iters', 'losses' (total loss of each step), 'files' (image file names of
    each batch)}`` to ``out_file`` at the end of the run.
    """

    def __init__(self, out_file: str):
        self.out_file = out_file
        self.steps: List = []
        self.sums: List = []
        self.iters: List = []
        self.losses: List = []
        self.files: List = []

    def after_train_iter(self, runner):
        outputs = runner.outputs
        self.steps.append([outputs['task'], outputs['dataset']])
        self.sums.append(_param_sum(runner))
        self.iters.append(runner.iter + 1)
        self.losses.append(outputs['log_vars'][f'{outputs["task"]}.{outputs["dataset"]}.loss'])
        metas = runner.data_batch['img_metas'].data[0]
        self.files.append([osp.basename(m.get('filename') or m.get('ori_filename') or '')
                           for m in metas])

    def after_run(self, runner):
        with open(self.out_file, 'w') as f:
            json.dump(dict(steps=self.steps, param_sum=_param_sum(runner), sums=self.sums,
                           iters=self.iters, losses=self.losses, files=self.files), f)


def _param_sum(runner) -> float:
    return sum(float(p.detach().double().sum()) for p in runner.model.parameters())


def _norm():
    return dict(NORM)


def tiny_data_cfg(paths: Dict[str, str]) -> Dict:
    """``data`` of the tiny training config (small inputs, no workers)."""
    norm = _norm()
    prepared = paths['prepared']
    cls_train = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', size=32),
        dict(type='RandomFlip', flip_prob=0.5),
        dict(type='Normalize', **norm),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='ToTensor', keys=['gt_label']),
        dict(type='Collect', keys=['img', 'gt_label'])]
    cls_test = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', size=(36, -1)),
        dict(type='CenterCrop', crop_size=32),
        dict(type='Normalize', **norm),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img'])]
    det_train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', img_scale=(64, 64), keep_ratio=True),
        dict(type='RandomFlip', flip_ratio=0.5),
        dict(type='Normalize', **norm),
        dict(type='Pad', size_divisor=32),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])]
    det_test = [
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(64, 64), flip=False, transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **norm),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])])]
    seg_train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='Resize', img_scale=(64, 64), ratio_range=(0.5, 1.5)),
        dict(type='RandomCrop', crop_size=(32, 32), cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Normalize', **norm),
        dict(type='Pad', size=(32, 32), pad_val=0, seg_pad_val=255),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_semantic_seg'])]
    seg_test = [
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(64, 64), flip=False, transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **norm),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])])]

    def resisc(split, pipeline):
        root = osp.join(prepared, 'resisc45')
        return dict(type='RESISC45Dataset', data_prefix=osp.join(root, split),
                    ann_file=osp.join(root, 'meta', f'{split}.txt'), pipeline=pipeline)

    def dior(split, pipeline):
        return dict(type='DIORDataset', img_prefix=osp.join(paths['raw'], 'DIOR') + '/',
                    ann_file=osp.join(prepared, 'dior', 'annotations', f'dior_{split}.json'),
                    filter_empty_gt=False, pipeline=pipeline)

    def potsdam(split, pipeline):
        return dict(type='PotsdamIndexDataset', data_root=osp.join(prepared, 'potsdam'),
                    img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=pipeline)

    def entries(split, cls_pipe, det_pipe, seg_pipe, bs):
        return dict(
            resisc=dict(task='cls', dataset=resisc(split, cls_pipe), samples_per_gpu=bs[0],
                        workers_per_gpu=0),
            dior=dict(task='det', dataset=dior(split, det_pipe), samples_per_gpu=bs[1],
                      workers_per_gpu=0),
            potsdam=dict(task='seg', dataset=potsdam(split, seg_pipe),
                         samples_per_gpu=bs[2], workers_per_gpu=0))

    return dict(train=entries('train', cls_train, det_train, seg_train, (8, 2, 2)),
                val=entries('val', cls_test, det_test, seg_test, (16, 1, 1)),
                test=entries('val', cls_test, det_test, seg_test, (16, 1, 1)))


def tiny_train_cfg(paths: Dict[str, str], work_dir: str, max_iters: int = 6,
                   **overrides) -> Config:
    """A complete co-training config of the tiny model on the tiny data (CPU)."""
    cfg = dict(
        model=tiny_model_cfg(stand_ins=True),
        data=tiny_data_cfg(paths),
        iteration_strategy=dict(type='round_robin'),
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4,
                       paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)})),
        optimizer_config=dict(grad_clip=dict(max_norm=0.1, norm_type=2)),
        lr_config=dict(policy='step', step=[max_iters - 1], by_epoch=False),
        runner=dict(type='IterBasedRunner', max_iters=max_iters),
        checkpoint_config=dict(by_epoch=False, interval=max_iters),
        log_config=dict(interval=2, hooks=[dict(type='TextLoggerHook', by_epoch=False)]),
        evaluation=dict(interval=max_iters,
                        save_best=dict(keys={'resisc.accuracy_top-1': 1, 'dior.bbox_mAP': 100,
                                             'potsdam.mFscore': 100})),
        work_dir=work_dir,
        device='cpu',
        seed=0,
        log_level='INFO',
        workflow=[('train', 1)],
        find_unused_parameters=True)
    cfg.update(overrides)
    os.makedirs(work_dir, exist_ok=True)
    return Config(cfg)
