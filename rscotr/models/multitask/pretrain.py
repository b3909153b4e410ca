"""Start RSCoTr from a DINO Swin-T detector checkpoint ("task pretraining").

The detector's backbone and neck load directly, its transformer encoder becomes
the shared encoder, its level embedding, query selection, denoising embedding,
decoder and box branches become the det head's. Neck conv biases are dropped
(GroupNorm follows them). Loaded, missing, unexpected, reshaped and
mismatched keys are reported.

Four layouts are understood, recognised by their key names:

- this project's own (``heads.det.*``): a detection-only run of our model,
  e.g. stage 1 of the paper's run
  (``configs/single_task/rscotr_swin-t_stage1_50e_dior.py``; README:
  Reproducing the paper), whose encoder already is the shared encoder: the
  keys are taken as they are;
- the release's single-task DINO (``bbox_head.transformer.encoder.*``,
  ``bbox_head.transformer.decoder.*``, ...): the encoder becomes the shared
  encoder and every other key keeps its release name, mapped onto ours by
  :mod:`rscotr.models.multitask.release`;
- mmdet 3.x (``encoder.layers.N.self_attn``, ``decoder.layers.N.cross_attn``,
  ``bbox_head.cls_branches``, ``dn_query_generator``, 900 content queries:
  the first ``num_query`` are kept);
- the same names with mmcv 1.x layer parts (``attentions.N``/``ffns.N``).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple, Union

from mmcv.utils import print_log
from torch import nn

from ...utils.logger import get_root_logger
from .release import strip_module_prefix

#: (pattern, replacement) applied in order to every key of the checkpoint; the
#: first matching rule wins. ``None`` as replacement drops the key.
DINO_KEY_RULES: List[Tuple[str, object]] = [
    (r'^neck\.(.*)\.conv\.bias$', None),
    (r'^(backbone|neck)\.(.*)$', r'\1.\2'),
    # transformer layers: mmdet 3.x names -> mmcv 1.x BaseTransformerLayer names
    (r'^encoder\.layers\.(\d+)\.self_attn\.(.*)$', r'encoder.layers.\1.attentions.0.\2'),
    (r'^encoder\.layers\.(\d+)\.ffn\.(.*)$', r'encoder.layers.\1.ffns.0.\2'),
    (r'^encoder\.(.*)$', r'encoder.\1'),
    (r'^level_embed$', r'heads.det.encoder_input_builder.level_embed'),
    (r'^decoder\.layers\.(\d+)\.self_attn\.(.*)$', r'heads.det.decoder.layers.\1.attentions.0.\2'),
    (r'^decoder\.layers\.(\d+)\.cross_attn\.(.*)$', r'heads.det.decoder.layers.\1.attentions.1.\2'),
    (r'^decoder\.layers\.(\d+)\.ffn\.(.*)$', r'heads.det.decoder.layers.\1.ffns.0.\2'),
    # mmdet 3.x MLP(layers.0, layers.1) -> our Sequential(Linear, ReLU, Linear)
    (r'^decoder\.ref_point_head\.layers\.0\.(.*)$', r'heads.det.decoder.ref_point_head.0.\1'),
    (r'^decoder\.ref_point_head\.layers\.1\.(.*)$', r'heads.det.decoder.ref_point_head.2.\1'),
    (r'^decoder\.(.*)$', r'heads.det.decoder.\1'),
    (r'^bbox_head\.(.*)$', r'heads.det.\1'),
    (r'^dn_query_generator\.(.*)$', r'heads.det.dn_generator.\1'),
    (r'^(memory_trans_fc|memory_trans_norm|query_embedding)\.(.*)$', r'heads.det.\1.\2'),
]


#: Key prefix only the release's single-task DINO layout has.
RELEASE_DINO_PREFIX = 'bbox_head.transformer.'
#: Key prefix only this project's own checkpoints have.
OWN_PREFIX = 'heads.'

#: Parts of the model counted in the load report: (name in the report, key prefix).
MODEL_PARTS: Tuple[Tuple[str, str], ...] = (
    ('backbone', 'backbone.'), ('neck', 'neck.'), ('shared encoder', 'encoder.'),
    ('cls head', 'heads.cls.'), ('det head', 'heads.det.'), ('seg head', 'heads.seg.'))


def is_release_dino_state_dict(state_dict: Dict) -> bool:
    """Whether a DINO state dict uses the release's single-task layout."""
    return any(k.startswith(RELEASE_DINO_PREFIX) for k in state_dict)


