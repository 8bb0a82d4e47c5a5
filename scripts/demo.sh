#!/usr/bin/env bash
# The README's "try it" command: builds voxelprompt, writes the built-in demo head, and runs
# info, measure, a hand-written analysis program (exec) and render on it. Outputs go to
# out/demo (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/voxelprompt-target}
cargo build --quiet -p voxelprompt
vp="$CARGO_TARGET_DIR/debug/voxelprompt"
out=out/demo
"$vp" example --out "$out" --spacing 1.5
echo
"$vp" info "$out/t1.nii.gz"
echo
"$vp" measure "$out/labels.nii.gz" --image "$out/t1.nii.gz" --lut "$out/labels_lut.txt"
echo
"$vp" exec --program examples/hippocampus.rhai --labels "$out/labels.nii.gz" \
  --lut "$out/labels_lut.txt" --out "$out/exec" "$out/t1.nii.gz"
echo
"$vp" render "$out/t1.nii.gz" --labels "$out/exec/lesion.nii.gz" --roi 1 --out "$out/lesion.png"
