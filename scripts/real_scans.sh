#!/usr/bin/env bash
# A model on real scans it never trained on (issue 14), scored with nibabel/numpy:
#   - nilearn's MNI152 2009 T1 template (no skull): brain mask against nilearn's
#     load_mni152_brain_mask (T1/max > 0.2), white matter against nilearn's WM probability map
#     (> 0.5 for Dice; the map's sum is the reference volume);
#   - FreeSurfer's fsaverage T1.mgz (an averaged real MR head *with* skull, face and neck):
#     brain mask against fsaverage's brainmask.mgz (non-zero), white matter and lateral
#     ventricles against its aseg.mgz, with the label ids the vocabulary gives each target
#     (configs/synth/vocabulary.toml, resolved through its groups);
#   - the same fsaverage head skull-stripped with its own brainmask.mgz (as a user's BET or
#     SynthStrip output arrives): brain mask and lateral ventricles against the same references,
#     so the two rows of each target differ only by the stripping;
#   - on both, a lesion the scans do not have (a haemorrhage, a tumour): the right answer is
#     "no" (`correct`), and the volume of what the program found is reported (a false positive).
# fsaverage's label maps are a synthesis source, so that head tests the gap between synthetic
# and real intensities, not an unseen anatomy. The neuromorphometrics atlas, the other
# synthesis source, lives in MNI152 space: the template's brain outline is not unseen either.
#
# Usage: scripts/real_scans.sh [MODEL_DIR] [OUT_DIR]
#   MODEL_DIR: default models/voxelprompt-small; OUT_DIR: default
#   ~/.cache/voxelprompt/real-scans/<model folder name>. Writes OUT_DIR/real_scans.{md,json} and
#   each question's run folder (masks, report.json).
# Environment: ANATOMY_CACHE (default ~/.cache/voxelprompt/anatomy, filled by
#   scripts/fetch_anatomy.py), CARGO_TARGET_DIR (where the release binary is), DEVICE (cpu).
# Needs: python3 with nibabel and numpy. Nothing is written inside the repository.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:-$REPO/models/voxelprompt-small}
OUT=${2:-$HOME/.cache/voxelprompt/real-scans/$(basename "$(cd "$MODEL/.." && pwd)")-$(basename "$MODEL")}
ANATOMY=${ANATOMY_CACHE:-$HOME/.cache/voxelprompt/anatomy}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/voxelprompt
DEVICE=${DEVICE:-cpu}

MNI_T1=$ANATOMY/mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz
MNI_WM=$ANATOMY/mni152/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz
FS=$ANATOMY/fsaverage
for f in "$MNI_T1" "$MNI_WM" "$FS/T1.mgz" "$FS/aseg.mgz" "$FS/brainmask.mgz"; do
  if [ ! -f "$f" ]; then
    echo "missing $f: run python3 scripts/fetch_anatomy.py (it fills $ANATOMY)" >&2
    exit 1
  fi
done
if [ ! -f "$MODEL/weights.safetensors" ]; then
  echo "$MODEL holds no model (weights.safetensors)" >&2
  exit 1
fi
if [ ! -x "$BIN" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p voxelprompt)
fi
mkdir -p "$OUT"
# fsaverage's head stripped with its own brain mask, written once (on fsaverage's grid).
FS_STRIPPED=$OUT/fsaverage_stripped_T1.nii.gz
python3 - "$FS" "$FS_STRIPPED" <<'PY'
import sys
import nibabel as nib
import numpy as np
fs, out = sys.argv[1:3]
t1 = nib.load(f"{fs}/T1.mgz")
keep = np.asarray(nib.load(f"{fs}/brainmask.mgz").dataobj) > 0
stripped = np.where(keep, np.asarray(t1.dataobj), 0).astype(np.float32)
nib.save(nib.Nifti1Image(stripped, t1.affine), out)
PY

# scan key, scan path, case, prompt: each question's run goes to OUT/<scan>-<case>.
CASES=(
  "mni152|$MNI_T1|brain_mask|Skull strip this scan."
  "mni152|$MNI_T1|white_matter|Segment the white matter."
  "mni152|$MNI_T1|lateral_ventricle|Segment the lateral ventricles."
  "fsaverage|$FS/T1.mgz|brain_mask|Skull strip this scan."
  "fsaverage|$FS/T1.mgz|white_matter|Segment the white matter."
  "fsaverage|$FS/T1.mgz|lateral_ventricle|Segment the lateral ventricles."
  "fsaverage_stripped|$FS_STRIPPED|brain_mask|Skull strip this scan."
  "fsaverage_stripped|$FS_STRIPPED|lateral_ventricle|Segment the lateral ventricles."
  "mni152|$MNI_T1|no_haemorrhage|Is there any haemorrhage?"
  "fsaverage|$FS/T1.mgz|no_tumour|Is there any tumour?"
)
for c in "${CASES[@]}"; do
  IFS='|' read -r scan path case prompt <<<"$c"
  dir=$OUT/$scan-$case
  rm -rf "$dir"
  echo "== $scan: $prompt" >&2
  # A failed answer is a result (scored 0), not a reason to stop.
  "$BIN" run --quiet --device "$DEVICE" --model "$MODEL" --modality T1w --prompt "$prompt" \
    --out "$dir" "t1=$path" >"$dir.answer.txt" 2>"$dir.stderr.txt" || true
