"""Loading model weights from a checkpoint file, with one clear error for every bad file.

Every loader of weights in the project (``tools/test.py``, the inference API
and tools, the confusion-matrix plot, and training's ``load_from``,
``resume_from`` and ``--load-task-pretrain``) reads the file with
:func:`read_checkpoint` and fits it to the model with :func:`fit_state_dict`,
so that a checkpoint that cannot be used gives a :class:`CheckpointError`
naming the file and what is wrong with it, instead of a traceback from deep
inside torch or a partial load:

- the file is missing, a folder, empty or cannot be opened;
- it is truncated or corrupt (torch's zip reader or the unpickler fails);
- it is not a checkpoint: neither a state dict (names -> tensors) nor a dict
  with a ``state_dict``;
- it holds the weights of another model: tensors of another shape, or model
  tensors it does not have (weights of heads the model does not have are
  only a warning).

Checkpoints are unpickled with ``weights_only=True`` (no code in a
checkpoint file is ever run); numpy scalars and arrays in the ``meta`` of
checkpoints written by mmcv are allowed.

Checkpoints of the original RSCoTr release (children ``shared_encoder``,
``cls_head``, ``bbox_head``, ``seg_head``) are recognised by their key names
and converted by :mod:`rscotr.models.multitask.release`. ``module.``
prefixes of (Distributed)DataParallel checkpoints are removed.

Example::

    from rscotr.apis.checkpoint import CheckpointError, load_model_checkpoint
    try:
        meta = load_model_checkpoint(model, 'work_dirs/x/latest.pth')
    except CheckpointError as err:   # err.path, err.problem
        sys.exit(f'error: {err}')
"""
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..models.multitask.release import name_keys
from ..utils.io import PathLike, first_line, read_file_head
from ..utils.logger import get_root_logger

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'check_checkpoint_file', 'read_checkpoint',
    'checkpoint_state_dict', 'fit_state_dict', 'load_state_of_checkpoint',
    'load_model_checkpoint', 'check_resume_checkpoint', 'check_task_pretrain_report'
]

#: Prefix of the model's task heads in its state dict.
HEADS_PREFIX = 'heads.'
#: First bytes of a checkpoint written by ``torch.save`` (zip), or by torch < 1.6
#: (a pickle of protocol 2 or higher).
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, corrupt, not a
    checkpoint, or the weights of another model.

    Attributes:
        path: The file.
        problem: What is wrong with it (and, where it helps, what to do).
    """

    def __init__(self, path: PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file at the path (also a :class:`FileNotFoundError`, as before)."""


