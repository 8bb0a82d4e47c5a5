#!/usr/bin/env bash
# Realism check of issue 3: a single-task baseline UNet trained only on synthesised subjects
# segments the brain on a real T1 that no synthesis used: nilearn's MNI152 2009 T1 template,
# scored against the brain mask nilearn derives from it (and a grey+white matter mask).
#
# Usage: scripts/realism_check.sh            (trains if the checkpoint is missing, then scores)
# Environment: REALISM_CACHE (default ~/.cache/voxelprompt/realism), CHECKPOINT (default
# $REALISM_CACHE/baseline-brain), MINUTES (40), CONFIG (small), SPACING (3), SEED (0), DEVICE
# (cpu; wgpu or cuda with a binary built with that feature), CARGO_TARGET_DIR (where the release binary is built).
# Needs: python3 with nibabel and numpy, pip (for the wheel), cargo. Nothing is written inside
# the repository; the template never enters synthesis (the baseline trains on fsaverage's
# aparc+aseg, checked below).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${REALISM_CACHE:-$HOME/.cache/voxelprompt/realism}
CHECKPOINT=${CHECKPOINT:-$CACHE/baseline-brain}
MINUTES=${MINUTES:-40}
CONFIG=${CONFIG:-small}
SPACING=${SPACING:-3}
SEED=${SEED:-0}
DEVICE=${DEVICE:-cpu}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/voxelprompt
NILEARN=0.14.1
mkdir -p "$CACHE"

# 1. The template and its masks, exactly as nilearn builds them.
WHEEL="$CACHE/nilearn-$NILEARN-py3-none-any.whl"
if [ ! -f "$WHEEL" ]; then
  pip download "nilearn==$NILEARN" --no-deps --only-binary=:all: -d "$CACHE"
fi
python3 - "$WHEEL" "$CACHE" <<'PY'
import sys, zipfile
from pathlib import Path
import nibabel as nib
import numpy as np

wheel, cache = sys.argv[1], Path(sys.argv[2])
data = "nilearn/datasets/data/"
names = {"t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
         "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
         "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"}
with zipfile.ZipFile(wheel) as z:
    for key, name in names.items():
        out = cache / f"mni152_{key}.nii.gz"
        if not out.exists():
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(z.read(data + name))
            tmp.rename(out)

def scaled(key):
    # nilearn's load_mni152_{template,gm_template,wm_template}: float32, divided by the maximum.
    img = nib.load(cache / f"mni152_{key}.nii.gz")
    d = np.asarray(img.dataobj).astype("float32")
    return img, d / d.max()

def save(mask, like, name):
    out = cache / name
    tmp = cache / (name + ".tmp.nii.gz")
    img = nib.Nifti1Image(mask.astype("uint8"), like.affine)
    img.set_qform(like.affine, code=1); img.set_sform(like.affine, code=1)
    nib.save(img, tmp)
    tmp.rename(out)
    print(f"{name}: {mask.sum() * np.prod(like.header.get_zooms()[:3]) / 1000:.1f} mL")

t1, t1d = scaled("t1")
save(t1d > 0.2, t1, "mni152_brain_mask.nii.gz")  # load_mni152_brain_mask(threshold=0.2)
_, gm = scaled("gm"); _, wm = scaled("wm")
save(gm + wm > 0.5, t1, "mni152_parenchyma_mask.nii.gz")
PY

# 2. The template is not a synthesis source: the baseline trains on synth's default anatomy,
# fsaverage. The other real anatomy, the CAT12 neuromorphometrics atlas
# (crates/synth/src/neuromorphometrics.rs), lives in MNI152 space and shares the template's brain
# outline, so no other synth file may mention MNI, and step 3 refuses a checkpoint trained on
# anything but fsaverage (or the phantom).
if grep -rqiE 'mni|icbm|nilearn' --exclude=neuromorphometrics.rs "$REPO/crates/synth/src"; then
  echo "synth mentions MNI/ICBM/nilearn: check that the template is not a source" >&2; exit 1
fi
echo "synth sources: only neuromorphometrics.rs reads an MNI-space atlas; the baseline does not use it"

# 3. Train (unless a checkpoint exists), then segment the template.
if [ ! -x "$BIN" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt)
fi
if [ ! -f "$CHECKPOINT/training.json" ]; then
  "$BIN" baseline train --target brain --spacing "$SPACING" --minutes "$MINUTES" \
    --config "$CONFIG" --seed "$SEED" --device "$DEVICE" --out "$CHECKPOINT"
fi
python3 - "$CHECKPOINT/training.json" <<'PY'
import json, sys
anatomy = json.load(open(sys.argv[1]))["anatomy"]
if not anatomy.startswith(("fsaverage", "phantom")):
    sys.exit(f"the checkpoint was trained on {anatomy!r}, which may share the template's space")
PY
"$BIN" baseline segment --device "$DEVICE" --checkpoint "$CHECKPOINT" --out "$CACHE/prediction_brain.nii.gz" \
  --truth "$CACHE/mni152_brain_mask.nii.gz" "$CACHE/mni152_t1.nii.gz"
"$BIN" baseline segment --device "$DEVICE" --checkpoint "$CHECKPOINT" --out "$CACHE/prediction_brain_again.nii.gz" \
  --truth "$CACHE/mni152_parenchyma_mask.nii.gz" "$CACHE/mni152_t1.nii.gz"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"checkpoint: {r['network']} net, {r['steps']} steps, {r['seconds']/60:.1f} min, {r['settings']['spacing_mm']} mm, anatomy {r['anatomy']}\")" "$CHECKPOINT/training.json"
