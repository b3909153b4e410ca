"""Environment report (``python tools/misc/collect_env.py``, logged by ``tools/train.py``).

Replaces ``mmcv.utils.collect_env``, which calls
``mmcv.ops.get_compiling_cuda_version()``: on a CUDA build of mmcv-full 1.7.2
with torch >= 2.10 that call kills the process. What mmcv was built with is
read from its extension file instead (:func:`rscotr.compat.mmcv_ops.mmcv_ext_info`),
and whether its CUDA deformable-attention kernel works is found by running
it once on each GPU (a call that can only fail with an exception).
"""
import sys
from collections import OrderedDict
from typing import Dict


def _mmcv_ops() -> str:
    """What mmcv's compiled ops are, found without calling into their info functions."""
    import torch

    from ..ops.ms_deform_attn import cpu_kernel_available
    from .mmcv_ops import mmcv_cuda_kernel_runs, mmcv_ext_info
    info = mmcv_ext_info()
    if info['path'] is None:
        return f'not compiled ({info["error"]})'
    try:  # loading the extension is safe; only its version query is not
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms'])
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f'compiled but not loadable ({type(exc).__name__}: {exc})'
    build = 'CPU + CUDA' if info['cuda'] else 'CPU only (no CUDA kernels)'
    compiler = info['compiler'] or 'compiler unknown'
    if torch.cuda.is_available():
        gpu = '; '.join(f'cuda:{i}: {mmcv_cuda_kernel_runs(torch.device("cuda", i))[1]}'
                        for i in range(torch.cuda.device_count()))
    else:
        gpu = 'no GPU'
    cpu = 'our C++ kernel' if cpu_kernel_available() else "mmcv's PyTorch path"
    return (f'compiled ({build}, read from the extension file; {compiler}); '
            f'multi-scale deformable attention: CPU {cpu}, GPU {gpu}')


def collect_env() -> Dict[str, str]:
    """Versions and capabilities of the stack, as an ordered name -> text dict.

    Never calls ``mmcv.ops.get_compiling_cuda_version()`` (see the module doc).
    """
    import mmcls
    import mmcv
    import mmdet
    import mmseg
    import numpy
    import torch
    import torchvision

    import rscotr
    env = OrderedDict()
    env['Python'] = sys.version.replace('\n', ' ')
    env['rscotr'] = rscotr.__version__
    env['PyTorch'] = torch.__version__
    env['TorchVision'] = torchvision.__version__
    env['CUDA available'] = str(torch.cuda.is_available())
    if torch.cuda.is_available():
        env['CUDA (torch)'] = str(torch.version.cuda)
        env['GPUs'] = ', '.join(torch.cuda.get_device_name(i)
                                for i in range(torch.cuda.device_count()))
    env['MMCV'] = mmcv.__version__
    env['MMCV ops'] = _mmcv_ops()
    env['MMDetection'] = mmdet.__version__
    env['MMSegmentation'] = mmseg.__version__
    env['MMClassification'] = mmcls.__version__
    env['NumPy'] = numpy.__version__
    return env