done

python3 - "$REPO/configs/synth/vocabulary.toml" "$ANATOMY" "$OUT" "$MODEL" <<'PY'
import json, sys, tomllib
from pathlib import Path
import nibabel as nib
import numpy as np

vocab_path, anatomy, out, model = map(Path, sys.argv[1:5])
vocab = tomllib.loads(vocab_path.read_text())

def aseg_ids(name):
    """The aseg label ids of a vocabulary target: a structure's own, or a group's members'."""
    ids, todo, seen = set(), [name], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for s in vocab.get("structure", []):
            if s["name"] == n or n in s.get("groups", []):
                ids.update(s.get("aseg", []))
        for g in vocab.get("group", []):
            if n in g.get("groups", []):
                todo.append(g["name"])
    if not ids:
        sys.exit(f"{vocab_path}: no aseg ids for {name!r}")
    return sorted(ids)

def voxel_ml(img):
    return float(np.prod(img.header.get_zooms()[:3])) / 1000.0

def data(path):
    return np.asarray(nib.load(path).dataobj)

mni_t1 = nib.load(anatomy / "mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
t1 = np.asarray(mni_t1.dataobj).astype("float32")
wm_map = data(anatomy / "mni152/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz").astype("float32")
wm_map = wm_map / wm_map.max()  # nilearn's load_mni152_wm_template scaling
aseg_img = nib.load(anatomy / "fsaverage/aseg.mgz")
aseg = np.asarray(aseg_img.dataobj)
references = {
    ("mni152", "brain_mask"): (mni_t1, t1 / t1.max() > 0.2, None,
        "nilearn load_mni152_brain_mask (T1/max > 0.2)"),
    ("mni152", "white_matter"): (mni_t1, wm_map > 0.5, float(wm_map.sum()) * voxel_ml(mni_t1),
        "nilearn WM probability map > 0.5 (volume: the map's sum)"),
    ("mni152", "lateral_ventricle"): (mni_t1, None, None, "none in nilearn"),
    ("fsaverage", "brain_mask"): (aseg_img, data(anatomy / "fsaverage/brainmask.mgz") > 0, None,
        "fsaverage brainmask.mgz > 0"),
    ("fsaverage", "white_matter"): (aseg_img, np.isin(aseg, aseg_ids("white matter")), None,
        f"fsaverage aseg ids {aseg_ids('white matter')}"),
    ("fsaverage", "lateral_ventricle"): (aseg_img, np.isin(aseg, aseg_ids("lateral ventricle")),
        None, f"fsaverage aseg ids {aseg_ids('lateral ventricle')}"),
    ("fsaverage_stripped", "brain_mask"): (aseg_img, data(anatomy / "fsaverage/brainmask.mgz") > 0,
        None, "fsaverage brainmask.mgz > 0 (the mask it was stripped with)"),
    ("fsaverage_stripped", "lateral_ventricle"): (aseg_img,
        np.isin(aseg, aseg_ids("lateral ventricle")), None,
        f"fsaverage aseg ids {aseg_ids('lateral ventricle')}"),
    # Healthy scans: the lesion asked about is absent, so its reference volume is 0.
    ("mni152", "no_haemorrhage"): (mni_t1, None, 0.0, "healthy template: the answer is no"),
    ("fsaverage", "no_tumour"): (aseg_img, None, 0.0, "healthy average head: the answer is no"),
}
absent = {"no_haemorrhage", "no_tumour"}
gm_map = data(anatomy / "mni152/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz").astype("float32")
gm_map = gm_map / gm_map.max()
# aseg id -> the vocabulary's structure name (first structure that lists the id).
aseg_names = {}
for s in vocab.get("structure", []):
    for i in s.get("aseg", []):
        aseg_names.setdefault(i, s["name"])

def where(scan, mask, img):
    """Where an evidence mask lies: its centroid (mm) and what it covers (fsaverage: the top
    aseg structures; MNI152: nilearn's grey/white matter maps > 0.5)."""
    n = int(mask.sum())
    if n == 0:
        return "empty"
    ijk = np.argwhere(mask).mean(axis=0)
    xyz = img.affine[:3, :3] @ ijk + img.affine[:3, 3]
    centre = "centroid (" + ", ".join(f"{v:.0f}" for v in xyz) + ") mm"
    if scan.startswith("fsaverage"):
        ids, counts = np.unique(aseg[mask], return_counts=True)
        by_name = {}
        for i, c in zip(ids, counts):
            name = aseg_names.get(int(i), "outside the brain" if i == 0 else f"aseg {i}")
            by_name[name] = by_name.get(name, 0) + int(c)
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
        parts = [f"{100 * c / n:.0f} % {name}" for name, c in top]
    else:
        gm, wm = gm_map[mask] > 0.5, wm_map[mask] > 0.5
        parts = [f"{100 * gm.mean():.0f} % grey matter", f"{100 * wm.mean():.0f} % white matter",
                 f"{100 * (~gm & ~wm).mean():.0f} % neither"]
    return ", ".join(parts) + "; " + centre

rows = []
for (scan, case), (like, ref, ref_ml, ref_text) in references.items():
    d = out / f"{scan}-{case}"
    # The answer from the run's report; without one, why the run failed (its last line).
    failed = (out / f"{scan}-{case}.stderr.txt").read_text().strip().splitlines()
    answer = "no answer: " + (failed[-1] if failed else "unknown")
    row = {"scan": scan, "case": case, "reference": ref_text,
           "prediction_ml": None, "reference_ml": None, "dice": None}
    report = d / "report.json"
    if report.is_file():
        r = json.loads(report.read_text())
        row["prompt"] = r["prompt"]
        answer = r["answer"]
        row["error"] = next((s["error"] for s in r["steps"] if s.get("error")), None)
    if not answer.strip():
        answer = f"(no answer; {row.get('error') or 'the program did not respond'})"
    row["answer"] = " ".join(answer.split())
    masks = sorted(p for p in d.glob("*.nii.gz")) if d.is_dir() else []
    if masks:
        img = nib.load(masks[0])
        if img.shape[:3] != like.shape[:3] or not np.allclose(img.affine, like.affine, atol=1e-3):
            sys.exit(f"{masks[0]}: not on the grid of the scan ({img.shape} vs {like.shape})")
        # The skull-strip answer is the masked image; every answer's mask is its non-zero voxels.
        pred = np.asarray(img.dataobj) != 0
        row["mask"] = str(masks[0])
        row["prediction_ml"] = round(float(pred.sum()) * voxel_ml(img), 1)
        if ref is not None:
            inter = np.logical_and(pred, ref).sum()
            total = pred.sum() + ref.sum()
            row["dice"] = round(2.0 * inter / total, 3) if total else 1.0
    if case in absent:
        row["correct"] = row["answer"].lower().startswith("no")
        # The mask the yes/no was read from (run's evidence/), and where it lies.
        evidence = json.loads(report.read_text()).get("evidence", []) if report.is_file() else []
        files = [e["file"] for e in evidence if e.get("file")]
        if files:
            img = nib.load(files[0])
            row["evidence"] = files[0]
            row["where"] = where(scan, np.asarray(img.dataobj) != 0, img)
        # What the program measured of the absent lesion (its first number read).
        steps = json.loads(report.read_text())["steps"] if report.is_file() else []
        for s in steps:
            try:
                row["prediction_ml"] = round(float(s["feedback"].split()[0]), 1)
                break
            except (KeyError, ValueError, IndexError):
                continue
    if ref is not None and row["dice"] is None:
        row["dice"] = 0.0  # no mask shown: the question was not answered
    if ref is None and ref_ml is not None:
        row["reference_ml"] = ref_ml
    if ref is not None:
        row["reference_ml"] = round(ref_ml if ref_ml is not None else float(ref.sum()) * voxel_ml(like), 1)
    rows.append(row)

(out / "real_scans.json").write_text(json.dumps({"model": str(model), "rows": rows}, indent=1))
fmt = lambda x: "—" if x is None else f"{x}"
lines = [f"# Real scans: `{model}`", "",
         "| scan | target | answer | predicted mL | reference mL | Dice / right | reference |",
         "|---|---|---|---|---|---|---|"]
for r in rows:
    score = fmt(r["dice"]) if "correct" not in r else ("right" if r["correct"] else "wrong")
    lines.append(f"| {r['scan']} | {r['case'].replace('_', ' ')} | {r['answer'].replace('|', '/')} | "
                 f"{fmt(r['prediction_ml'])} | {fmt(r['reference_ml'])} | {score} | {r['reference']} |")
wheres = [r for r in rows if r.get("where")]
if wheres:
    lines += ["", "Where the masks of the absent lesions lie (the evidence `run --out` writes):", ""]
    lines += [f"- {r['scan']}, {r['case'].replace('_', ' ')}: {r['where']}" for r in wheres]
(out / "real_scans.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