# ---------------------------------------------------------------------- reading
def _numpy_globals() -> List[Any]:
    """numpy types that mmcv writes into a checkpoint's meta (scores, arrays)."""
    import numpy as np
    from numpy.core.multiarray import _reconstruct, scalar
    found: List[Any] = [scalar, _reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def _torch_load(path: str, map_location: Any) -> Any:
    """``torch.load`` with ``weights_only=True``, allowing numpy data in the meta."""
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def _read_error(path: str, err: BaseException) -> CheckpointError:
    """The :class:`CheckpointError` of an exception raised by ``torch.load``."""
    import re
    text = str(err)
    detail = first_line(err)
    if 'Unsupported global' in text:
        # a valid pickle that names Python classes: never unpickled here
        names = sorted(set(re.findall(r'GLOBAL ([\w.]+)', text)))
        return CheckpointError(path, 'holds Python objects other than tensors and plain data '
                               f'({", ".join(names)}), which are not loaded for safety; save '
                               "the weights as torch.save({'state_dict': model.state_dict()}, "
                               'path)')
    unpickler = re.search(r'WeightsUnpickler error:\s*([^\n]+)', text)
    if unpickler:
        detail = unpickler.group(1).strip()
    detail = detail.split('. ')[0].rstrip('.')  # torch adds paragraphs of advice
    if ('central directory' in detail or 'zip archive' in detail or 'Ran out of input' in detail
            or isinstance(err, (EOFError, zipfile.BadZipFile))):
        return CheckpointError(path, f'truncated or corrupt checkpoint (torch cannot read it: '
                               f'{detail}); the copy or download was probably cut short: copy '
                               'it again')
    return CheckpointError(path, f'unreadable or corrupt checkpoint (torch cannot read it: '
                           f'{detail})')


def check_checkpoint_file(path: PathLike) -> None:
    """The first check of a local checkpoint file (4 bytes are read): it exists,
    is a file, opens, is not empty and starts like a PyTorch file.

    Raises:
        CheckpointError: It does not (:class:`CheckpointNotFoundError` when missing).
    """
    path = os.fspath(path)
    head = read_file_head(path, 4, CheckpointError, 'a checkpoint file',
                          missing_error=CheckpointNotFoundError)
    if not head.startswith(_ZIP_MAGIC) and head[:1] != _PICKLE_PROTO:
        raise CheckpointError(path, 'not a PyTorch checkpoint (neither the zip format of '
                              'torch.save nor a legacy pickle file)')


def read_checkpoint(path: PathLike, map_location: Any = 'cpu') -> Dict[str, Any]:
    """Read a checkpoint file and check that it holds a state dict.

    Args:
        path: Local file (``.pth``), or a URL / ``open-mmlab://`` / ... name
            that mmcv's ``CheckpointLoader`` understands.
        map_location: As for ``torch.load``.

    Returns:
        dict: The checkpoint, with its weights under ``'state_dict'`` (a bare
        state dict is returned as ``{'state_dict': it}``).

    Raises:
        CheckpointError: Missing, a folder, empty, unreadable, truncated or
            corrupt, not a PyTorch file, or not a state dict.
    """
    path = os.fspath(path)
    if '://' in path:
        from mmcv.runner import CheckpointLoader
        try:
            ckpt = CheckpointLoader.load_checkpoint(path, map_location=map_location)
        except Exception as err:  # download and unpickling errors of any kind
            raise _read_error(path, err) from None
    else:
        check_checkpoint_file(path)
        try:
            ckpt = _torch_load(path, map_location)
        except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError,
                zipfile.BadZipFile, KeyError, IndexError, TypeError, AttributeError,
                ImportError) as err:  # what a damaged pickle or zip can raise
            raise _read_error(path, err) from None
    checkpoint_state_dict(ckpt, path)  # structure check
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        return ckpt
    return {'state_dict': ckpt}


def checkpoint_state_dict(ckpt: Any, path: PathLike) -> 'OrderedDict[str, Tensor]':
    """The state dict of a loaded checkpoint, without ``module.`` prefixes.

    Raises:
        CheckpointError: ``ckpt`` is not a state dict nor a dict with a
            ``state_dict`` of tensors.
    """
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(path, f'not a checkpoint: it holds a {type(ckpt).__name__}, not '
                              "a state dict or a dict with a 'state_dict'")
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, Mapping):
        raise CheckpointError(path, f"not a checkpoint: its 'state_dict' is a "
                              f'{type(state).__name__}, not a dict of tensors')
    if not state:
        raise CheckpointError(path, 'not a checkpoint: it holds no weights (empty state dict)')
    not_tensors = [str(k) for k, v in state.items()
                   if not isinstance(k, str) or not isinstance(v, Tensor)]
    if not_tensors:
        where = "its 'state_dict'" if 'state_dict' in ckpt else 'it'
        hint = '' if 'state_dict' in ckpt else (
            f" (top-level keys: {name_keys(sorted(str(k) for k in ckpt))}; a checkpoint holds "
            "its weights under 'state_dict' or is a state dict)")
        raise CheckpointError(path, f'not a checkpoint: {where} has {len(not_tensors)} '
                              f'entries that are not tensors: {name_keys(not_tensors)}{hint}')
    from ..models.multitask.release import strip_module_prefix
    return strip_module_prefix(state)


# ---------------------------------------------------------------------- fitting
def _head_of(key: str) -> Optional[str]:
    """``'heads.det.x.y'`` -> ``'det'``; None for keys outside the heads."""
    if not key.startswith(HEADS_PREFIX):
        return None
    return key[len(HEADS_PREFIX):].split('.', 1)[0]


def _grouped(keys: Sequence[str]) -> str:
    """``'heads.det (212 tensors), backbone (3 tensors)'``: keys by their first parts."""
    groups: 'OrderedDict[str, int]' = OrderedDict()
    for key in keys:
        parts = key.split('.')
        group = '.'.join(parts[:2]) if parts[0] == 'heads' and len(parts) > 1 else parts[0]
        groups[group] = groups.get(group, 0) + 1
    return ', '.join(f'{g} ({n} tensor{"s" if n > 1 else ""})' for g, n in groups.items())


