"""load_task_pretrain maps DINO detector checkpoints of two layouts onto RSCoTr.

The checkpoints are written from the names each layout uses, independently of
our model and of the mapping rules: the release's single-task layout from the
release's own tensor list (``tests/data/release_parity/release_reference_keys.txt``,
with its encoder inside the detector), the mmdet 3.x layout from mmdet 3.x's
DINO module names.
"""
from pathlib import Path

import torch
from mmcv import Config

from rscotr.apis.checkpoint import read_checkpoint
from rscotr.models import build_model, load_task_pretrain
from rscotr.models.multitask.pretrain import map_dino_state_dict

ROOT = Path(__file__).resolve().parents[2]
KEYS = ROOT / 'tests/data/release_parity/release_reference_keys.txt'
REFERENCE = ROOT / 'configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py'


def reference_model():
    cfg = Config.fromfile(str(REFERENCE))
    cfg.model.backbone.init_cfg = None
    return build_model(cfg.model)


def release_tensors():
    out = {}
    for line in KEYS.read_text().splitlines():
        name, shape = line.split(' ', 1)
        out[name] = tuple(int(x) for x in shape.strip('()').split(',') if x.strip())
    return out


def release_single_task_dino():
    """The release's single-task DINO: the MTL's det parts, the encoder inside the
    detector's transformer, neck convs saved with biases."""
    state = {}
    for name, shape in release_tensors().items():
        if name.startswith(('cls_head.', 'seg_head.')):
            continue
        if name.startswith('shared_encoder.'):
            name = 'bbox_head.transformer.encoder.' + name[len('shared_encoder.'):]
        state[name] = torch.randn(shape) if 'index' not in name else torch.zeros(
            shape, dtype=torch.long)
        if name.startswith('neck.') and name.endswith('.conv.weight'):
            state[name[:-len('weight')] + 'bias'] = torch.randn(shape[0])
    return state


def mmdet3_dino(num_queries=900, num_classes=80, layers=6, embed=256, ffn=2048):
    """A DINO-4scale Swin-T detector in mmdet 3.x names (900 queries, COCO classes)."""
    state = {n: torch.randn(s) for n, s in release_tensors().items()
             if n.startswith(('backbone.', 'neck.')) and 'index' not in n}
    state.update({n: torch.zeros(s, dtype=torch.long) for n, s in release_tensors().items()
                  if n.startswith('backbone.') and 'index' in n})
    msda = dict(sampling_offsets=(embed, embed), attention_weights=(128, embed),
                value_proj=(embed, embed), output_proj=(embed, embed))
    for i in range(layers):
        for part, (o, n) in msda.items():
            state[f'encoder.layers.{i}.self_attn.{part}.weight'] = torch.randn(o, n)
            state[f'encoder.layers.{i}.self_attn.{part}.bias'] = torch.randn(o)
            state[f'decoder.layers.{i}.cross_attn.{part}.weight'] = torch.randn(o, n)
            state[f'decoder.layers.{i}.cross_attn.{part}.bias'] = torch.randn(o)
        state[f'decoder.layers.{i}.self_attn.attn.in_proj_weight'] = torch.randn(3 * embed, embed)
        state[f'decoder.layers.{i}.self_attn.attn.in_proj_bias'] = torch.randn(3 * embed)
        state[f'decoder.layers.{i}.self_attn.attn.out_proj.weight'] = torch.randn(embed, embed)
        state[f'decoder.layers.{i}.self_attn.attn.out_proj.bias'] = torch.randn(embed)
        for coder, norms in (('encoder', 2), ('decoder', 3)):
            state[f'{coder}.layers.{i}.ffn.layers.0.0.weight'] = torch.randn(ffn, embed)
            state[f'{coder}.layers.{i}.ffn.layers.0.0.bias'] = torch.randn(ffn)
            state[f'{coder}.layers.{i}.ffn.layers.1.weight'] = torch.randn(embed, ffn)
            state[f'{coder}.layers.{i}.ffn.layers.1.bias'] = torch.randn(embed)
            for j in range(norms):
                state[f'{coder}.layers.{i}.norms.{j}.weight'] = torch.randn(embed)
                state[f'{coder}.layers.{i}.norms.{j}.bias'] = torch.randn(embed)
    state['decoder.ref_point_head.layers.0.weight'] = torch.randn(embed, 2 * embed)
    state['decoder.ref_point_head.layers.0.bias'] = torch.randn(embed)
    state['decoder.ref_point_head.layers.1.weight'] = torch.randn(embed, embed)
    state['decoder.ref_point_head.layers.1.bias'] = torch.randn(embed)
    state['decoder.norm.weight'] = torch.randn(embed)
    state['decoder.norm.bias'] = torch.randn(embed)
    state['level_embed'] = torch.randn(4, embed)
    state['query_embedding.weight'] = torch.randn(num_queries, embed)
    state['memory_trans_fc.weight'] = torch.randn(embed, embed)
    state['memory_trans_fc.bias'] = torch.randn(embed)
    state['memory_trans_norm.weight'] = torch.randn(embed)
    state['memory_trans_norm.bias'] = torch.randn(embed)
    state['dn_query_generator.label_embedding.weight'] = torch.randn(num_classes, embed)
    for i in range(layers + 1):
        state[f'bbox_head.cls_branches.{i}.weight'] = torch.randn(num_classes, embed)
        state[f'bbox_head.cls_branches.{i}.bias'] = torch.randn(num_classes)
        for j, out in ((0, embed), (2, embed), (4, 4)):
            state[f'bbox_head.reg_branches.{i}.{j}.weight'] = torch.randn(out, embed)
            state[f'bbox_head.reg_branches.{i}.{j}.bias'] = torch.randn(out)
    return state


