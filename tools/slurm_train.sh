#!/usr/bin/env bash
# Co-training on a Slurm cluster: srun starts one task per GPU.
#
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh gpu rscotr \
#       configs/rscotr/rscotr_swin-t_300k_resisc-dior-potsdam.py work_dirs/rscotr
#
# Environment: see tools/slurm_launch.sh (GPUS, GPUS_PER_NODE, CPUS_PER_TASK,
# SRUN_ARGS, PYTHON).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]" >&2
  exit 2
fi
DIR=$(dirname "$0")
exec bash "$DIR/slurm_launch.sh" "$1" "$2" "$DIR/train.py" "$3" --work-dir="$4" \
  --launcher slurm "${@:5}"