def fit_state_dict(model: nn.Module, state: Mapping[str, Tensor], path: PathLike,
                   logger=None) -> 'OrderedDict[str, Tensor]':
    """The tensors of ``state`` that ``model`` takes, in the model's names.

    A release state dict (:func:`~rscotr.models.multitask.release.is_release_state_dict`)
    is converted first (logged). Tensors of heads the model does not have are
    left out with a warning.

    Args:
        model: The model (a DataParallel wrapper is looked through).
        state: The checkpoint's state dict (``module.`` prefixes allowed).
        path: The checkpoint's name, for messages.
        logger: Logger (default: the root logger).

    Returns:
        OrderedDict: A state dict with exactly the model's tensor names and shapes.

    Raises:
        CheckpointError: Tensors of another shape, model tensors the
            checkpoint lacks, or tensors the model has no place for.
    """
    from ..models.multitask.release import (ReleaseCheckpointError, convert_release_state_dict,
                                            fit_report, is_release_state_dict, misfit_problems,
                                            release_to_ours, strip_module_prefix)
    logger = logger or get_root_logger()
    path = os.fspath(path)
    model = getattr(model, 'module', model)
    own = model.state_dict()
    heads = {_head_of(k) for k in own} - {None}
    state = strip_module_prefix(state)
    if is_release_state_dict(state):
        other_heads = [k for k in state
                       if _head_of(release_to_ours(k) or '') not in (None, *heads)]
        state = OrderedDict((k, v) for k, v in state.items() if k not in set(other_heads))
        try:
            state = convert_release_state_dict(state, own, source=path)
        except ReleaseCheckpointError as err:
            problem = str(err)
            if problem.startswith(path + ': '):
                problem = problem[len(path) + 2:]
            raise CheckpointError(path, problem) from None
        logger.info(f'{path}: recognised as a checkpoint of the original RSCoTr release by its '
                    f'key names (shared_encoder, cls_head, bbox_head, seg_head); converted '
                    f'{len(state)} tensors to this model\'s names')
        _warn_other_heads(path, [release_to_ours(k) for k in other_heads], logger)
        return state
    report = fit_report(state, own)
    other_heads = [k for k in report['unexpected'] if _head_of(k) not in (None, *heads)]
    unexpected = [k for k in report['unexpected'] if k not in set(other_heads)]
    problems = misfit_problems(dict(report, unexpected=unexpected), group=_grouped)
    if problems:
        raise CheckpointError(path, 'the checkpoint is of another model: ' + '; '.join(problems)
                              + '; use the config the checkpoint was trained with')
    _warn_other_heads(path, other_heads, logger)
    return OrderedDict((k, v) for k, v in state.items() if k in own)


def _warn_other_heads(path: str, keys: Sequence[str], logger) -> None:
    """Log the weights of heads the model does not have (left out, not an error)."""
    if keys:
        absent = sorted({_head_of(k) for k in keys})
        logger.warning(f'{path}: weights of head(s) {absent} that the model does not have '
                       f'are not loaded ({len(keys)} tensors)')


def load_model_checkpoint(model: nn.Module, path: PathLike, map_location: Any = 'cpu',
                          logger=None) -> Dict[str, Any]:
    """Load a checkpoint's weights into ``model``, refusing any file that does not fit.

    Args:
        model: The model (a DataParallel wrapper is looked through).
        path: Checkpoint file (or URL, see :func:`read_checkpoint`).
        map_location: As for ``torch.load``.
        logger: Logger (default: the root logger).

    Returns:
        dict: The checkpoint's ``meta`` (``{}`` if it has none).

    Raises:
        CheckpointError: The file cannot be read, is not a checkpoint or
            holds the weights of another model (see the module docstring);
            the model is left unchanged.
    """
    path = os.fspath(path)
    return load_state_of_checkpoint(model, read_checkpoint(path, map_location), path, logger)


