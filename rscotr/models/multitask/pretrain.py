"""Start RSCoTr from an mmdet-format DINO Swin-T detector checkpoint ("task pretraining").

The detector's backbone and neck load directly, its transformer encoder becomes
the shared encoder, its level embedding, query selection, denoising embedding,
decoder and box branches become the det head's. Neck conv biases are dropped
(GroupNorm follows them). Missing and unexpected keys are logged.

Two layouts of the detector's transformer layers are understood: mmdet 3.x
(``self_attn``/``cross_attn``/``ffn``) and mmcv 1.x (``attentions.N``/``ffns.N``).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

from mmcv.runner import CheckpointLoader
from mmcv.utils import print_log
from torch import nn

from rscotr.utils.logger import get_root_logger

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


def map_dino_state_dict(state_dict: Dict, rules=DINO_KEY_RULES) -> Tuple[OrderedDict, List[str]]:
    """Rename a DINO detector's keys to RSCoTr's.

    Returns:
        tuple: (renamed state dict, keys dropped on purpose).
    """
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


def load_task_pretrain(model: nn.Module, checkpoint: str, map_location: str = 'cpu',
                       logger=None) -> Dict[str, List[str]]:
    """Load an mmdet-format DINO Swin-T checkpoint into an RSCoTr model.

    Args:
        model: The :class:`~rscotr.models.RSCoTr` model (not wrapped).
        checkpoint: Local path of the checkpoint (never downloaded).

    Returns:
        dict: ``missing``, ``unexpected`` and ``dropped`` key lists (also logged).
    """
    logger = logger or get_root_logger()
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location=map_location)
    state = ckpt.get('state_dict', ckpt)
    state = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())
    mapped, dropped = map_dino_state_dict(state)
    own = model.state_dict()
    shape_mismatch = [k for k, v in mapped.items() if k in own and own[k].shape != v.shape]
    loadable = OrderedDict((k, v) for k, v in mapped.items() if k not in shape_mismatch)
    result = model.load_state_dict(loadable, strict=False)
    report = dict(missing=sorted(result.missing_keys), unexpected=sorted(result.unexpected_keys),
                  dropped=sorted(dropped), shape_mismatch=sorted(shape_mismatch))
    print_log(f'task pretrain {checkpoint}: loaded {len(loadable) - len(report["unexpected"])} '
              f'tensors; {len(report["missing"])} missing, {len(report["unexpected"])} '
              f'unexpected, {len(dropped)} dropped, {len(shape_mismatch)} shape mismatches',
              logger=logger)
    for name in ('missing', 'unexpected', 'shape_mismatch'):
        if report[name]:
            print_log(f'{name} keys: {report[name]}', logger=logger)
    return report
