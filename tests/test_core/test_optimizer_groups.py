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


def release_rule(name: str, keys: dict):
    """(lr, weight decay) of a released parameter under mmcv's custom_keys matching."""
    for key in sorted(sorted(keys), key=len, reverse=True):
        if key in name:
            opts = keys[key]
            return LR * opts.get('lr_mult', 1.0), WD * opts.get('decay_mult', 1.0)
    return LR, WD


@pytest.mark.parametrize('config, keys_file, release_keys', [
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py', 'release_reference_keys.txt',
     RELEASE_KEYS),
    ('configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam_multilevel-cls.py',
     'release_multilevel_cls_keys.txt', RELEASE_KEYS_MULTILEVEL),
])
def test_groups_match_the_release_rule(config, keys_file, release_keys):
    cfg = Config.fromfile(str(ROOT / config))
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg.model)
    optimizer = build_optimizer(model, cfg.optimizer)
    ours = {}
    by_tensor = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group['params']:
            ours[by_tensor[id(p)]] = (group['lr'], group['weight_decay'])
    params = set(ours)
    compared, differ = 0, []
    for line in (DATA / keys_file).read_text().splitlines():
        name = line.split(' ')[0]
        mine = release_to_ours(name)
        if mine not in params:  # buffers (relative_position_index)
            continue
        compared += 1
        want = release_rule(name, release_keys)
        got = ours[mine]
        if abs(got[0] - want[0]) > 1e-12 or abs(got[1] - want[1]) > 1e-12:
            differ.append(f'{name} -> {mine}: ours {got}, release {want}')
    assert compared == len(params), 'every parameter of ours has a released name'
    assert not differ, '\n'.join(differ)
    # the cases that tell the rules apart
    assert ours['heads.seg.encoder_input_builder.level_embed'][1] == WD
    assert ours['heads.det.dn_generator.label_embedding.weight'][1] == WD
    assert ours['heads.det.encoder_input_builder.level_embed'][1] == 0
    assert ours['heads.seg.level_embed.weight'][1] == 0
