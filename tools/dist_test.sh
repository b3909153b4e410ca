#!/usr/bin/env bash
# Distributed evaluation with torchrun: one process per GPU (NCCL), or with
# `--device cpu` several CPU processes (gloo).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_test.sh CONFIG CKPT 8
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py options]" >&2
  exit 2
fi
DIR=$(dirname "$0")
exec bash "$DIR/dist_launch.sh" "$3" "$DIR/test.py" "$1" "$2" --launcher pytorch "${@:4}"
