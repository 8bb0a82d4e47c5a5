#!/usr/bin/env bash
# Starts a session's background training run: resumes the run in the cache when its checkpoint
# is there, else starts one from the shipped model (models/voxelprompt-small); either way with
# configs/train/continue.toml, so a change to that file reaches the run at its next session (the
# weights, Adam moments, sample position and lowered learning rate carry over). The cache does
# not always outlive a session (session 11 found ~/.cache empty and small-6's 1 180 steps past
# the shipped checkpoint gone), so a session's training counts only once `voxelprompt ship` has
# put a better checkpoint in the repository.
#
# Usage: scripts/train_session.sh [MINUTES]   (default 600: until the machine stops)
# Environment: RUN (default ~/.cache/voxelprompt/runs/current), LOG (default RUN-DATE-TIME.log),
# SEED (a new run's sample stream; default today's date, so sessions draw new samples),
# SETTINGS (default configs/train/continue.toml; empty: a resumed run keeps its own),
# CARGO_TARGET_DIR (where the release binary is built).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
MINUTES=${1:-600}
RUN=${RUN:-$HOME/.cache/voxelprompt/runs/current}
# One log per start: train_background.sh truncates its log, and the last session's is history.
LOG=${LOG:-$RUN-$(date -u +%Y%m%d-%H%M).log}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
SETTINGS=${SETTINGS-$REPO/configs/train/continue.toml}
if [ ! -x "$TARGET_DIR/release/voxelprompt" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt --locked)
fi
if [ -f "$RUN/checkpoint/state.json" ]; then
  echo "resuming $RUN"
  args=(--resume "$RUN")
  if [ -n "$SETTINGS" ]; then args+=(--settings "$SETTINGS"); fi
else
  [ -e "$RUN" ] && { echo "$RUN exists but holds no checkpoint; move it aside first" >&2; exit 2; }
  echo "no run in $RUN: starting one from the shipped model"
  args=(--init "$REPO/models/voxelprompt-small" --out "$RUN"
        --settings "${SETTINGS:-$REPO/configs/train/continue.toml}" --seed "${SEED:-$(date -u +%Y%m%d)}")
fi
CARGO_TARGET_DIR="$TARGET_DIR" exec "$REPO/scripts/train_background.sh" "$LOG" -- \
  "${args[@]}" --minutes "$MINUTES"
