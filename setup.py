"""Installable package for RSCoTr.

mmcv-full is intentionally absent from ``install_requires``: it has no wheel for
this torch and must be built from source without build isolation, which
``tools/install.sh`` does (and caches). See README.md.

The CPU kernel of multi-scale deformable attention (``rscotr.ops._ms_deform_attn_cpu``)
is compiled here as a torch C++ extension; that needs torch importable at build time:
``pip install --no-build-isolation --use-pep517 -e .`` (without ``--use-pep517``, pip 23
runs ``setup.py develop``, which setuptools 80 turns into an isolated build without torch).
Without torch the package installs without it and the attention falls back to mmcv's
pure-PyTorch path; ``tests/test_ops`` fails loudly then.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'rscotr', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(path: str) -> list:
    out = []
    with open(osp.join(osp.dirname(__file__), path)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-r'):
                out.append(line)
    return out


def extensions() -> tuple:
    """``(ext_modules, cmdclass)`` for the C++ ops; empty when torch is not importable."""
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return [], {}
    # at::parallel_for is header code: OpenMP must be on to get torch's thread pool.
    flags = ['-O3', '-g0', '-std=c++20', '-fopenmp']
    ext = CppExtension('rscotr.ops._ms_deform_attn_cpu',
                       sources=['rscotr/ops/csrc/ms_deform_attn_cpu.cpp'],
                       extra_compile_args={'cxx': flags}, extra_link_args=['-fopenmp'])
    return [ext], {'build_ext': BuildExtension}


EXT_MODULES, CMDCLASS = extensions()

setup(
    name='rscotr',
    version=read_version(),
    description='RSCoTr: a co-training Transformer for remote-sensing scene '
    'classification, object detection and semantic segmentation',
    packages=find_packages(exclude=('tests', 'tools', 'configs')),
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    ext_modules=EXT_MODULES,
    cmdclass=CMDCLASS,
    zip_safe=False,
)
