"""Shared fixtures: tiny demo data in the official raw layouts."""
import os.path as osp
import runpy
import shutil
from typing import Callable, Dict

import pytest

from rscotr.datasets.demo_data import make_demo_data

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: The smallest settings that still exercise every code path (Potsdam tiles
#: of 160 px cut at 64/64 give a shifted-back last row/column).
TINY = dict(
    resisc45_per_class=3,
    dior_img_size=128,
    dior_trainval=8,
    dior_test=4,
    potsdam_tile_size=160)


@pytest.fixture(scope='session')
def demo_raw(tmp_path_factory) -> str:
    """Tiny demo data (read-only: copy it before changing anything)."""
    root = str(tmp_path_factory.mktemp('demo_raw'))
    make_demo_data(root, seed=0, **TINY)
    return root


@pytest.fixture
def raw_copy(demo_raw, tmp_path) -> Callable[[str], str]:
    """Copy one data set of the demo data into ``tmp_path``; returns path."""

    def copy(name: str) -> str:
        dst = str(tmp_path / 'raw' / name)
        shutil.copytree(osp.join(demo_raw, name), dst)
        return dst

    return copy


@pytest.fixture(scope='session')
def tiny() -> Dict:
    """The settings ``demo_raw`` was generated with."""
    return dict(TINY)


@pytest.fixture(scope='session')
def tool_main() -> Callable[[str], Callable]:
    """``main(argv)`` of a script in ``tools/`` (run in-process)."""

    def load(rel_path: str) -> Callable:
        return runpy.run_path(
            osp.join(REPO_ROOT, rel_path), run_name='tool')['main']

    return load
