"""Reading a config file and ``--cfg-options``, with one line per mistake.

mmcv's ``Config.fromfile`` reports a mistake in a config file as a traceback
from its own code, often without the user's file or line (an undefined
``{{_base_.x}}`` is a bare ``KeyError: 'x'``; a syntax error can end with a
``FileNotFoundError`` about mmcv's temporary copy of the file), and
``merge_from_dict`` adds a misspelt ``--cfg-options`` key silently.
:func:`load_config` reads the file with mmcv and, when that fails, finds the
mistake itself and raises one :class:`ConfigError` naming the file, the line
and what to change:

- the file (or a ``_base_`` file) is missing, a folder, or not UTF-8 text;
- a syntax error (``path:line``);
- a ``_base_`` entry that names no file (``path:line`` of the entry);
- a ``{{_base_.x}}`` that none of the file's bases defines;
- two bases that define the same key;
- an error raised by the config's own code (a ``NameError``, ...), with the
  file (the config or the base that fails) and the line.

``--cfg-options`` keys must exist in the config (every part of a dotted key
but the last, and a top-level key, unless it is one of the run settings the
tools read, :data:`RUN_KEYS`); a word where the config has a number or
True/False is refused, naming the key.
"""
import ast
import difflib
import os
import os.path as osp
import re
import tempfile
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .io import first_line

__all__ = ['ConfigError', 'load_config', 'check_cfg_options', 'problem_lines', 'RUN_KEYS']


class ConfigError(ValueError):
    """A config (file, ``--cfg-options`` or settings) that cannot be used; the
    message lists every problem, one line each, with what to change."""


def problem_lines(err: BaseException) -> List[str]:
    """The problems of a :class:`ConfigError` (or of any error), one line each.

    A message ``'header:\n  - problem\n  - problem'`` (as
    :func:`rscotr.apis.checks.check_config` raises) gives its problems; any
    other message gives its lines.
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(':') and all(x.startswith('- ') for x in lines[1:]):
        return [line[2:] for line in lines[1:]]
    return lines or [type(err).__name__]


#: Top-level keys the tools and :func:`rscotr.apis.train_model` read with a
#: default, so that ``--cfg-options`` may set them on a config that lacks them.
RUN_KEYS = ('load_from', 'resume_from', 'mixed_precision', 'nonfinite_loss', 'inference',
            'evaluation', 'seed', 'device', 'work_dir', 'find_unused_parameters',
            'dist_params', 'log_level', 'custom_hooks', 'momentum_config',
            'checkpoint_config', 'optimizer_config', 'lr_config', 'iteration_strategy',
            'workflow', 'mp_start_method', 'opencv_num_threads', 'auto_scale_lr',
            'log_config')

_BASE_VAR = re.compile(r'\{\{\s*_base_\.([\w.]+)\s*\}\}')
_CONFIG_EXTS = ('.py', '.json', '.yaml', '.yml')


def _line_of(text: str, needle: str) -> Optional[int]:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    pos = text.find(needle)
    return None if pos < 0 else text.count('\n', 0, pos) + 1


def _where(path: str, line: Optional[int]) -> str:
    return f'{path}:{line}' if line else path


def _read_text(path: str, what: str) -> str:
    if not osp.exists(path):
        raise ConfigError(f'{path}: {what} not found; check the path')
    if osp.isdir(path):
        raise ConfigError(f'{path}: {what} is a folder; give the config file (.py)')
    if osp.splitext(path)[1] not in _CONFIG_EXTS:
        raise ConfigError(f'{path}: {what} must be a .py (or .json / .yaml) file')
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise ConfigError(f'{path}: {what} is not UTF-8 text ({err.reason} at byte '
                          f'{err.start}); save it as UTF-8') from None
    except OSError as err:
        raise ConfigError(f'{path}: {what} cannot be read ({err.strerror or err})') from None


def _bases(path: str, text: str) -> List[Tuple[str, int]]:
    """``[(base file as written, line)]`` of a parsed ``.py`` config (literal ``_base_`` only)."""
    tree = ast.parse(text)
    found: List[Tuple[str, int]] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets)):
            continue
        values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [
            node.value]
        for value in values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((value.value, value.lineno))
    return found


def _check_files(path: str, what: str = 'config file', seen: Optional[set] = None) -> None:
    """Existence, text and syntax of ``path`` and of its ``_base_`` files, recursively."""
    seen = set() if seen is None else seen
    real = osp.realpath(path)
    if real in seen:
        return
    seen.add(real)
    text = _read_text(path, what)
    if not path.endswith('.py'):
        return
    try:
        bases = _bases(path, text)
    except SyntaxError as err:
        line = (err.text or '').strip()
        raise ConfigError(f'{_where(path, err.lineno)}: syntax error ({err.msg})'
                          + (f' in {line!r}' if line else '') + '; fix that line') from None
    for base, line in bases:
        base_path = osp.join(osp.dirname(path), base)
        if not osp.isfile(base_path):
            raise ConfigError(f'{_where(path, line)}: _base_ file {base!r} not found (looked '
                              f'for {osp.normpath(base_path)}); _base_ paths are relative to '
                              'the folder of the config that names them')
        _check_files(base_path, f'_base_ file of {path}', seen)


def _load(path: str):
    from mmcv import Config
    return Config.fromfile(path)


def _undefined_base_var(path: str) -> Optional[str]:
    """The problem of the first ``{{_base_.x}}`` of ``path`` (or of its bases) that
    its bases do not define; None when they all resolve."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if not path.endswith('.py'):
        return None
    bases = [osp.join(osp.dirname(path), b) for b, _ in _bases(path, text)]
    for base in bases:
        problem = _undefined_base_var(base)
        if problem:
            return problem
    merged: Dict[str, Any] = {}
    for base in bases:
        try:
            merged.update(_load(base)._cfg_dict.to_dict())
        except Exception as err:  # noqa: BLE001  (reported by the caller)
            _close_temporary_files(err)
            return None
    for match in _BASE_VAR.finditer(text):
        value: Any = merged
        for part in match.group(1).split('.'):
            if not isinstance(value, dict) or part not in value:
                line = text.count('\n', 0, match.start()) + 1
                names = ', '.join(osp.basename(b) for b in bases) or 'none'
                return (f'{path}:{line}: {match.group(0)} is not defined by the _base_ files '
                        f'({names}); define {match.group(1)!r} in one of them or fix the name')
            value = value[part]
    return None


