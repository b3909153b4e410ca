#!/usr/bin/env bash
# Evaluation on a Slurm cluster: srun starts one task per GPU.
#
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
#   GPUS=8 bash tools/slurm_test.sh gpu rscotr-test CONFIG work_dirs/rscotr/latest.pth
#
# Environment: see tools/slurm_launch.sh (GPUS, GPUS_PER_NODE, CPUS_PER_TASK,
# SRUN_ARGS, PYTHON).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2
  exit 2
fi
DIR=$(dirname "$0")
exec bash "$DIR/slurm_launch.sh" "$1" "$2" "$DIR/test.py" "$3" "$4" --launcher slurm "${@:5}"