def load_state_of_checkpoint(model: nn.Module, ckpt: Mapping[str, Any], path: PathLike,
                             logger=None) -> Dict[str, Any]:
    """Load the weights of a checkpoint already read by :func:`read_checkpoint`.

    Args:
        model: The model (a DataParallel wrapper is looked through).
        ckpt: The checkpoint.
        path: Its file, for messages.
        logger: Logger (default: the root logger).

    Returns:
        dict: The checkpoint's ``meta`` (``{}`` if it has none).

    Raises:
        CheckpointError: The weights are of another model (the model is left
            unchanged).
    """
    logger = logger or get_root_logger()
    path = os.fspath(path)
    state = fit_state_dict(model, checkpoint_state_dict(ckpt, path), path, logger)
    getattr(model, 'module', model).load_state_dict(state, strict=True)
    logger.info(f'loaded {len(state)} tensors from {path}')
    meta = ckpt.get('meta')
    return dict(meta) if isinstance(meta, Mapping) else {}


def check_resume_checkpoint(model: nn.Module, checkpoint: Union[PathLike, Mapping[str, Any]],
                            logger=None, path: Optional[PathLike] = None) -> Dict[str, Any]:
    """Check that training can resume from a checkpoint.

    A checkpoint to resume from must fit the model and hold the iteration it
    was saved at (``meta['iter']`` and ``meta['epoch']``, as the runner saves).

    Args:
        model: The model.
        checkpoint: The file, or the checkpoint already read (then ``path``
            names its file).
        logger: Logger (default: the root logger).
        path: The file of an already read ``checkpoint``.

    Returns:
        dict: The checkpoint (read once: resume from it).

    Raises:
        CheckpointError: It cannot be read, does not fit the model, or is a
            weights-only file.
    """
    if isinstance(checkpoint, Mapping):
        ckpt, path = checkpoint, os.fspath(path if path is not None else '<checkpoint>')
    else:
        path = os.fspath(checkpoint)
        ckpt = read_checkpoint(path)
    fit_state_dict(model, checkpoint_state_dict(ckpt, path), path, logger)
    meta = ckpt.get('meta')
    missing = [k for k in ('iter', 'epoch') if not isinstance(meta, Mapping) or k not in meta]
    if missing:
        raise CheckpointError(path, f"cannot resume: the checkpoint has no meta {missing} (it "
                              'holds weights only); resume from a checkpoint saved by '
                              'tools/train.py, or start from these weights with '
                              f"--cfg-options load_from={path}")
    return dict(ckpt)




def check_task_pretrain_report(path: PathLike, report: Mapping[str, Sequence[str]],
                               num_model_tensors: int, logger=None,
                               head: str = 'det') -> Tuple[int, int]:
    """Refuse a task-pretraining checkpoint that does not fit the model.

    Class branches and the denoising label embedding of another number of
    classes (e.g. a COCO detector) are not loaded and only logged; any other
    tensor of another shape means another model.

    Args:
        path: The checkpoint.
        report: ``missing`` / ``unexpected`` / ``shape_mismatch`` key lists
            returned by :func:`~rscotr.models.load_task_pretrain` (mismatches as
            ``'name: checkpoint (..) vs model (..)'``).
        num_model_tensors: Tensors in the model's state dict.
        logger: Logger (default: the root logger).
        head: The detection head that took the detector's head.

    Returns:
        tuple: (tensors loaded, model tensors).

    Raises:
        CheckpointError: Tensors of another shape (another backbone size or
            embedding width), or not a single tensor of the model loaded.
    """
    logger = logger or get_root_logger()
    loaded = (len(report['loaded']) if 'loaded' in report
              else num_model_tensors - len(report.get('missing', ())))
    mismatches = list(report.get('shape_mismatch', ()))
    from ..models.multitask.pretrain import may_differ
    classes = [m for m in mismatches if m.split(':')[0].startswith(may_differ('class_count', head))]
    others = [m for m in mismatches if m not in classes]
    if others:
        raise CheckpointError(path, f'not a DINO Swin-T checkpoint of this model\'s sizes: '
                              f'{len(others)} tensor(s) of another shape '
                              f'({name_keys(others, 4)})')
    if classes:
        logger.warning(f'{path}: the detector was trained for another number of classes: '
                       f'{len(classes)} class-branch / label-embedding tensors keep their '
                       f'initial values ({name_keys(classes, 2)})')
    if loaded <= 0:
        raise CheckpointError(path, 'no tensor of the checkpoint has a place in the model '
                              f'(its keys: {name_keys(report.get("unexpected", ()), 4)}); '
                              '--load-task-pretrain takes an mmdet DINO Swin-T checkpoint')
    return loaded, num_model_tensors
