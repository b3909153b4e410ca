"""Shared fixtures: the session's tiny demo data in the official raw layouts."""
import os.path as osp
import shutil
from typing import Callable, Dict

import pytest

from tests.cotrain_helpers import TINY_DEMO
from tests.tiny_rscotr import tool_main as tiny_tool_main


#: The settings of the three datasets of the session's demo data: the smallest that
#: still exercise every code path (Potsdam tiles of 160 px cut at 64/64 give a
#: shifted-back last row/column).
TINY = dict(TINY_DEMO)


@pytest.fixture(scope='session')
def demo_raw(demo_data) -> str:
    """The raw folder of the session's demo data (read-only: copy it before changing
    anything)."""
    return demo_data['raw']


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
    """``main(argv)`` of a script in ``tools/`` (run in-process): tests.tiny_rscotr's."""
    return tiny_tool_main
