"""The optimiser groups of the reference configs equal the release's rule on the release's names.

The release configures AdamW with ``paramwise_cfg.custom_keys`` matched (by
mmcv, as substrings, longest key first) against its own parameter names:
``backbone`` lr x0.1, ``query_embed`` / ``query_feat`` / ``level_embed`` no
weight decay. Here that rule is applied to every parameter name of
``release_reference_keys.txt`` and compared, through the release mapping,
with the groups mmcv builds for our model from our config.
"""
from pathlib import Path

import pytest
from mmcv import Config
from mmcv.runner import build_optimizer

from rscotr.models import build_model
from rscotr.models.multitask.release import release_to_ours

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / 'tests/data/release_parity'
LR, WD = 5e-5, 1e-4

RELEASE_KEYS = {'backbone': dict(lr_mult=0.1), 'query_embed': dict(decay_mult=0.0),
                'query_feat': dict(decay_mult=0.0), 'level_embed': dict(decay_mult=0.0)}
# the multi-level variant's release config has no backbone multiplier
RELEASE_KEYS_MULTILEVEL = {k: v for k, v in RELEASE_KEYS.items() if k != 'backbone'}
# the release's single-task DINO (stage 1): backbone x0.1 and the Swin keys of no decay
RELEASE_KEYS_STAGE1 = {'backbone': dict(lr_mult=0.1), 'absolute_pos_embed': dict(decay_mult=0.0),
                       'relative_position_bias_table': dict(decay_mult=0.0),
                       'norm': dict(decay_mult=0.0)}


def release_rule(name: str, keys: dict):
    """(lr, weight decay) of a released parameter under mmcv's custom_keys matching."""
    for key in sorted(sorted(keys), key=len, reverse=True):
        if key in name:
            opts = keys[key]
            return LR * opts.get('lr_mult', 1.0), WD * opts.get('decay_mult', 1.0)
    return LR, WD


def our_groups(config: str, model=None) -> dict:
    """{our parameter name: (lr, weight decay)} of the optimizer mmcv builds from ``config``
    (for ``model``, by default the config's model)."""
    cfg = Config.fromfile(str(ROOT / config))
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg.model) if model is None else model
    optimizer = build_optimizer(model, cfg.optimizer)
    ours = {}
    by_tensor = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group['params']:
            ours[by_tensor[id(p)]] = (group['lr'], group['weight_decay'])
    return ours


def compare_with_release(ours: dict, keys_file: str, release_keys, rename=lambda name: name):
    """Every parameter of ours has a released name (a line of ``keys_file``) and the
    (lr, weight decay) the release's rule gives that name (renamed by ``rename``;
    None: a tensor the model does not have)."""
    compared, differ = 0, []
    for line in (DATA / keys_file).read_text().splitlines():
        name = line.split(' ')[0]
        mine = release_to_ours(name)
        release_name = rename(name)
        if release_name is None or mine not in ours:  # buffers (relative_position_index)
            continue
        compared += 1
        want = release_rule(release_name, release_keys)
        got = ours[mine]
        if abs(got[0] - want[0]) > 1e-12 or abs(got[1] - want[1]) > 1e-12:
            differ.append(f'{release_name} -> {mine}: ours {got}, release {want}')
    assert compared == len(ours), 'every parameter of ours has a released name'
    assert not differ, '\n'.join(differ)


@pytest.mark.parametrize('config, keys_file, release_keys', [
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py', 'release_reference_keys.txt',
     RELEASE_KEYS),
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py',
     'release_multilevel_cls_keys.txt', RELEASE_KEYS_MULTILEVEL),
])
def test_groups_match_the_release_rule(config, keys_file, release_keys, reference_model):
    reference = config == 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'
    ours = our_groups(config, reference_model() if reference else None)
    compare_with_release(ours, keys_file, release_keys)
    # the cases that tell the rules apart
    assert ours['heads.seg.encoder_input_builder.level_embed'][1] == WD
    assert ours['heads.det.dn_generator.label_embedding.weight'][1] == WD
    assert ours['heads.det.encoder_input_builder.level_embed'][1] == 0
    assert ours['heads.seg.level_embed.weight'][1] == 0


def test_stage1_groups_match_the_release_detector_rule():
    """The stage-1 config against the release's single-task DINO rule, on the release's
    single-task names: the MTL's det parts with the encoder inside the detector
    (``bbox_head.transformer.encoder.*``) and no stage-1 norm (out_indices (1, 2, 3))."""
    ours = our_groups('configs/single_task/rscotr_swin-t_stage1_50e_dior.py')

    def single_task_name(name):
        if name.startswith(('cls_head.', 'seg_head.', 'backbone.norm0.')):
            return None  # not in the detector
        if name.startswith('shared_encoder.'):
            return 'bbox_head.transformer.encoder.' + name[len('shared_encoder.'):]
        return name

    compare_with_release(ours, 'release_reference_keys.txt', RELEASE_KEYS_STAGE1,
                         single_task_name)
    # the cases that tell the rules apart: 'backbone' is longer than 'norm' and wins
    assert ours['backbone.stages.0.blocks.0.norm1.weight'] == (LR * 0.1, WD)
    table = 'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table'
    assert ours[table] == (LR, 0)
    assert ours['encoder.layers.0.norms.0.weight'] == (LR, 0)
    assert ours['heads.det.query_embedding.weight'] == (LR, WD)
    assert ours['heads.det.encoder_input_builder.level_embed'] == (LR, WD)
