#!/usr/bin/env bash
# The README's "try it" command: builds voxelprompt, writes the built-in demo head, and runs
# info, measure and render on it. Outputs go to out/demo (ignored by git).
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
"$vp" render "$out/t1.nii.gz" --labels "$out/labels.nii.gz" --lut "$out/labels_lut.txt" --roi 99 --out "$out/lesion.png"
