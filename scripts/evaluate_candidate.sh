#!/usr/bin/env bash
# Evaluates a training run's moving average as a candidate for the shipped model, on the samples
# of the shipped model's own evaluation, and prints what `voxelprompt ship` would do with it.
#
# The evaluation options (samples per family, seed, segmentation and characterisation samples)
# are read from the shipped report (models/voxelprompt-small/eval/report.json), so the two
# evaluations draw the same samples and the ship rule can pair them; the binary is the release
# build of this checkout, which must be the commit that lands (session 13's evaluations, made
# with an older build, shared no sample with the committed code's).
#
# The run keeps replacing its checkpoint, so the average is copied aside first, with the run's
# train.csv and masks.csv up to its step (`ship` takes them from the folder it ships).
#
# Usage: scripts/evaluate_candidate.sh [RUN]   (default ~/.cache/voxelprompt/runs/current)
# Always also `eval --family lesion_presence --per-family 10` on the candidate and on the shipped
# model (sensitivity and specificity of "is there a …?", 20 samples each).
# Environment: OUT (default ~/.cache/voxelprompt/candidates), ORACLE=1 (also the agent alone,
# with true masks, one sample per family and anatomy), REAL=1 (also scripts/real_scans.sh on the
# candidate and on the shipped model, both with this build, tables side by side; needs the
# anatomy cache), BASELINES / CLASSIFIERS (default ~/.cache/voxelprompt/baselines and
# ~/.cache/voxelprompt/classifiers, scripts/train_baselines.sh's: passed to `eval` when they
# exist, so the report compares with the single-task baselines), CARGO_TARGET_DIR.
# Prints the candidate's folder and the ship command; ships nothing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=${1:-$HOME/.cache/voxelprompt/runs/current}
OUT=${OUT:-$HOME/.cache/voxelprompt/candidates}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
SHIPPED="$REPO/models/voxelprompt-small"
BIN="$TARGET_DIR/release/voxelprompt"

(cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt --locked)
SOURCE="$RUN/checkpoint/average"
[ -d "$SOURCE" ] || SOURCE="$RUN/checkpoint/model"
[ -d "$SOURCE" ] || { echo "$RUN has no checkpoint/average or checkpoint/model" >&2; exit 2; }

read -r PER_FAMILY SEED SEGMENTATION CHARACTERISATION < <(python3 - "$SHIPPED/eval/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
seg = r.get("segmentation") or []
char = r.get("characterisation") or []
print(r["per_family"], r["seed"],
      len(seg[0]["model_dice"]) if seg else 0,
      len(char[0]["model_correct"]) if char else 0)
EOF
)
STEP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' \
  "$RUN/checkpoint/state.json")
CANDIDATE="$OUT/$(basename "$(readlink -f "$RUN")")-step$STEP"
if [ ! -d "$CANDIDATE" ]; then
  mkdir -p "$OUT"
  staging="$CANDIDATE.copying-$$"
  rm -rf "$staging"
  cp -r "$SOURCE" "$staging"
  # The logs run ahead of the checkpoint: keep the rows up to its step.
  for f in train.csv masks.csv; do
    if [ -f "$RUN/$f" ]; then
      python3 - "$RUN/$f" "$staging/$f" "$STEP" <<'EOF'
import sys
source, target, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(source) as f:
    lines = f.readlines()
# Line by line, so the rows keep the trainer's own quoting; the step is the first field.
kept = [lines[0]] + [l for l in lines[1:] if l.split(",", 1)[0].isdigit()
                     and int(l.split(",", 1)[0]) <= step]
with open(target, "w") as f:
    f.writelines(kept)
EOF
    fi
  done
  mv "$staging" "$CANDIDATE"
fi
echo "candidate: $CANDIDATE (step $STEP); evaluating with --per-family $PER_FAMILY --seed $SEED" \
  "--segmentation $SEGMENTATION --characterisation $CHARACTERISATION"
BASELINES=${BASELINES:-$HOME/.cache/voxelprompt/baselines}
CLASSIFIERS=${CLASSIFIERS:-$HOME/.cache/voxelprompt/classifiers}
singles=()
[ -d "$BASELINES" ] && singles+=(--baselines "$BASELINES")
[ -d "$CLASSIFIERS" ] && singles+=(--classifiers "$CLASSIFIERS")
"$BIN" eval --model "$CANDIDATE" --out "$CANDIDATE-eval" --per-family "$PER_FAMILY" \
  --seed "$SEED" --segmentation "$SEGMENTATION" --characterisation "$CHARACTERISATION" \
  "${singles[@]}" --quiet
if [ "${ORACLE:-0}" = 1 ]; then
  "$BIN" eval --model "$CANDIDATE" --out "$CANDIDATE-oracle" --per-family 1 --seed "$SEED" \
    --oracle-vision --quiet
fi
# "Is there a …?" on 10 subjects an anatomy (20), about half without the lesion: the whole
# evaluation has 4 such samples, too few to tell a model that finds a lesion in every healthy head.
for who in candidate shipped; do
  model=$CANDIDATE; [ "$who" = shipped ] && model=$SHIPPED
  "$BIN" eval --model "$model" --out "$CANDIDATE-presence-$who" --family lesion_presence \
    --per-family 10 --seed "$SEED" --quiet
  echo "lesion presence, $who:"
  sed -n '/^## Is there a lesion/,/^## /p' "$CANDIDATE-presence-$who/report.md" | grep '^| with'
done
if [ "${REAL:-0}" = 1 ]; then
  CARGO_TARGET_DIR="$TARGET_DIR" "$REPO/scripts/real_scans.sh" "$CANDIDATE" "$CANDIDATE-real" >/dev/null
  CARGO_TARGET_DIR="$TARGET_DIR" "$REPO/scripts/real_scans.sh" "$SHIPPED" "$CANDIDATE-real-shipped" >/dev/null
  cat "$CANDIDATE-real/real_scans.md" "$CANDIDATE-real-shipped/real_scans.md"
fi
(cd "$REPO" && "$BIN" ship --run "$CANDIDATE" --eval "$CANDIDATE-eval" --dry-run)
echo "to ship: (cd $REPO && $BIN ship --run $CANDIDATE --eval $CANDIDATE-eval)"