def _failing_file(path: str) -> str:
    """The first file of ``path``'s base tree (bases first) that mmcv cannot load alone."""
    if path.endswith('.py'):
        with open(path, encoding='utf-8') as f:
            bases = [osp.join(osp.dirname(path), b) for b, _ in _bases(path, f.read())]
        for base in bases:
            try:
                _load(base)
            except Exception as err:  # noqa: BLE001
                _close_temporary_files(err)
                return _failing_file(base)
    return path


def _code_error_line(err: BaseException) -> Optional[int]:
    """Line of the innermost frame in mmcv's temporary copy of a config (same lines)."""
    tmp = osp.realpath(tempfile.gettempdir())
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if osp.realpath(frame.filename).startswith(tmp + os.sep):
            line = frame.lineno
    return line


def _close_temporary_files(err: BaseException) -> None:
    """Close mmcv's temporary copies of the config files in the frames of ``err``.

    ``Config.fromfile`` leaves a temporary file object open when the config
    fails; its folder is removed at once, so the object's finaliser fails
    later (an "Exception ignored ... FileNotFoundError" traceback on stderr,
    at a random moment) unless it is closed here.
    """
    tb = err.__traceback__
    while tb is not None:
        temp = tb.tb_frame.f_locals.get('temp_config_file')
        if temp is not None and hasattr(temp, 'close'):
            try:
                temp.close()
            except OSError:  # its folder is gone already
                pass
        tb = tb.tb_next