def is_own_state_dict(state_dict: Dict) -> bool:
    """Whether a state dict uses this project's names (``heads.<task>.*``)."""
    return any(k.startswith(OWN_PREFIX) for k in state_dict)


def dino_layout(state_dict: Dict) -> str:
    """The layout of a DINO state dict: 'RSCoTr', 'release single-task' or 'mmdet'."""
    if is_own_state_dict(state_dict):
        return 'RSCoTr'
    return 'release single-task' if is_release_dino_state_dict(state_dict) else 'mmdet'


def map_dino_state_dict(state_dict: Dict, rules=DINO_KEY_RULES) -> Tuple[OrderedDict, List[str]]:
    """Rename a DINO detector's keys to RSCoTr's (any of the four layouts).

    Returns:
        tuple: (renamed state dict, keys dropped on purpose). A key no rule
        maps keeps its name (and so shows up as unexpected).
    """
    layout = dino_layout(state_dict)
    if layout == 'RSCoTr':
        return OrderedDict(state_dict), []
    if layout == 'release single-task':
        return _map_release_dino(state_dict)
    out, dropped = OrderedDict(), []
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if re.match(pattern, key):
                if repl is None:
                    dropped.append(key)
                else:
                    out[re.sub(pattern, repl, key)] = value
                break
        else:
            out[key] = value
    return out, dropped


def _map_release_dino(state_dict: Dict) -> Tuple[OrderedDict, List[str]]:
    """The release's single-task DINO layout -> our names (see the module docstring)."""
    from .release import release_to_ours
    out, dropped = OrderedDict(), []
    for key, value in state_dict.items():
        if re.match(r'^neck\.(.*)\.conv\.bias$', key):
            dropped.append(key)
            continue
        release_key = re.sub(r'^bbox_head\.transformer\.encoder\.', 'shared_encoder.', key)
        out[release_to_ours(release_key) or key] = value
    return out, dropped


#: The one policy for tensors of a task-pretraining checkpoint whose shape may
#: differ from the model's (``{head}``: the detection head that takes the
#: detector's head). ``sliceable``: the first dimension counts queries, and a
#: checkpoint with more queries gives its first ones (mmdet 3.x DINO has 900);
#: ``class_count``: the shape follows the number of classes, and a detector of
#: other classes (COCO's 80) leaves them at their initial values, with a warning.
#: Any other tensor of another shape is another model
#: (:func:`rscotr.apis.checkpoint.check_task_pretrain_report` refuses it).
MAY_DIFFER = dict(sliceable=('heads.{head}.query_embedding.weight', ),
                  class_count=('heads.{head}.cls_branches.',
                               'heads.{head}.dn_generator.label_embedding.'))


def may_differ(kind: str, head: str = 'det') -> Tuple[str, ...]:
    """The key prefixes of :data:`MAY_DIFFER` ``kind`` for the detection head ``head``."""
    return tuple(prefix.format(head=head) for prefix in MAY_DIFFER[kind])


def retarget_head(state: Mapping, head: str, source_head: str = 'det') -> 'OrderedDict':
    """``heads.<source_head>.*`` keys renamed ``heads.<head>.*`` (other keys as they are)."""
    old, new = f'{OWN_PREFIX}{source_head}.', f'{OWN_PREFIX}{head}.'
    return OrderedDict((new + k[len(old):] if k.startswith(old) else k, v)
                       for k, v in state.items())