def test_release_single_task_layout_loads_every_det_tensor(tmp_path):
    state = release_single_task_dino()
    path = tmp_path / 'dino_release.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    model = reference_model()
    report = load_task_pretrain(model, str(path))
    assert report['unexpected'] == [] and report['shape_mismatch'] == []
    assert report['reshaped'] == []
    assert sorted(report['dropped']) == sorted(k for k in state if k.endswith('.conv.bias'))
    # only the other heads are missing; everything else loaded
    assert report['missing'] and all(k.startswith(('heads.cls.', 'heads.seg.'))
                                     for k in report['missing'])
    own = model.state_dict()
    assert torch.equal(own['encoder.layers.5.attentions.0.value_proj.weight'],
                       state['bbox_head.transformer.encoder.layers.5.attentions.0.'
                             'value_proj.weight'])
    assert torch.equal(own['heads.det.encoder_input_builder.level_embed'],
                       state['bbox_head.transformer.level_embeds'])
    assert torch.equal(own['heads.det.dn_generator.label_embedding.weight'],
                       state['bbox_head.label_embedding.weight'])
    assert len(report['loaded']) == len(state) - len(report['dropped'])
    # the checkpoint read once by the caller (tools/train.py): the same load
    again = reference_model()
    assert load_task_pretrain(again, read_checkpoint(path), source=str(path)) == report
    assert torch.equal(again.state_dict()['heads.det.query_embedding.weight'],
                       own['heads.det.query_embedding.weight'])


def test_mmdet3_layout_slices_queries_and_reports_class_mismatch(tmp_path):
    state = mmdet3_dino()
    path = tmp_path / 'dino_mmdet3.pth'
    torch.save({'state_dict': state}, path)
    model = reference_model()
    report = load_task_pretrain(model, str(path))
    assert report['unexpected'] == []
    assert report['reshaped'] == ['heads.det.query_embedding.weight: (900, 256) -> (600, 256)']
    assert torch.equal(model.state_dict()['heads.det.query_embedding.weight'],
                       state['query_embedding.weight'][:600])
    # COCO's 80 classes do not fit DIOR's 20: reported, not loaded
    mismatched = {m.split(':')[0] for m in report['shape_mismatch']}
    assert mismatched == ({f'heads.det.cls_branches.{i}.{p}' for i in range(7)
                           for p in ('weight', 'bias')}
                          | {'heads.det.dn_generator.label_embedding.weight'})
    own = model.state_dict()
    assert torch.equal(own['heads.det.decoder.layers.3.attentions.1.sampling_offsets.weight'],
                       state['decoder.layers.3.cross_attn.sampling_offsets.weight'])
    assert torch.equal(own['heads.det.decoder.ref_point_head.2.weight'],
                       state['decoder.ref_point_head.layers.1.weight'])
    assert torch.equal(own['encoder.layers.0.ffns.0.layers.1.bias'],
                       state['encoder.layers.0.ffn.layers.1.bias'])
    det_and_shared = [k for k in own if k.startswith(('backbone.', 'neck.', 'encoder.',
                                                      'heads.det.'))]
    # missing: the other heads, and the tensors whose shapes did not fit
    assert sorted(report['missing']) == sorted(
        [k for k in own if k.startswith(('heads.cls.', 'heads.seg.'))] + list(mismatched))
    assert len(report['loaded']) == len(det_and_shared) - len(mismatched)


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
