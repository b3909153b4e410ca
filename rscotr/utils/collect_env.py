"""Environment report (``python tools/misc/collect_env.py``)."""
from collections import OrderedDict
from typing import Dict


def _mmcv_ops() -> str:
    try:
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms'])
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f'not compiled ({type(exc).__name__}: {exc})'
    from rscotr.ops.ms_deform_attn import mmcv_has_cuda_ops
    from mmcv.ops import get_compiler_version, get_compiling_cuda_version
    devices = 'CPU + CUDA' if mmcv_has_cuda_ops() else 'CPU only (no CUDA kernels)'
    return (f'compiled ({devices}; compiler {get_compiler_version()}, '
            f'CUDA {get_compiling_cuda_version()}); multi-scale deformable attention: '
            f'{"CUDA kernel on GPU, " if mmcv_has_cuda_ops() else ""}PyTorch path on CPU')


def collect_env() -> Dict[str, str]:
    """Versions and capabilities of the stack, as an ordered name -> text dict."""
    import sys

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
