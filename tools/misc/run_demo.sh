#!/usr/bin/env bash
# `make demo`: synthetic data -> the three converters -> co-training of the tiny
# RSCoTr on CPU -> evaluation of every dataset -> a picture of its predictions.
# About 5 minutes on 2 cores.
#
#   bash tools/misc/run_demo.sh
#
# Environment: PYTHON (default python), OMP_NUM_THREADS (default 1), DEMO_DIR (default data/demo),
# DEMO_SCALE (small|medium, default medium), WORK_DIR (default work_dirs/demo), DEMO_CONFIG (default configs/demo/rscotr_demo.py;
# its data paths must match DEMO_DIR), DEMO_ITERS (override the iterations), DEMO_PICTURE (default 1;
# 0 skips the picture).
#
# Leaves WORK_DIR/latest.pth, the training logs, WORK_DIR/test_<timestamp>.json
# (tools/test.py), WORK_DIR/metrics.json (a copy of the latter) and
# WORK_DIR/predictions.png (tools/misc/demo_predictions.py: predictions of the
# three tasks on validation images).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PY=${PYTHON:-python}
# The tiny model runs fastest on one thread per process; more threads spin and
# fight any other load on a small machine (a 50x slow-down was measured on 2
# busy cores). Set OMP_NUM_THREADS to override.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DEMO_DIR=${DEMO_DIR:-data/demo}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
CONFIG=${DEMO_CONFIG:-configs/demo/rscotr_demo.py}
RAW=$DEMO_DIR/raw
PREP=$DEMO_DIR/prepared
start=$(date +%s)
step() { printf '\n[demo %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

step "1/5 synthetic data in the official layouts -> $RAW"
# --extra: the two datasets in the standard formats of the five-dataset demo (0.6 s)
"$PY" tools/misc/make_demo_data.py "$RAW" --scale "${DEMO_SCALE:-medium}" --seed 0 --extra

step "2/5 converting -> $PREP"
"$PY" tools/dataset_converters/resisc45.py "$RAW/NWPU-RESISC45" -o "$PREP/resisc45" \
  --train-ratio 0.5 --val-ratio 0.2 --overwrite --no-progress
"$PY" tools/dataset_converters/dior.py "$RAW/DIOR" -o "$PREP/dior" --overwrite --no-progress
"$PY" tools/dataset_converters/potsdam.py "$RAW/Potsdam" -o "$PREP/potsdam" --overwrite --no-progress

step "3/5 co-training $CONFIG -> $WORK_DIR"
rm -rf "$WORK_DIR"
opts=()
if [ -n "${DEMO_ITERS:-}" ]; then
  # the lr step keeps its place at 80 % of the schedule
  opts=(--cfg-options "runner.max_iters=$DEMO_ITERS" "checkpoint_config.interval=$DEMO_ITERS"
        "evaluation.interval=$DEMO_ITERS" "lr_config.step=[$(( DEMO_ITERS * 4 / 5 ))]")
fi
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --device cpu --seed 0 "${opts[@]}"

step "4/5 evaluating $WORK_DIR/latest.pth on every test dataset"
"$PY" tools/test.py "$CONFIG" "$WORK_DIR/latest.pth" --work-dir "$WORK_DIR" --device cpu
latest_json=$(ls "$WORK_DIR"/test_*.json | sort | tail -n 1)
cp "$latest_json" "$WORK_DIR/metrics.json"

PICTURE=$WORK_DIR/predictions.png
if [ "${DEMO_PICTURE:-1}" != 0 ]; then
  step "5/5 drawing predictions on validation images -> $PICTURE"
  "$PY" tools/misc/demo_predictions.py "$CONFIG" "$WORK_DIR/latest.pth" --out "$PICTURE" \
    --metrics "$WORK_DIR/metrics.json"
else
  step "5/5 picture skipped (DEMO_PICTURE=0)"
  PICTURE=
fi

"$PY" - "$WORK_DIR" "$PICTURE" <<'PYEOF'
import json, os.path as osp, sys
work_dir, picture = sys.argv[1:3]
metrics = json.load(open(osp.join(work_dir, 'metrics.json')))['metrics']
print('\nRSCoTr demo metrics on the test data (' + osp.join(work_dir, 'metrics.json') + '):')
shown = ['resisc.accuracy_top-1', 'dior.bbox_mAP', 'dior.protocol', 'potsdam.mIoU',
         'potsdam.mFscore', 'potsdam.aAcc', 'potsdam.protocol']
# the main metric of every other dataset (e.g. the five-dataset demo's)
shown += sorted(k for k in metrics if k not in shown and k.split('.', 1)[-1] in (
    'accuracy_top-1', 'bbox_mAP', 'mIoU'))
for key in shown:
    value = metrics[key]
    print(f'  {key:24s} {round(value, 4) if isinstance(value, float) else value}')
if picture:
    print(f'predictions on validation images: {picture}')
PYEOF
step "done: $WORK_DIR/latest.pth, $WORK_DIR/metrics.json${PICTURE:+, $PICTURE}"
