"""Checkpoints of the original RSCoTr release, mapped onto this project's model.

The released model (class ``MTL``) has the children ``backbone``, ``neck``,
``shared_encoder``, ``cls_head``, ``bbox_head`` and ``seg_head``; ours has
``backbone``, ``neck``, ``encoder`` and ``heads.{cls,det,seg}``. Every tensor
of a release checkpoint has exactly one place in our model, given by
:data:`RELEASE_KEY_RULES` (the one documented mapping)::

    backbone.*                                   -> backbone.*
    neck.*                                       -> neck.*
    shared_encoder.*                             -> encoder.*
    cls_head.fc.*                                -> heads.cls.fc.*
    cls_head.pixel_decoder.level_encoding.weight -> heads.cls.encoder_input_builder.level_embed
    bbox_head.transformer.level_embeds           -> heads.det.encoder_input_builder.level_embed
    bbox_head.transformer.decoder.*              -> heads.det.decoder.*
    bbox_head.transformer.enc_output.*           -> heads.det.memory_trans_fc.*
    bbox_head.transformer.enc_output_norm.*      -> heads.det.memory_trans_norm.*
    bbox_head.transformer.query_embed.*          -> heads.det.query_embedding.*
    bbox_head.label_embedding.*                  -> heads.det.dn_generator.label_embedding.*
    bbox_head.{cls,reg}_branches.*               -> heads.det.{cls,reg}_branches.*
    seg_head.pixel_decoder.level_encoding.weight -> heads.seg.encoder_input_builder.level_embed
    seg_head.pixel_decoder.mask_feature.*        -> heads.seg.pixel_decoder.mask_feature.*
    seg_head.*                                   -> heads.seg.*

A key no rule maps is reported, never dropped silently.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

#: (pattern, replacement), first match wins.
RELEASE_KEY_RULES: List[Tuple[str, str]] = [
    (r'^(backbone|neck)\.(.+)$', r'\1.\2'),
    (r'^shared_encoder\.(.+)$', r'encoder.\1'),
    (r'^cls_head\.pixel_decoder\.level_encoding\.weight$',
     r'heads.cls.encoder_input_builder.level_embed'),
    (r'^cls_head\.(fc\..+)$', r'heads.cls.\1'),
    (r'^bbox_head\.transformer\.level_embeds$', r'heads.det.encoder_input_builder.level_embed'),
    (r'^bbox_head\.transformer\.decoder\.(.+)$', r'heads.det.decoder.\1'),
    (r'^bbox_head\.transformer\.enc_output\.(.+)$', r'heads.det.memory_trans_fc.\1'),
    (r'^bbox_head\.transformer\.enc_output_norm\.(.+)$', r'heads.det.memory_trans_norm.\1'),
    (r'^bbox_head\.transformer\.query_embed\.(.+)$', r'heads.det.query_embedding.\1'),
    (r'^bbox_head\.label_embedding\.(.+)$', r'heads.det.dn_generator.label_embedding.\1'),
    (r'^bbox_head\.((cls|reg)_branches\..+)$', r'heads.det.\1'),
    (r'^seg_head\.pixel_decoder\.level_encoding\.weight$',
     r'heads.seg.encoder_input_builder.level_embed'),
    (r'^seg_head\.pixel_decoder\.(mask_feature\..+)$', r'heads.seg.pixel_decoder.\1'),
    (r'^seg_head\.((transformer_decoder|query_embed|query_feat|level_embed|mask_embed|cls_embed)'
     r'(\..+)?)$', r'heads.seg.\1'),
]

#: Prefixes only a release state dict has (ours uses ``encoder.`` and ``heads.``).
RELEASE_PREFIXES = ('shared_encoder.', 'cls_head.', 'bbox_head.', 'seg_head.')


class ReleaseCheckpointError(ValueError):
    """A release checkpoint whose names or shapes do not fit the model."""


def strip_module_prefix(state: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Drop the ``module.`` prefix a (Distributed)DataParallel checkpoint carries."""
    return OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())


def is_release_state_dict(state: Mapping[str, object]) -> bool:
    """Whether ``state`` uses the release's names (recognised by its head prefixes)."""
    return any(k.startswith(RELEASE_PREFIXES)
               or k.startswith(tuple('module.' + p for p in RELEASE_PREFIXES))
               for k in state)