def load_task_pretrain(model: nn.Module, checkpoint: Union[str, Mapping],
                       map_location: str = 'cpu', logger=None,
                       source: Optional[str] = None, head: str = 'det') -> Dict[str, object]:
    """Load a DINO Swin-T detector checkpoint into an RSCoTr model.

    Args:
        model: The :class:`~rscotr.models.multitask.RSCoTr` model (not wrapped).
        checkpoint: Local path of the checkpoint (never downloaded), or the
            checkpoint already read (a dict with ``state_dict``, or a state dict).
        source: Its name in the log (default: the path).
        head: The detection head that takes the detector's head (default
            ``det``; any named detection head of a model with several).

    Raises:
        ValueError: ``head`` is not a detection head of the model.

    Returns:
        dict: ``loaded``, ``missing``, ``unexpected``, ``dropped`` (neck conv
        biases), ``reshaped`` (query tensors cut to the model's number of
        queries, ``'name: (900, 256) -> (600, 256)'``) and ``shape_mismatch``
        (not loaded) key lists, ``layout`` (see :func:`dino_layout`) and
        ``parts``: ``{part: (tensors loaded, tensors of the model)}`` for the
        parts of :data:`MODEL_PARTS` the model has (``'shared encoder'``: the
        detector's encoder), all logged.
    """
    logger = logger or get_root_logger()
    heads = getattr(model, 'heads', {})
    if head not in heads or getattr(heads[head], 'task', None) != 'det':
        det_heads = [n for n, h in heads.items() if getattr(h, 'task', None) == 'det']
        raise ValueError(f'--load-task-pretrain: the model has no detection head {head!r} '
                       f'(detection heads: {det_heads})')
    if isinstance(checkpoint, Mapping):
        ckpt = checkpoint
    else:  # the one reader of weight files (exists, not truncated, a checkpoint)
        from ...apis.checkpoint import read_checkpoint
        source = source or checkpoint
        ckpt = read_checkpoint(checkpoint, map_location=map_location)
    state = strip_module_prefix(ckpt.get('state_dict', ckpt))
    layout = dino_layout(state)
    mapped, dropped = map_dino_state_dict(state)
    if head != 'det':
        mapped = retarget_head(mapped, head)
    own = model.state_dict()
    reshaped = []
    for key in may_differ('sliceable', head):
        value = mapped.get(key)
        if (value is not None and key in own and value.dim() == own[key].dim()
                and value.shape[0] > own[key].shape[0] and value.shape[1:] == own[key].shape[1:]):
            mapped[key] = value[:own[key].shape[0]]
            reshaped.append(f'{key}: {tuple(value.shape)} -> {tuple(own[key].shape)}')
    shape_mismatch = [k for k, v in mapped.items() if k in own and own[k].shape != v.shape]
    loadable = OrderedDict((k, v) for k, v in mapped.items() if k not in shape_mismatch)
    result = model.load_state_dict(loadable, strict=False)
    unexpected = set(result.unexpected_keys)
    loaded = sorted(k for k in loadable if k not in unexpected)
    report = dict(loaded=loaded,
                  missing=sorted(result.missing_keys), unexpected=sorted(unexpected),
                  dropped=sorted(dropped), reshaped=sorted(reshaped),
                  shape_mismatch=sorted(f'{k}: checkpoint {tuple(mapped[k].shape)} vs model '
                                        f'{tuple(own[k].shape)}' for k in shape_mismatch),
                  layout=layout, parts=_parts_loaded(own, loaded))
    print_log(f'task pretrain {source or "checkpoint"} ({layout} layout): '
              f'loaded {len(report["loaded"])} '
              f'tensors; {len(report["missing"])} missing, {len(report["unexpected"])} '
              f'unexpected, {len(dropped)} dropped, {len(reshaped)} reshaped, '
              f'{len(shape_mismatch)} shape mismatches; by part: '
              + ', '.join(f'{part} {n}/{total}' for part, (n, total) in report['parts'].items()),
              logger=logger)
    for name in ('missing', 'unexpected', 'reshaped', 'shape_mismatch'):
        if report[name]:
            print_log(f'{name} keys: {report[name]}', logger=logger)
    return report


def _parts_loaded(own: Mapping, loaded) -> 'OrderedDict[str, Tuple[int, int]]':
    """``{part: (tensors loaded, tensors of the model)}`` of the parts the model has."""
    loaded = set(loaded)
    parts = OrderedDict()
    for part, prefix in MODEL_PARTS:
        names = [k for k in own if k.startswith(prefix)]
        if names:
            parts[part] = (sum(k in loaded for k in names), len(names))
    return parts
