"""What the installed mmcv-full was built with, found without calling into it.

On a CUDA build of mmcv-full 1.7.2 with torch >= 2.10,
``mmcv.ops.get_compiling_cuda_version()`` kills the process (a segfault,
no message), and so does anything that calls it (``mmcv.utils.collect_env``).
Nothing in RSCoTr calls it. Instead:

* :func:`mmcv_ext_info` reads the compiled extension ``mmcv/_ext*.so`` as a
  file, without loading it: a CUDA build links torch's CUDA libraries
  (``libc10_cuda.so``), and the ELF ``.comment`` section names the compiler;
* :func:`~rscotr.ops.ms_deform_attn.mmcv_cuda_kernel_runs` runs mmcv's CUDA
  deformable-attention kernel once on tiny tensors (a call that fails with an
  exception on a build without it).
"""
import importlib.util
import os.path as osp
import re
from collections import Counter
from functools import lru_cache
from typing import Dict, Optional

__all__ = ['mmcv_ext_info']

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
