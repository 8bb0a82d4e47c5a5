#!/usr/bin/env bash
# Trains the single-task baselines of the evaluation (issue 13). Experiment 1 (segmentation):
# one `voxelprompt baseline train` checkpoint per target of
# train::segmentation_experiment::{ANATOMY_TARGETS, LESION_TARGETS}, each with the same budget, into
# $BASELINES/<target with spaces as underscores>/ — the layout `voxelprompt eval --segmentation K
# --baselines $BASELINES` reads. Experiment 2 (characterisation): one `voxelprompt baseline
# classify` checkpoint per question of train::characterisation_experiment::FAMILIES into
# $CLASSIFIERS/<family>/, which `voxelprompt eval --characterisation K --classifiers
# $CLASSIFIERS` reads. Resumable: a target whose checkpoint is complete
# (training.json) is skipped, a half-written one is started again. Run it in the background:
#   nohup nice -n 10 scripts/train_baselines.sh > baselines.log 2>&1 &
# Environment: BASELINES (default ~/.cache/voxelprompt/baselines), CLASSIFIERS (default
# ~/.cache/voxelprompt/classifiers), STEPS per target and per question (300; the
# same compute for every target whatever else the machine runs), MINUTES (a wall-time cap, 600),
# CONFIG (small), SPACING (3), ANATOMY (fsaverage), SEED (0), DEVICE (cpu), CARGO_TARGET_DIR.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BASELINES=${BASELINES:-$HOME/.cache/voxelprompt/baselines}
STEPS=${STEPS:-300}
MINUTES=${MINUTES:-600}
CONFIG=${CONFIG:-small}
SPACING=${SPACING:-3}
ANATOMY=${ANATOMY:-fsaverage}
SEED=${SEED:-0}
DEVICE=${DEVICE:-cpu}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/voxelprompt
if [ ! -x "$BIN" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt --locked)
fi
# The targets, read from the one place that defines them.
EXPERIMENT="$REPO/crates/train/src/segmentation_experiment.rs"
mapfile -t TARGETS < <(
  sed -n '/^pub const ANATOMY_TARGETS/,/^];/p' "$EXPERIMENT" | grep -o '"[^"]*"' | tr -d '"'
  grep '^pub const LESION_TARGETS' "$EXPERIMENT" | grep -o '"[^"]*"' | tr -d '"'
)
[ "${#TARGETS[@]}" -gt 0 ] || { echo "no targets found in segmentation_experiment.rs" >&2; exit 1; }
mkdir -p "$BASELINES"
for target in "${TARGETS[@]}"; do
  dir="$BASELINES/${target// /_}"
  if [ -f "$dir/COMPLETE" ]; then
    echo "$target: done ($dir)"
    continue
  fi
  rm -rf "$dir"
  echo "$target: training for $STEPS steps -> $dir"
  "$BIN" baseline train --target "$target" --anatomy "$ANATOMY" --spacing "$SPACING" \
    --config "$CONFIG" --seed "$SEED" --device "$DEVICE" --max-steps "$STEPS" --minutes "$MINUTES" \
    --out "$dir"
  date -u +%FT%TZ > "$dir/COMPLETE"
done
echo "all baselines in $BASELINES"

CLASSIFIERS=${CLASSIFIERS:-$HOME/.cache/voxelprompt/classifiers}
CHARACTERISATION="$REPO/crates/train/src/characterisation_experiment.rs"
mapfile -t FAMILIES < <(
  sed -n '/^pub const FAMILIES/,/^];/p' "$CHARACTERISATION" | grep -o '"[^"]*"' | tr -d '"'
)
[ "${#FAMILIES[@]}" -gt 0 ] || { echo "no families found in characterisation_experiment.rs" >&2; exit 1; }
mkdir -p "$CLASSIFIERS"
for family in "${FAMILIES[@]}"; do
  dir="$CLASSIFIERS/$family"
  if [ -f "$dir/COMPLETE" ]; then
    echo "$family: done ($dir)"
    continue
  fi
  rm -rf "$dir"
  echo "$family: training a classifier for $STEPS steps -> $dir"
  # The classifiers see the joint model's samples (every anatomy) and preprocessing.
  "$BIN" baseline classify --family "$family" --config "$CONFIG" --model-config "$CONFIG" \
    --seed "$SEED" --device "$DEVICE" --steps "$STEPS" --minutes "$MINUTES" --out "$dir"
  date -u +%FT%TZ > "$dir/COMPLETE"
done
echo "all classifiers in $CLASSIFIERS"
