"""load_task_pretrain maps an mmdet-format (3.x layout) DINO checkpoint onto RSCoTr."""
import re

import torch

from rscotr.models import build_model, load_task_pretrain
from rscotr.models.multitask.pretrain import map_dino_state_dict

from ..tiny_rscotr import tiny_model_cfg


def dino_checkpoint_from(model) -> dict:
    """A DINO detector state dict in mmdet 3.x naming, with the values of ``model``.

    Written from the mmdet 3.x DINO layout (independently of the mapping rules
    under test): encoder/decoder layers use ``self_attn``/``cross_attn``/``ffn``,
    the reference-point head is an ``MLP`` with ``layers.0``/``layers.1``, the
    level embedding, query selection and denoising embedding sit on the
    detector, the branches on ``bbox_head``, and the neck convs carry a bias.
    """
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith(('backbone.', 'neck.')):
            out[key] = value.clone()
            m = re.match(r'^(neck\..*)\.conv\.weight$', key)
            if m:  # mmdet's DINO neck convs were saved with biases
                out[f'{m.group(1)}.conv.bias'] = torch.randn(value.shape[0])
        elif key.startswith('encoder.layers.'):
            new = key.replace('.attentions.0.', '.self_attn.').replace('.ffns.0.', '.ffn.')
            out[new] = value.clone()
        elif key.startswith('heads.det.'):
            k = key[len('heads.det.'):]
            if k == 'encoder_input_builder.level_embed':
                new = 'level_embed'
            elif k.startswith('decoder.layers.'):
                new = (k.replace('.attentions.0.', '.self_attn.')
                       .replace('.attentions.1.', '.cross_attn.').replace('.ffns.0.', '.ffn.'))
            elif k.startswith('decoder.ref_point_head.'):
                new = (k.replace('ref_point_head.0.', 'ref_point_head.layers.0.')
                       .replace('ref_point_head.2.', 'ref_point_head.layers.1.'))
            elif k.startswith('decoder.'):
                new = k
            elif k.startswith('dn_generator.'):
                new = k.replace('dn_generator.', 'dn_query_generator.')
            elif k.startswith(('cls_branches.', 'reg_branches.')):
                new = 'bbox_head.' + k
            else:  # memory_trans_fc / memory_trans_norm / query_embedding
                new = k
            out[new] = value.clone()
    return out


def test_synthetic_dino_checkpoint_loads_with_no_unexpected_keys(tmp_path):
    torch.manual_seed(0)
    source = build_model(tiny_model_cfg(('det', )))
    source.init_weights()
    ckpt = tmp_path / 'dino.pth'
    state = dino_checkpoint_from(source)
    assert any(k.startswith('encoder.layers.0.self_attn.') for k in state)
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    torch.manual_seed(1)
    target = build_model(tiny_model_cfg(('cls', 'det', 'seg')))
    report = load_task_pretrain(target, str(ckpt))
    assert report['unexpected'] == [] and report['shape_mismatch'] == []
    assert report['dropped'] and all(k.endswith('.conv.bias') for k in report['dropped'])
    # only the other heads are missing
    assert report['missing'] and all(k.startswith(('heads.cls.', 'heads.seg.'))
                                     for k in report['missing'])
    tgt = target.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(tgt[key], value), key


def test_mapping_rules_examples():
    mapped, dropped = map_dino_state_dict({
        'encoder.layers.3.self_attn.sampling_offsets.weight': 1,
        'decoder.layers.2.cross_attn.value_proj.bias': 2,
        'decoder.layers.0.self_attn.attn.in_proj_weight': 3,
        'decoder.ref_point_head.layers.1.weight': 4,
        'bbox_head.reg_branches.6.4.weight': 5,
        'dn_query_generator.label_embedding.weight': 6,
        'neck.extra_convs.0.conv.bias': 7,
        'query_embedding.weight': 8,
    })
    assert mapped == {
        'encoder.layers.3.attentions.0.sampling_offsets.weight': 1,
        'heads.det.decoder.layers.2.attentions.1.value_proj.bias': 2,
        'heads.det.decoder.layers.0.attentions.0.attn.in_proj_weight': 3,
        'heads.det.decoder.ref_point_head.2.weight': 4,
        'heads.det.reg_branches.6.4.weight': 5,
        'heads.det.dn_generator.label_embedding.weight': 6,
        'heads.det.query_embedding.weight': 8,
    }
    assert dropped == ['neck.extra_convs.0.conv.bias']
