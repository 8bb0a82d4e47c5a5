#!/usr/bin/env bash
# Runs `voxelprompt train ARGS…` in the background at the lowest CPU priority, detached from the
# terminal, so builds, tests and evaluations in the foreground keep the cores they need.
#
# Usage: scripts/train_background.sh LOG -- TRAIN-ARGS…
#   e.g. scripts/train_background.sh ~/.cache/voxelprompt/run.log -- \
#          --resume ~/.cache/voxelprompt/runs/small-6 --minutes 120 --device cpu,cpu
# Environment: VOXELPROMPT_BIN (default: the release binary of CARGO_TARGET_DIR or target/),
# copied aside first so that a rebuild cannot replace it under the running process.
#
# Why not just `nice`: on Linux with autogroup scheduling (the default on desktops and on this
# project's machines, /proc/sys/kernel/sched_autogroup_enabled = 1) every session (`setsid`,
# every terminal) is one scheduling group and groups share the CPU equally, so `nice -n 15`
# inside a detached session changes nothing against a build in another: measured, the eval
# took 96 s for 34 samples beside a niced training run and 55 s once the training's group
# itself was set to nice 19. The script therefore also sets the group's nice
# (/proc/PID/autogroup).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LOG=${1:?usage: train_background.sh LOG -- TRAIN-ARGS…}
shift
[ "${1:-}" = "--" ] && shift
BIN=${VOXELPROMPT_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/voxelprompt}
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release -p voxelprompt)" >&2; exit 2; }
mkdir -p "$(dirname "$LOG")"
COPY="$(dirname "$LOG")/voxelprompt-train.bin"
cp "$BIN" "$COPY.tmp" && mv "$COPY.tmp" "$COPY"
setsid nohup nice -n 19 "$COPY" train "$@" > "$LOG" 2>&1 < /dev/null &
PID=$!
# Wait until the process leads its own session (its own group), else this would renice ours.
for _ in $(seq 50); do
  [ "$(ps -o sid= -p "$PID" | tr -d ' ')" = "$PID" ] && break
  sleep 0.1
done
if [ "$(ps -o sid= -p "$PID" | tr -d ' ')" = "$PID" ] && [ -w "/proc/$PID/autogroup" ]; then
  echo 19 > "/proc/$PID/autogroup"
fi
echo "training in the background: pid $PID, log $LOG"
