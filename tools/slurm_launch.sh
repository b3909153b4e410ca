#!/usr/bin/env bash
# srun for the tools (used by slurm_train.sh and slurm_test.sh): one task per
# GPU, each started with `--launcher slurm` (rank, world size, local GPU and
# master node come from Slurm's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and
# SLURM_NODELIST).
#
#   bash tools/slurm_launch.sh PARTITION JOB_NAME SCRIPT [script arguments]
#
# Environment: GPUS (8: tasks in all), GPUS_PER_NODE (8, at most GPUS),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, e.g. "--quotatype=auto"),
# PYTHON (python), MASTER_PORT (29500).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME SCRIPT [script arguments]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
SCRIPT=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
read -r -a EXTRA <<< "${SRUN_ARGS:-}"
exec srun -p "$PARTITION" --job-name="$JOB_NAME" \
  --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
  --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 "${EXTRA[@]}" \
  "${PYTHON:-python}" -u "$SCRIPT" "${@:4}"
