"""tools/install.sh refuses a wrong interpreter loudly and touches nothing."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, **env):
    full = dict(os.environ, RSCOTR_VENV=str(tmp_path / 'venv'),
                RSCOTR_WHEEL_CACHE=str(tmp_path / 'cache'), **env)
    return subprocess.run(['bash', str(ROOT / 'tools/install.sh')], capture_output=True, text=True,
                          env=full, timeout=60)


def test_wrong_python_version(tmp_path):
    other = next((p for p in ('python3.12', 'python3.10', 'python3.13', 'python3.9')
                  if shutil.which(p) and subprocess.run([p, '-c', 'pass']).returncode == 0), None)
    if other is None:
        pytest.skip('no second Python interpreter on this machine')
    res = _run(tmp_path, PYTHON=other)
    assert res.returncode != 0
    assert 'needs Python 3.11' in res.stderr
    assert not (tmp_path / 'venv').exists()


def test_missing_python(tmp_path):
    res = _run(tmp_path, PYTHON='python-does-not-exist')
    assert res.returncode != 0 and "'python-does-not-exist' not found" in res.stderr
    assert not (tmp_path / 'venv').exists()


def test_missing_compiler(tmp_path):
    res = _run(tmp_path, CXX='no-such-c++-compiler')
    assert res.returncode != 0 and 'no C++ compiler' in res.stderr
    assert not (tmp_path / 'venv').exists()
