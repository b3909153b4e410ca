#!/usr/bin/env bash
# Distributed co-training with torchrun: one process per GPU (NCCL), or with
# `--device cpu` several CPU processes (gloo).
#
#   bash tools/dist_train.sh CONFIG NPROC [train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NPROC [tools/train.py options]" >&2
  exit 2
fi
DIR=$(dirname "$0")
exec bash "$DIR/dist_launch.sh" "$2" "$DIR/train.py" "$1" --launcher pytorch "${@:3}"
