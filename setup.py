"""Installable package for RSCoTr.

mmcv-full is intentionally absent from ``install_requires``: it has no wheel for
this torch and must be built from source without build isolation, which
``tools/install.sh`` does (and caches). See README.md.
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


setup(
    name='rscotr',
    version=read_version(),
    description='RSCoTr: a co-training Transformer for remote-sensing scene '
    'classification, object detection and semantic segmentation',
    packages=find_packages(exclude=('tests', 'tools', 'configs')),
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    zip_safe=False,
)
