"""Time one training step of the reference RSCoTr detection path on this machine.

Builds the reference Swin-T backbone, neck, 6-layer shared encoder and DINO
head (the reference configuration), then runs full training steps (forward, losses,
backward, AdamW step) on a random batch with random ground-truth boxes and
prints the head's parameter count and the median step time.

Example::

    python tools/analysis/bench_dino_step.py --size 800 --steps 5
"""
import argparse
import statistics
import time

import numpy as np
import torch

from rscotr.models import build_model
from rscotr.models.layers.dino_decoder import default_decoder_layer
from rscotr.models.layers.encoder import default_encoder_layer


def reference_model(num_classes: int = 20) -> dict:
    """Config of the reference detection model (backbone, neck, encoder, DINO head)."""
    return dict(
        type='RSCoTr',
        backbone=dict(type='mmdet.SwinTransformer', embed_dims=96, depths=(2, 2, 6, 2),
                      num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4, qkv_bias=True,
                      drop_path_rate=0.2, patch_norm=True, out_indices=(0, 1, 2, 3),
                      convert_weights=False),
        neck=dict(type='mmdet.ChannelMapper', in_channels=[192, 384, 768], kernel_size=1,
                  out_channels=256, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
                  num_outs=4),
        encoder=dict(type='SharedDeformableEncoder', num_layers=6,
                     transformerlayers=default_encoder_layer(256, 8, 4, 4, 2048)),
        heads=dict(det=dict(
            type='DINOHead', num_classes=num_classes, embed_dims=256, num_query=600,
            decoder=dict(type='DINODecoder', num_layers=6,
                         transformerlayers=default_decoder_layer(256, 8, 4, 4, 2048)),
            encoder_inputs=dict(
                positional_encoding=dict(type='SinePositionalEncoding', num_feats=128,
                                         normalize=True, offset=0.0, temperature=20),
                num_levels=4, embed_dims=256),
            dn_cfg=dict(num_dn_queries=100, label_noise_scale=0.5, box_noise_scale=1.0),
            test_cfg=dict(max_per_img=300))))


def random_batch(batch: int, size: int, num_gts: int, num_classes: int):
    img = torch.randn(batch, 3, size, size)
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3),
                  pad_shape=(size, size, 3), batch_input_shape=(size, size),
                  scale_factor=np.ones(4, dtype=np.float32)) for _ in range(batch)]
    boxes, labels = [], []
    for _ in range(batch):
        xy = torch.rand(num_gts, 2) * size * 0.8
        wh = torch.rand(num_gts, 2) * size * 0.15 + 4
        boxes.append(torch.cat((xy, (xy + wh).clamp(max=size)), 1))
        labels.append(torch.randint(0, num_classes, (num_gts,)))
    return dict(img=img, img_metas=metas, gt_bboxes=boxes, gt_labels=labels, task='det',
                dataset='dior')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=800, help='square input size')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--num-gts', type=int, default=20, help='gt boxes per image')
    parser.add_argument('--steps', type=int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps first')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch default)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(reference_model())
    model.init_weights()
    model.to(device).train()
    head = model.heads['det']
    head_params = sum(p.numel() for p in head.parameters())
    total_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=1e-4)
    data = random_batch(args.batch, args.size, args.num_gts, head.num_classes)
    data['img'] = data['img'].to(device)
    data['gt_bboxes'] = [b.to(device) for b in data['gt_bboxes']]
    data['gt_labels'] = [b.to(device) for b in data['gt_labels']]

    def step():
        out = model.train_step(data)
        optimizer.zero_grad()
        out['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(f'device: {device} ({torch.get_num_threads()} threads), input {args.batch}x3x'
          f'{args.size}x{args.size}, {args.num_gts} gt boxes per image')
    print(f'DINO head parameters: {head_params:,} (model total {total_params:,})')
    print(f'train step times (s): {", ".join(f"{t:.2f}" for t in times)}')
    print(f'median train step: {statistics.median(times):.2f} s')


if __name__ == '__main__':
    main()
