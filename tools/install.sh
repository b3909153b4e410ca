#!/usr/bin/env bash
# One-command, idempotent install of the RSCoTr stack into ./.venv.
#
#   bash tools/install.sh            # create/complete .venv
#   PYTHON=python3.11 bash tools/install.sh
#
# The venv is only marked complete (.venv/.rscotr-install-ok) once every step,
# including the import check, has passed; `make` targets rely on that marker, so
# an interrupted install is resumed, never mistaken for a finished one.
#
# mmcv-full 1.7.2 has no wheel for this torch: it is built once from its source
# release (no build isolation, setuptools 77-80, C++20) and the wheel is cached in
# ${RSCOTR_WHEEL_CACHE:-~/.cache/rscotr/wheels}, keyed by Python, torch and
# CUDA/CPU flavour, so later installs reuse it in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RSCOTR_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
CACHE="${RSCOTR_WHEEL_CACHE:-$HOME/.cache/rscotr/wheels}"
MARKER="$VENV/.rscotr-install-ok"
MMCV_VERSION=1.7.2

step() { printf '\n[install] %s\n' "$*"; }
die() { printf '\n[install] ERROR: %s\n' "$*" >&2; exit 1; }
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    printf '[install] FAILED (exit %s); the venv is NOT marked complete. Fix the cause above and rerun: bash tools/install.sh\n' "$rc" >&2
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------- preflight
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found: RSCoTr needs Python 3.11 (set PYTHON=/path/to/python3.11)."
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
  || die "'$PYTHON' does not run: RSCoTr needs Python 3.11 (set PYTHON=/path/to/python3.11)."
[ "$pyver" = "3.11" ] || die "'$PYTHON' is Python $pyver; RSCoTr's pinned stack needs Python 3.11 (set PYTHON=...)."
command -v "${CXX:-g++}" >/dev/null 2>&1 || die "no C++ compiler (${CXX:-g++}) found: mmcv-full's ops must be compiled (apt-get install g++)."

rm -f "$MARKER"
if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$ROOT/requirements/constraints.txt")

step "build tools (setuptools 77-80: torch needs >=77, mmcv imports pkg_resources, gone in 81)"
"${PIP[@]}" -q "pip>=23" "setuptools>=77.0.3,<81" wheel ninja

step "torch + torchvision"
"${PIP[@]}" -q -r "$ROOT/requirements/torch.txt"

step "OpenMMLab stack and the rest of requirements.txt"
"${PIP[@]}" -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

# ---------------------------------------------------------------- mmcv-full
torch_tag=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
want_cuda=0
if [ "${FORCE_CUDA:-0}" = "1" ]; then
  want_cuda=1
elif command -v nvcc >/dev/null 2>&1 && "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  want_cuda=1
fi
flavour=cpu
[ $want_cuda = 1 ] && flavour=cuda$("$PY" -c 'import torch; print((torch.version.cuda or "").replace(".", ""))')
wheel_dir="$CACHE/mmcv-full-$MMCV_VERSION-py$pyver-torch$torch_tag-$flavour"
mkdir -p "$CACHE"

have_ops() { "$PY" - <<'PYEOF' 2>/dev/null
import mmcv, sys
from mmcv.utils import ext_loader
ext_loader.load_ext('_ext', ['ms_deform_attn_forward', 'nms'])
sys.exit(0 if mmcv.__version__ == '1.7.2' else 1)
PYEOF
}

if have_ops && [ -f "$VENV/.mmcv-flavour" ] && [ "$(cat "$VENV/.mmcv-flavour")" = "$flavour" ]; then
  step "mmcv-full $MMCV_VERSION ($flavour) already installed with compiled ops"
else
  whl=$(ls "$wheel_dir"/mmcv_full-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    step "building mmcv-full $MMCV_VERSION ($flavour) from source; about 11 minutes on 2 cores, once"
    build=$(mktemp -d)
    ( cd "$build"
      "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv-full==$MMCV_VERSION" -d . \
        || { echo "[install] could not fetch the mmcv-full $MMCV_VERSION source release" >&2; exit 1; }
      tar xzf mmcv-full-$MMCV_VERSION.tar.gz
      cd mmcv-full-$MMCV_VERSION
      # torch >= 2.10 headers refuse C++17: raise every -std=c++14/17 to c++20.
      sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' setup.py
      grep -q 'c++20' setup.py || { echo "[install] could not raise the C++ standard in mmcv's setup.py" >&2; exit 1; }
      export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
      [ $want_cuda = 1 ] && export FORCE_CUDA=1
      "$PY" -m pip wheel --no-build-isolation --no-deps -w "$build/dist" . )
    tmp_dir="$wheel_dir.tmp.$$"
    mkdir -p "$tmp_dir" && cp "$build"/dist/mmcv_full-*.whl "$tmp_dir"/
    rm -rf "$wheel_dir" && mv "$tmp_dir" "$wheel_dir"   # publish the cache entry atomically
    rm -rf "$build"
    whl=$(ls "$wheel_dir"/mmcv_full-*.whl | head -n1)
  else
    step "reusing cached mmcv-full wheel $whl"
  fi
  "${PIP[@]}" -q --no-deps --force-reinstall "$whl"
  echo "$flavour" > "$VENV/.mmcv-flavour"
fi

step "rscotr (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation --use-pep517 -e "$ROOT"

step "import check"
"$PY" - <<'PYEOF'
import mmcv, mmdet, mmseg, mmcls, numpy, torch, torchvision, cv2, pycocotools, rscotr
from mmcv.utils import ext_loader
ext_loader.load_ext('_ext', ['ms_deform_attn_forward', 'nms', 'roi_align_forward'])
from rscotr.ops import _ms_deform_attn_cpu  # noqa: F401  (our CPU deformable-attention kernel)
assert numpy.__version__.startswith('1.'), numpy.__version__
print(f'[install] ok: torch {torch.__version__}, mmcv-full {mmcv.__version__} (compiled ops), '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmcls {mmcls.__version__}, '
      f'numpy {numpy.__version__}, rscotr {rscotr.__version__}')
PYEOF
touch "$MARKER"
step "done: activate with 'source .venv/bin/activate' or use 'make test' / 'make demo'"
