"""What the installed mmcv-full's compiled ops are, found without asking mmcv.

On a CUDA build of mmcv-full 1.7.2 with torch >= 2.10,
``mmcv.ops.get_compiling_cuda_version()`` kills the process (a segfault,
no message), and so does anything that calls it (``mmcv.utils.collect_env``).
Nothing in RSCoTr calls it. Instead:

* :func:`mmcv_ext_info` reads the compiled extension ``mmcv/_ext*.so`` as a
  file, without loading it: a CUDA build links torch's CUDA libraries
  (``libc10_cuda.so``), and the ELF ``.comment`` section names the compiler;
* :func:`mmcv_cuda_kernel_runs` runs mmcv's CUDA deformable-attention kernel
  once per GPU on tiny tensors (a call that fails with an exception on a
  build without it) and compares it with mmcv's PyTorch reference.
"""
import importlib.util
import os.path as osp
import re
from collections import Counter
from functools import lru_cache
from typing import Dict, Optional, Tuple

import torch

from ..utils.io import first_line

__all__ = ['mmcv_ext_info', 'mmcv_has_cuda_ops', 'mmcv_cuda_kernel_runs']

#: Libraries that only a CUDA build of a torch extension links.
_CUDA_LIBS = (b'libc10_cuda.so', b'libtorch_cuda.so', b'libcudart.so')


@lru_cache(maxsize=None)
def mmcv_ext_info(path: Optional[str] = None) -> Dict[str, object]:
    """Facts about mmcv's compiled extension, read from its file.

    Args:
        path: The extension file; None finds ``mmcv._ext`` (``mmcv`` is
            imported, its extension is not loaded).

    Returns:
        dict: ``path`` (str or None: not compiled), ``cuda`` (bool: links
        torch's CUDA libraries), ``compiler`` (str or None, e.g.
        ``'GCC 11.4.0'``), ``error`` (str or None: why the file could not be
        read).
    """
    info: Dict[str, object] = dict(path=None, cuda=False, compiler=None, error=None)
    if path is None:
        try:
            spec = importlib.util.find_spec('mmcv._ext')
        except (ImportError, ValueError) as err:
            info['error'] = f'{type(err).__name__}: {err}'
            return info
        if spec is None or not spec.origin or not osp.isfile(spec.origin):
            info['error'] = 'mmcv._ext not found (mmcv without compiled ops)'
            return info
        path = spec.origin
    info['path'] = path
    try:
        with open(path, 'rb') as f:
            blob = f.read()
    except OSError as err:
        info['error'] = f'{type(err).__name__}: {err}'
        return info
    info['cuda'] = any(lib in blob for lib in _CUDA_LIBS)
    # .comment entries look like b'GCC: (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0'
    versions = Counter(m.decode() for m in re.findall(rb'GCC: \([^)\x00]*\) ([0-9][0-9.]*)',
                                                      blob))
    clang = re.search(rb'clang version ([0-9][0-9.]*)', blob)
    if versions:
        info['compiler'] = 'GCC ' + versions.most_common(1)[0][0]
    elif clang:
        info['compiler'] = 'clang ' + clang.group(1).decode()
    return info


def mmcv_has_cuda_ops() -> bool:
    """Whether the installed mmcv-full was built with CUDA ops (read from its file)."""
    return bool(mmcv_ext_info()['cuda'])


#: Probe results per CUDA device index: (kernel runs, what was found).
_CUDA_PROBES: Dict[int, Tuple[bool, str]] = {}


def mmcv_cuda_kernel_runs(device: torch.device) -> Tuple[bool, str]:
    """Whether mmcv's CUDA deformable-attention kernel runs on ``device``, and why.

    Runs the kernel once per GPU on tiny inputs and compares it with the
    PyTorch reference; a build without the kernel raises an exception there
    (caught). The result is cached and logged once.

    Args:
        device: A CUDA device (``cuda`` means the current one).

    Returns:
        tuple: (usable, a sentence saying what was found).
    """
    if device.type != 'cuda' or not torch.cuda.is_available():
        return False, f'no CUDA device ({device})'
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index in _CUDA_PROBES:
        return _CUDA_PROBES[index]
    # probed even when the file says "no CUDA ops": the probe decides
    usable, found = _probe_cuda_kernel(torch.device('cuda', index))
    build = 'CUDA' if mmcv_has_cuda_ops() else 'no CUDA'
    result = (usable, f'{found} [mmcv-full build: {build} ops]')
    _CUDA_PROBES[index] = result
    from ..utils.logger import get_root_logger
    get_root_logger().info(f'multi-scale deformable attention on cuda:{index}: {result[1]}')
    return result


def _probe_cuda_kernel(device: torch.device) -> Tuple[bool, str]:
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    gen = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[4, 4], [2, 2]], dtype=torch.long)
    starts = torch.tensor([0, 16], dtype=torch.long)
    value = torch.rand(1, 20, 2, 4, generator=gen)
    locations = torch.rand(1, 3, 2, 2, 2, 2, generator=gen)
    weights = torch.rand(1, 3, 2, 2, 2, generator=gen)
    expected = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    try:
        with torch.no_grad(), torch.autocast('cuda', enabled=False):
            out = MultiScaleDeformableAttnFunction.apply(
                value.to(device), shapes.to(device), starts.to(device), locations.to(device),
                weights.to(device), 64)
            torch.cuda.synchronize(device)
    except Exception as err:  # noqa: BLE001 - any failure means: use the PyTorch path
        return False, (f"mmcv's CUDA kernel failed ({type(err).__name__}: "
                       f'{first_line(err)}): PyTorch path')
    diff = float((out.cpu() - expected).abs().max())
    if diff > 1e-4:
        return False, (f"mmcv's CUDA kernel differs from the PyTorch reference by {diff:.2e}: "
                       'PyTorch path')
    return True, f"mmcv's CUDA kernel (probe ok, max abs diff {diff:.1e})"
