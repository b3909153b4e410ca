"""Convert a checkpoint of the original RSCoTr release to this project's names.

Examples::

    python tools/model_converters/rscotr_release.py release.pth work_dirs/release/ours.pth
    python tools/model_converters/rscotr_release.py release.pth ours.pth \\
        --config configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py

The input is an mmcv checkpoint dict (``state_dict`` and ``meta``, kept) or a
bare state dict. Every tensor must have its place in the model of ``--config``
(default: the reference config, or its multi-level-classification variant
when the checkpoint has that head), with the same shape, and every tensor of
that model must be in the checkpoint; otherwise nothing is written and the
tool exits with 2, naming the keys. The mapping is
:data:`rscotr.models.multitask.release.RELEASE_KEY_RULES`.

``tools/test.py``, the inference tools and ``rscotr.apis.init_model`` also take a
release checkpoint directly; converting once saves the renaming at every load.
"""
import argparse
import io
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(ROOT, 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py')
MULTILEVEL = osp.join(ROOT,
                      'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py')
#: A release tensor only the multi-level-classification variant has.
MULTILEVEL_KEY = 'cls_head.pixel_decoder.level_encoding.weight'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a release RSCoTr checkpoint')
    parser.add_argument('src', help='checkpoint of the original release')
    parser.add_argument('dst', help='output checkpoint in this project\'s names')
    parser.add_argument('--config', help='config of the model the weights are for '
                        '(default: the reference config or its multi-level-cls variant)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    from mmcv import Config

    from rscotr.apis.checkpoint import CheckpointError, checkpoint_state_dict, read_checkpoint
    from rscotr.models import build_model
    from rscotr.models.multitask.release import (ReleaseCheckpointError,
                                                 convert_release_state_dict,
                                                 is_release_state_dict)
    from rscotr.utils.io import atomic_write_bytes

    try:
        ckpt = read_checkpoint(args.src)
        state = checkpoint_state_dict(ckpt, args.src)
    except CheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if not is_release_state_dict(state):
        print(f'error: {args.src}: not a checkpoint of the RSCoTr release (no shared_encoder, '
              'cls_head, bbox_head or seg_head keys); it may already be in this '
              "project's names", file=sys.stderr)
        return 2
    config = args.config or (MULTILEVEL if MULTILEVEL_KEY in state else REFERENCE)
    if not osp.isfile(config):
        print(f'error: config file not found: {config}', file=sys.stderr)
        return 2
    cfg = Config.fromfile(config)
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # only names and shapes are needed
    own = build_model(cfg.model).state_dict()
    try:
        mapped = convert_release_state_dict(state, own, source=args.src)
    except ReleaseCheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    out = dict(state_dict=mapped)
    if isinstance(ckpt.get('meta'), dict):
        out['meta'] = dict(ckpt['meta'])
    out.setdefault('meta', {})['converted_from_release'] = dict(
        source=osp.abspath(args.src), config=osp.abspath(config))
    buffer = io.BytesIO()
    torch.save(out, buffer)
    atomic_write_bytes(args.dst, buffer.getvalue())
    print(f'{args.src}: {len(mapped)} tensors of the release converted for '
          f'{osp.relpath(config, ROOT) if config.startswith(ROOT) else config}; '
          f'0 missing, 0 unexpected -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
