#!/usr/bin/env python3
"""Per-target learning curves of a joint training run, from its masks.csv.

masks.csv (written by `voxelprompt train`, one row per scored `generate` call of a training
sample) holds the target, the true and predicted voxel counts (probability >= 0.5) and the
thresholded Dice. This prints, per target with at least MIN rows, the mean Dice and the median
ratio of predicted to true volume in windows of WINDOW optimiser steps, and one line per
family; a ratio far above 1 is the blob failure mode, 0 an empty mask. Masks with nothing to
find (a lesion class the subject lacks: lesion_presence's negatives, the extra targets of
`extra_targets`) are kept out of those and get a table of their own: the share left empty.

Usage: scripts/mask_curves.py RUN [--window 200] [--min 5] [--from STEP]
"""
import argparse
import collections
import csv
import statistics
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run directory (holds masks.csv) or the CSV itself")
    ap.add_argument("--window", type=int, default=200, help="steps per window")
    ap.add_argument("--min", type=int, default=5, help="rows a target needs to be listed")
    ap.add_argument("--from", dest="first", type=int, default=0, help="first step")
    args = ap.parse_args()
    path = args.run / "masks.csv" if args.run.is_dir() else args.run
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) >= args.first]
    except (OSError, KeyError, ValueError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"{path}: no rows from step {args.first}", file=sys.stderr)
        return 1

    def window(r):
        return int(r["step"]) // args.window * args.window

    windows = sorted({window(r) for r in rows})
    print(f"{len(rows)} scored masks, steps {rows[0]['step']}-{rows[-1]['step']}; "
          f"cells: mean Dice / median predicted:true volume (n)")
    print(f"{'target':32s} " + " ".join(f"{w:>18d}" for w in windows) + f" {'all':>18s}")

    def cell(rs):
        if not rs:
            return f"{'':>18s}"
        dice = statistics.mean(float(r["dice"]) for r in rs)
        ratios = [int(r["predicted_voxels"]) / int(r["truth_voxels"])
                  for r in rs if int(r["truth_voxels"]) > 0]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
        return f"{dice:.2f} / {ratio:>5s} ({len(rs):>3d})".rjust(18)

    def table(key, selected=None, show=cell):
        groups = collections.defaultdict(list)
        for r in rows if selected is None else selected:
            groups[key(r)].append(r)
        for name, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            if len(rs) < args.min:
                continue
            by_window = collections.defaultdict(list)
            for r in rs:
                by_window[window(r)].append(r)
            print(f"{name[:32]:32s} " + " ".join(show(by_window[w]) for w in windows)
                  + " " + show(rs))

    empty = [r for r in rows if int(r["truth_voxels"]) == 0]
    found = [r for r in rows if int(r["truth_voxels"]) > 0]
    table(lambda r: r["target"], found)
    print()
    table(lambda r: "family: " + r["family"], found)
    if empty:
        left = sum(int(r["predicted_voxels"]) == 0 for r in empty)
        print(f"\nnothing to find: {len(empty)} masks, {left} left empty; "
              f"cells: share left empty / median voxels found (n)")
        table(lambda r: r["target"], empty, empty_cell)
    return 0


def empty_cell(rs):
    if not rs:
        return f"{'':>18s}"
    left = sum(int(r["predicted_voxels"]) == 0 for r in rs) / len(rs)
    found = statistics.median(int(r["predicted_voxels"]) for r in rs)
    return f"{left:.2f} / {found:>5.0f} ({len(rs):>3d})".rjust(18)


if __name__ == "__main__":
    sys.exit(main())