def release_to_ours(key: str) -> Optional[str]:
    """Our name of the release tensor ``key``; None when no rule maps it."""
    for pattern, repl in RELEASE_KEY_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def map_release_state_dict(state: Mapping[str, Tensor]) -> Tuple['OrderedDict[str, Tensor]',
                                                                   List[str]]:
    """Rename every tensor of a release state dict to our names.

    Returns:
        tuple: (renamed state dict, release keys that no rule maps).
    """
    out, unmapped = OrderedDict(), []
    for key, value in strip_module_prefix(state).items():
        ours = release_to_ours(key)
        if ours is None:
            unmapped.append(key)
        else:
            out[ours] = value
    return out, unmapped


def fit_report(mapped: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> Dict[str, List[str]]:
    """How a mapped state dict fits a model's own state dict.

    Returns:
        dict: ``missing`` (ours, not in the checkpoint), ``unexpected`` (in the
        checkpoint, not ours) and ``shape_mismatch`` (``'name: ckpt (..) vs
        model (..)'``) lists, each sorted.
    """
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    mismatch = sorted(f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                      for k, v in mapped.items() if k in own and tuple(v.shape)
                      != tuple(own[k].shape))
    return dict(missing=missing, unexpected=unexpected, shape_mismatch=mismatch)


def name_keys(keys: Sequence[str], limit: int = 8) -> str:
    """``'a, b, c ... (N in all)'``: the first ``limit`` of ``keys``."""
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f' ... ({len(keys)} in all)' if len(keys) > limit else '')


def misfit_problems(report: Mapping[str, Sequence[str]], unmapped: Sequence[str] = (),
                    group: Optional[Callable[[Sequence[str]], str]] = None) -> List[str]:
    """Sentences naming what keeps a state dict from fitting a model (empty: it fits).

    Args:
        report: :func:`fit_report` of the state dict.
        unmapped: Release keys that no rule maps.
        group: Summary of a key list (e.g. by module) put before the first names
            of missing and unexpected keys; None lists the names only.
    """
    def listing(keys: Sequence[str]) -> str:
        return f'{group(keys)} (first: {name_keys(keys, 4)})' if group else name_keys(keys, 12)

    problems = []
    if unmapped:
        problems.append(f'{len(unmapped)} key(s) with no place in the model: '
                        f'{name_keys(unmapped, 12)}')
    if report['shape_mismatch']:
        problems.append(f'{len(report["shape_mismatch"])} tensor(s) of another shape: '
                        f'{name_keys(report["shape_mismatch"], 4)}')
    if report['missing']:
        problems.append(f'{len(report["missing"])} model tensor(s) missing from the checkpoint: '
                        f'{listing(report["missing"])}')
    if report['unexpected']:
        problems.append(f'{len(report["unexpected"])} tensor(s) the model has no place for: '
                        f'{listing(report["unexpected"])}')
    return problems


def convert_release_state_dict(state: Mapping[str, Tensor],
                               own: Mapping[str, Tensor],
                               source: str = 'checkpoint') -> 'OrderedDict[str, Tensor]':
    """Map a release state dict onto a model, refusing anything that does not fit.

    Args:
        state: The release state dict (``module.`` prefixes allowed).
        own: The target model's ``state_dict()`` (names and shapes).
        source: Name of the checkpoint for the error message.

    Returns:
        OrderedDict: The state dict in our names, with every tensor the model has.

    Raises:
        ReleaseCheckpointError: A key no rule maps, a tensor the model lacks or
            has in another shape, or a model tensor the checkpoint lacks; the
            message names the keys.
    """
    mapped, unmapped = map_release_state_dict(state)
    problems = misfit_problems(fit_report(mapped, own), unmapped)
    if problems:
        raise ReleaseCheckpointError(f'{source}: release checkpoint does not fit the model ('
                                     + '; '.join(problems) + ')')
    return mapped


__all__ = ['RELEASE_KEY_RULES', 'ReleaseCheckpointError', 'convert_release_state_dict',
           'fit_report', 'is_release_state_dict', 'map_release_state_dict', 'misfit_problems',
           'name_keys', 'release_to_ours', 'strip_module_prefix']
