"""Mixed-precision training: autocast for the forward pass, float32 where it matters.

The config switch is the top-level key ``mixed_precision``:

* ``None`` / ``'fp32'`` (default): float32 everywhere;
* ``'bf16'`` (``'bfloat16'``): the training forward pass runs under
  ``torch.autocast`` with bfloat16 (CPU and CUDA); no loss scaling needed;
* ``'fp16'`` (``'float16'``): float16 autocast with dynamic loss scaling
  (``torch.amp.GradScaler``, in :class:`~rscotr.core.optimizer.RSCoTrOptimizerHook`);
* a dict ``dict(dtype='fp16', loss_scale=dict(init_scale=2.**16,
  growth_interval=2000))``: the same with GradScaler options.

Kept in float32 under autocast: multi-scale deformable attention (its
sampling, :func:`rscotr.ops.multi_scale_deformable_attn`) and every head's
``loss`` (matching costs, focal / GIoU / cross-entropy losses), which the
head declares with :func:`force_float32` (as mmdet's ``force_fp32``): its
inputs are cast to float32 and autocast is off.
"""
import dataclasses
import functools
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Union

import torch

from ..utils.nested import map_nested

__all__ = ['PRECISIONS', 'MixedPrecision', 'parse_mixed_precision', 'autocast',
           'to_float32', 'force_float32']

#: Names accepted for each autocast dtype (None: float32, no autocast).
PRECISIONS = {'fp32': None, 'float32': None, 'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
              'fp16': torch.float16, 'float16': torch.float16}


@dataclasses.dataclass
class MixedPrecision:
    """A parsed ``mixed_precision`` setting.

    Attributes:
        dtype: Autocast dtype (``torch.bfloat16`` / ``torch.float16``), None for float32.
        loss_scale: GradScaler keyword arguments (float16 only), else None.
    """
    dtype: Optional[torch.dtype] = None
    loss_scale: Optional[Dict[str, Any]] = None

    @property
    def name(self) -> str:
        return {None: 'fp32', torch.bfloat16: 'bf16', torch.float16: 'fp16'}[self.dtype]


def parse_mixed_precision(value: Union[None, str, dict, MixedPrecision],
                          where: str = 'mixed_precision') -> MixedPrecision:
    """Parse the ``mixed_precision`` config value (see the module doc).

    Args:
        value: None, a precision name, ``dict(dtype=..., loss_scale=...)``
            or an already parsed :class:`MixedPrecision`.
        where: The setting's name for error messages.

    Raises:
        ValueError: Anything else, naming ``where`` and the accepted values.
    """
    if isinstance(value, MixedPrecision):
        return value
    if value is None:
        return MixedPrecision()
    options: Dict[str, Any] = {}
    if isinstance(value, dict):
        options = dict(value)
        unknown = set(options) - {'dtype', 'loss_scale'}
        if unknown:
            raise ValueError(f'{where}: unknown keys {sorted(unknown)}; allowed: dtype, '
                             'loss_scale')
        value = options.get('dtype')
        if value is None:
            raise ValueError(f'{where}: give dtype, one of {sorted(PRECISIONS)}')
    if not isinstance(value, str) or value.lower() not in PRECISIONS:
        raise ValueError(f'{where}={value!r} is not a precision; use None or one of '
                         f'{sorted(PRECISIONS)}')
    dtype = PRECISIONS[value.lower()]
    loss_scale = options.get('loss_scale', 'dynamic')
    if dtype is not torch.float16:
        if 'loss_scale' in options:
            raise ValueError(f'{where}.loss_scale is for float16 only (dtype {value!r} '
                             'needs no loss scaling)')
        return MixedPrecision(dtype)
    if loss_scale == 'dynamic':
        loss_scale = {}
    if not isinstance(loss_scale, dict):
        raise ValueError(f"{where}.loss_scale={loss_scale!r}: use 'dynamic' or a dict of "
                         'torch.amp.GradScaler options (init_scale, growth_factor, '
                         'backoff_factor, growth_interval)')
    return MixedPrecision(dtype, dict(loss_scale))


def autocast(device_type: str, dtype: Optional[torch.dtype]):
    """``torch.autocast(device_type, dtype)``, or a no-op context for float32 (``dtype`` None)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


def to_float32(obj: Any) -> Any:
    """``obj`` with every float16 / bfloat16 tensor cast to float32.

    Recurses into lists, tuples (named tuples too), dicts and dataclasses;
    other tensors and objects are returned as they are. The cast is
    differentiable.
    """
    def cast(x: Any, walk) -> Any:
        if isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16):
            return x.float()
        return x

    return map_nested(obj, cast)


def force_float32(method: Callable) -> Callable:
    """Declare a method (a head's ``loss``) to run in float32 with autocast off.

    The torch-autocast counterpart of mmdet's ``force_fp32``: the decorated
    method gets float32 copies of its float16 / bfloat16 tensor arguments
    (:func:`to_float32`, differentiable casts, into lists, dicts and
    dataclasses) and runs with autocast disabled on the device of its first
    tensor argument. Without autocast and with float32 inputs it changes
    nothing. The decorated method has ``forces_float32 = True``.
    """
    @functools.wraps(method)
    def run_in_float32(self, *args, **kwargs):
        args, kwargs = to_float32(args), to_float32(kwargs)
        with torch.autocast(device_type=_device_type(args, kwargs), enabled=False):
            return method(self, *args, **kwargs)

    run_in_float32.forces_float32 = True
    return run_in_float32


def _device_type(*objs: Any) -> str:
    """The device type of the first tensor in ``objs`` ('cpu' or 'cuda')."""
    found: List[str] = []

    def note(x: Any, walk) -> Any:
        if isinstance(x, torch.Tensor):
            found.append(x.device.type)
        return x

    map_nested(objs, note)
    if found and found[0] in ('cpu', 'cuda'):
        return found[0]
    return 'cuda' if torch.cuda.is_available() else 'cpu'
