#!/usr/bin/env bash
# Realism test of issue 18: does the head model around the synthetic brains help on a real head?
# Two single-task `brain mask` baselines are trained on subjects synthesised from the
# neuromorphometrics atlas only, with the same number of steps: one with the head model
# (`[head] model = "layers"`, the default) and one with the engine as it was before it
# (`model = "shells"`: CSF, skull and scalp shells, head-only field of view, no random head
# classes). Both segment FreeSurfer's fsaverage `T1.mgz` (a real, averaged MR head with skull,
# face and neck; fsaverage never enters synthesis here) and are scored against fsaverage's own
# `brainmask.mgz` and `aseg.mgz`. Pictures show where the errors sit (green missed, red extra).
#
# Usage: scripts/head_realism.sh
# Environment: REALISM_CACHE (default ~/.cache/voxelprompt/head-realism), MINUTES (budget of the
# first run, 20), STEPS (fix the step count of both runs instead), CONFIG (small), SPACING (3),
# SEED (0), CARGO_TARGET_DIR (where the release binary is built).
# Needs: python3 with nibabel, numpy and scipy; the anatomy cache (scripts/fetch_anatomy.py).
# Nothing is written inside the repository.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${REALISM_CACHE:-$HOME/.cache/voxelprompt/head-realism}
ANATOMY=${VOXELPROMPT_ANATOMY_DIR:-$HOME/.cache/voxelprompt/anatomy}
MINUTES=${MINUTES:-20}
CONFIG=${CONFIG:-small}
SPACING=${SPACING:-3}
SEED=${SEED:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/voxelprompt
FS=$ANATOMY/fsaverage
mkdir -p "$CACHE"
for f in T1.mgz brainmask.mgz aseg.mgz; do
  [ -f "$FS/$f" ] || { echo "missing $FS/$f: run python3 scripts/fetch_anatomy.py" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt --locked)
fi

# The "before" engine: the shipped parameters with the shells head and a head-only field of view.
SHELLS_TOML=$CACHE/synth-shells.toml
sed -e 's/^model = "layers"/model = "shells"/' \
    -e 's/^fov_mode_weights = .*/fov_mode_weights = { head = 1.0 }/' \
    -e 's/^random_fields_probability = .*/random_fields_probability = 0.0/' \
    "$REPO/configs/synth/synth.toml" > "$SHELLS_TOML"
grep -q '^model = "shells"' "$SHELLS_TOML" || { echo "could not write the shells config" >&2; exit 1; }

train() { # name, extra args...
  local name=$1; shift
  if [ ! -f "$CACHE/$name/training.json" ]; then
    rm -rf "$CACHE/$name"
    "$BIN" baseline train --target "brain mask" --anatomy neuromorphometrics --spacing "$SPACING" \
      --config "$CONFIG" --seed "$SEED" --out "$CACHE/$name" "$@"
  fi
}
steps_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$1/training.json"; }

if [ -n "${STEPS:-}" ]; then
  train layers --minutes 100000 --max-steps "$STEPS"
else
  train layers --minutes "$MINUTES"
fi
STEPS=$(steps_of "$CACHE/layers")
train shells --minutes 100000 --max-steps "$STEPS" --synth-config "$SHELLS_TOML"
[ "$(steps_of "$CACHE/shells")" = "$STEPS" ] || { echo "the runs differ in steps" >&2; exit 1; }

# References on fsaverage's grid: brainmask.mgz > 0 (FreeSurfer's skull strip) and aseg > 0.
python3 - "$FS" "$CACHE" <<'PY'
import sys
from pathlib import Path
import nibabel as nib, numpy as np
fs, cache = Path(sys.argv[1]), Path(sys.argv[2])
for name, src in (("ref_brainmask", "brainmask.mgz"), ("ref_aseg", "aseg.mgz")):
    img = nib.load(fs / src)
    m = (np.asarray(img.dataobj) > 0).astype("uint8")
    out = nib.Nifti1Image(m, img.affine)
    out.set_qform(img.affine, code=1); out.set_sform(img.affine, code=1)
    tmp = cache / f"{name}.tmp.nii.gz"; nib.save(out, tmp); tmp.rename(cache / f"{name}.nii.gz")
PY

for name in layers shells; do
  for ref in brainmask aseg; do
    "$BIN" baseline segment --checkpoint "$CACHE/$name" --out "$CACHE/pred_${name}_${ref}.nii.gz" \
      --truth "$CACHE/ref_$ref.nii.gz" --picture "$CACHE/errors_${name}_${ref}.png" "$FS/T1.mgz" \
      | tee "$CACHE/score_${name}_${ref}.txt"
  done
done

# Where the errors sit, in the reference's terms (aseg's brain extent on fsaverage's grid).
python3 - "$FS" "$CACHE" <<'PY'
import json, sys
from pathlib import Path
import nibabel as nib, numpy as np
fs, cache = Path(sys.argv[1]), Path(sys.argv[2])
aseg_img = nib.load(fs / "aseg.mgz")
aseg = np.asarray(aseg_img.dataobj)
ijk = np.indices(aseg.shape).reshape(3, -1)
xyz = (aseg_img.affine @ np.vstack([ijk, np.ones(ijk.shape[1])]))[:3].reshape((3,) + aseg.shape)
brain = aseg > 0
z_cb = xyz[2][np.isin(aseg, [7, 8, 46, 47])].min()       # lowest cerebellum
z_frontal_floor = np.percentile(xyz[2][brain & (xyz[1] > np.percentile(xyz[1][brain], 85))], 2)
y_front = np.percentile(xyz[1][brain], 70)
def region(mask):
    below = mask & (xyz[2] < z_cb)
    orbit = mask & ~below & (xyz[1] > y_front) & (xyz[2] < z_frontal_floor)
    base = mask & ~below & ~orbit & (xyz[2] < z_frontal_floor)
    rest = mask & ~below & ~orbit & ~base
    n = max(int(mask.sum()), 1)
    return {k: round(float(v.sum()) / n, 3) for k, v in
            (("neck (below the cerebellum)", below), ("orbits and face", orbit),
             ("skull base", base), ("vault", rest))} | {"voxels": int(mask.sum())}
rows = {}
for name in ("layers", "shells"):
    pred = np.asarray(nib.load(cache / f"pred_{name}_brainmask.nii.gz").dataobj) > 0
    ref = np.asarray(nib.load(cache / "ref_brainmask.nii.gz").dataobj) > 0
    aref = brain
    dice = lambda a, b: 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)
    rows[name] = {"dice_brainmask": round(float(dice(pred, ref)), 4),
                  "dice_aseg": round(float(dice(pred, aref)), 4),
                  "predicted_ml": round(float(pred.sum()) / 1000, 1),
                  "extra_voxels_by_region": region(pred & ~ref),
                  "missed_voxels_by_region": region(ref & ~pred)}
json.dump(rows, open(cache / "summary.json", "w"), indent=2)
print(json.dumps(rows, indent=2))
PY
echo "pictures: $CACHE/errors_{layers,shells}_{brainmask,aseg}.png; numbers: $CACHE/summary.json"
