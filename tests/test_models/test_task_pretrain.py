"""load_task_pretrain maps DINO detector checkpoints of two layouts onto RSCoTr.

The checkpoints are written from the names each layout uses, independently of
our model and of the mapping rules: the release's single-task layout from the
release's own tensor list (``tests/data/release_parity/release_reference_keys.txt``,
with its encoder inside the detector), the mmdet 3.x layout from the tensor list of
an mmdet 3.x DINO Swin-T (``tests/data/mmdet3_dino_swin-t_keys.txt``).
"""
from pathlib import Path

import torch

from rscotr.apis.checkpoint import read_checkpoint
from rscotr.models import load_task_pretrain
from rscotr.models.multitask.pretrain import map_dino_state_dict

ROOT = Path(__file__).resolve().parents[2]
KEYS = ROOT / 'tests/data/release_parity/release_reference_keys.txt'
#: An mmdet 3.x DINO Swin-T's tensors (the file's header says how they were derived).
MMDET3_KEYS = ROOT / 'tests/data/mmdet3_dino_swin-t_keys.txt'


def release_tensors():
    return read_key_list(KEYS)


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


def read_key_list(path):
    """``{name: shape}`` of a key list file (``name (shape)`` lines, ``#`` comments)."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith('#'):
            name, shape = line.split(' ', 1)
            out[name] = tuple(int(x) for x in shape.strip('()').split(',') if x.strip())
    return out


def mmdet3_dino():
    """A DINO-4scale Swin-T detector in mmdet 3.x names (900 queries, COCO classes):
    the tensors of :data:`MMDET3_KEYS`, random."""
    return {name: torch.zeros(shape, dtype=torch.long) if name.endswith('_index')
            else torch.randn(shape) for name, shape in read_key_list(MMDET3_KEYS).items()}


def test_release_single_task_layout_loads_every_det_tensor(reference_model, tmp_path):
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


def test_mmdet3_layout_maps_every_tensor_of_a_real_key_list(reference_model, tmp_path):
    """Every tensor of an mmdet 3.x DINO Swin-T lands in a tensor of our model; only
    COCO's class tensors do not fit (80 classes, DIOR has 20) and the 900 queries are
    cut to our 600."""
    state = mmdet3_dino()
    path = tmp_path / 'dino_mmdet3.pth'
    torch.save({'state_dict': state}, path)
    model = reference_model()
    own = model.state_dict()
    report = load_task_pretrain(model, str(path))
    assert report['layout'] == 'mmdet'
    assert report['unexpected'] == [] and report['dropped'] == []
    assert report['reshaped'] == ['heads.det.query_embedding.weight: (900, 256) -> (600, 256)']
    # COCO's 80 classes do not fit DIOR's 20: reported, not loaded
    mismatched = {m.split(':')[0] for m in report['shape_mismatch']}
    class_tensors = ({f'heads.det.cls_branches.{i}.{p}' for i in range(7)
                      for p in ('weight', 'bias')}
                     | {'heads.det.dn_generator.label_embedding.weight'})
    assert mismatched == class_tensors
    # one model tensor per checkpoint tensor, none left out, none twice
    assert len(report['loaded']) + len(mismatched) == len(state)
    mapped, _ = map_dino_state_dict(state)
    assert len(mapped) == len(state) and set(mapped) <= set(own)
    for name, value in mapped.items():
        if name not in class_tensors and name != 'heads.det.query_embedding.weight':
            assert own[name].shape == value.shape, name
    loaded = model.state_dict()
    for ours, theirs in (
            ('heads.det.query_embedding.weight', None),
            ('heads.det.decoder.layers.3.attentions.1.sampling_offsets.weight',
             'decoder.layers.3.cross_attn.sampling_offsets.weight'),
            ('heads.det.decoder.layers.5.attentions.0.attn.in_proj_weight',
             'decoder.layers.5.self_attn.attn.in_proj_weight'),
            ('heads.det.decoder.ref_point_head.2.weight', 'decoder.ref_point_head.layers.1.weight'),
            ('heads.det.decoder.norm.bias', 'decoder.norm.bias'),
            ('encoder.layers.0.ffns.0.layers.1.bias', 'encoder.layers.0.ffn.layers.1.bias'),
            ('encoder.layers.5.norms.1.weight', 'encoder.layers.5.norms.1.weight'),
            ('heads.det.encoder_input_builder.level_embed', 'level_embed'),
            ('heads.det.reg_branches.6.4.weight', 'bbox_head.reg_branches.6.4.weight'),
            ('heads.det.memory_trans_norm.weight', 'memory_trans_norm.weight'),
            ('neck.extra_convs.0.gn.bias', 'neck.extra_convs.0.gn.bias'),
            ('backbone.stages.2.blocks.5.attn.w_msa.qkv.weight',
             'backbone.stages.2.blocks.5.attn.w_msa.qkv.weight')):
        expected = state['query_embedding.weight'][:600] if theirs is None else state[theirs]
        assert torch.equal(loaded[ours], expected), ours
    # missing: the other heads, the class tensors, and the stage-0 norm the 4-scale
    # detector does not have (our cls and seg heads read stage 0)
    assert sorted(report['missing']) == sorted(
        [k for k in own if k.startswith(('heads.cls.', 'heads.seg.'))] + list(class_tensors)
        + ['backbone.norm0.weight', 'backbone.norm0.bias'])
    assert report['parts']['det head'] == (len(
        [k for k in own if k.startswith('heads.det.')]) - len(class_tensors), len(
        [k for k in own if k.startswith('heads.det.')]))
    assert report['parts']['shared encoder'][0] == report['parts']['shared encoder'][1]


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
