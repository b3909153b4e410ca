"""Finding out what mmcv was built with, without mmcv.ops.get_compiling_cuda_version()."""
import subprocess
import sys

import torch

from rscotr.compat import mmcv_ops
from rscotr.compat.mmcv_ops import mmcv_ext_info
from rscotr.ops import ms_deform_attn


#: What mmcv's compiled extension says of itself, in a child process: on a CUDA
#: build with current torch ``get_compiling_cuda_version()`` kills the process
#: (see tests/test_tools/test_no_cuda_version_query.py), which only a CUDA build does.
ASK_MMCV = ('import importlib\n'
            'import torch\n'
            'ext = importlib.import_module("mmcv._ext")\n'
            'print(ext.__file__)\n'
            'print(ext.get_compiler_version())\n'
            'print(ext.get_compiling_cuda_version())\n')


def test_ext_info_read_from_the_file_agrees_with_the_extension_itself():
    info = mmcv_ext_info()
    assert info['error'] is None
    child = subprocess.run([sys.executable, '-c', ASK_MMCV], capture_output=True, text=True,
                           timeout=120)
    if child.returncode < 0:  # killed by the call: a CUDA build
        assert info['cuda'] is True
        return
    assert child.returncode == 0, child.stderr
    path, compiler, cuda_version = child.stdout.split('\n')[:3]
    assert info['path'] == path
    assert info['cuda'] is (cuda_version != 'not available'), cuda_version
    # mmcv says e.g. 'GCC 12.2', the .comment section 'GCC 12.2.0'
    assert info['compiler'] == compiler or str(info['compiler']).startswith(compiler + '.')


def test_ext_info_of_a_cuda_build_and_of_a_missing_file(tmp_path):
    fake = tmp_path / '_ext.so'
    fake.write_bytes(b'\x7fELF...libc10_cuda.so\x00...GCC: (Ubuntu 11.4.0-1ubuntu1) 11.4.0\x00')
    info = mmcv_ext_info(str(fake))
    assert info['cuda'] is True and info['compiler'] == 'GCC 11.4.0'
    missing = mmcv_ext_info(str(tmp_path / 'none.so'))
    assert missing['cuda'] is False and 'FileNotFoundError' in missing['error']


def test_no_probe_on_cpu():
    assert mmcv_ops.mmcv_cuda_kernel_runs(torch.device('cpu'))[0] is False
    assert not ms_deform_attn.compiled_kernel_available(torch.device('cpu'))


def test_probe_turns_a_failing_kernel_into_false(monkeypatch):
    """A GPU whose mmcv kernel raises: the probe says so and the PyTorch path is used."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    monkeypatch.setattr(mmcv_ops, '_CUDA_PROBES', {})
    # (on this CPU-only torch, moving the probe's tensors to CUDA raises too)

    def broken(*args):
        raise RuntimeError('ms_deform_attn_impl_forward: implementation for device cuda:0 '
                           'not found.')

    monkeypatch.setattr(ms_deform_attn.MultiScaleDeformableAttnFunction, 'apply', broken)
    usable, found = mmcv_ops.mmcv_cuda_kernel_runs(torch.device('cuda'))
    assert usable is False and 'failed' in found and 'PyTorch path' in found
    assert mmcv_ops._CUDA_PROBES[0] == (usable, found)  # probed once per GPU