def _diagnose(path: str, err: BaseException) -> ConfigError:
    """The :class:`ConfigError` of an exception raised by ``Config.fromfile(path)``."""
    if isinstance(err, KeyError) and 'Duplicate key' in str(err):
        keys = sorted(re.findall(r"'(\w+)'", str(err).split('Duplicate keys:')[-1]))
        return ConfigError(f'{path}: several _base_ files define {keys}; mmcv refuses '
                           'duplicate keys among bases: keep each key in one base (datasets '
                           'use prefixed names such as resisc_train_pipeline)')
    try:
        problem = _undefined_base_var(path)
    except Exception:  # noqa: BLE001  (the diagnosis must not hide the error)
        problem = None
    if problem:
        return ConfigError(problem)
    culprit = _failing_file(path)
    line = _code_error_line(err)
    return ConfigError(f'{_where(culprit, line)}: the config cannot be loaded '
                       f'({type(err).__name__}: {first_line(err)}); fix that line')


def load_config(path: str, cfg_options: Optional[Dict] = None,
                required: Sequence[str] = ()):
    """The config file ``path`` (``mmcv.Config``) with ``--cfg-options`` merged in.

    Args:
        path: Config file.
        cfg_options: ``{dotted key: value}`` from ``--cfg-options``.
        required: Top-level keys the config must have.

    Raises:
        ConfigError: One line naming the file (and line) or the key: see the
            module docstring.
    """
    path = os.fspath(path)
    _check_files(path)
    try:
        cfg = _load(path)
    except Exception as err:  # noqa: BLE001  (any error of the config's own code)
        _close_temporary_files(err)
        raise _diagnose(path, err) from None
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:  # noqa: BLE001
            raise ConfigError(f'--cfg-options: cannot be merged into {path} '
                              f'({type(err).__name__}: {first_line(err)})') from None
    missing = [key for key in required if not cfg.get(key)]
    if missing:
        raise ConfigError(f'{path}: the config has no {missing}; add them')
    return cfg


def _kind(value: Any) -> Optional[str]:
    """A coarse kind for comparing a ``--cfg-options`` value with the config's value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 'True/False'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, (list, tuple)):
        return 'a list'
    if isinstance(value, dict):
        return 'a dict'
    return None


def check_cfg_options(cfg, cfg_options: Dict) -> None:
    """Refuse ``--cfg-options`` keys the config does not have and values of another kind.

    Args:
        cfg: The config (``mmcv.Config``) before the options are merged.
        cfg_options: ``{dotted key: value}``.

    Raises:
        ConfigError: One line per key: see the module docstring.
    """
    problems: List[str] = []
    root = cfg._cfg_dict.to_dict() if hasattr(cfg, '_cfg_dict') else dict(cfg)
    for key, value in cfg_options.items():
        parts = str(key).split('.')
        node: Any = root
        for depth, part in enumerate(parts):
            here = '.'.join(parts[:depth + 1])
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    problems.append(f'--cfg-options {key}: {".".join(parts[:depth])} has '
                                    f'{len(node)} items, no item {part}')
                    break
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                problems.append(f'--cfg-options {key}: {".".join(parts[:depth])} is '
                                f'{_kind(node) or type(node).__name__}, not a dict: it has no '
                                f'key {part!r}')
                break
            if part not in node:
                last = depth == len(parts) - 1
                if depth == 0 and part in RUN_KEYS:
                    break  # a run setting the config leaves at its default
                if last and depth > 0:
                    break  # a new option of an existing dict (e.g. a constructor argument)
                close = difflib.get_close_matches(part, [str(k) for k in node], n=1)
                hint = f'did you mean {".".join(parts[:depth] + close)!r}?' if close else (
                    f'the keys there are {sorted(str(k) for k in node)[:12]}')
                problems.append(f'--cfg-options {key}: the config has no {here!r}; {hint}')
                break
            if depth == len(parts) - 1:
                old, new = _kind(node[part]), _kind(value)
                if new == 'a string' and old in ('a number', 'True/False'):
                    shown = repr(node[part])
                    shown = shown if len(shown) <= 40 else shown[:37] + '...'
                    problems.append(f'--cfg-options {key}={value!r}: the config has {shown} '
                                    f'there ({old}); give {old}')
            node = node[part]
    if problems:
        raise ConfigError('\n'.join(problems))
