#!/usr/bin/env bash
# torchrun for the tools (used by dist_train.sh and dist_test.sh): one process
# per GPU (NCCL), or with `--device cpu` several CPU processes (gloo).
#
#   bash tools/dist_launch.sh NPROC SCRIPT [script arguments]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
# PYTHON (python).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NPROC SCRIPT [script arguments]" >&2
  exit 2
fi
NPROC=$1
SCRIPT=$2
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" "$SCRIPT" "${@:3}"
