#!/usr/bin/env python3
"""Writes crates/voxel/tests/fixtures/scipy_morphology.json: reference results computed by
scipy.ndimage on small random masks, used as independent truth by the unit tests of
voxel/src/{distance,morphology,components,metrics}.rs.

Arrays are indexed [i, j, k] and flattened in Fortran order (i fastest), matching the voxel
crate's layout. Masks are stored as strings of '0'/'1'. Re-run with `python3
scripts/make_scipy_morphology_fixture.py` from the repository root; the output is deterministic.
"""

import json
import pathlib

import numpy as np
from scipy import ndimage

SHAPE = (17, 13, 11)
SPACING = (0.9, 1.3, 2.0)
RADIUS_MM = 2.1  # no lattice offset lies within 1e-3 mm of it (checked below)
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/voxel/tests/fixtures/scipy_morphology.json"


def flat(a):
    return a.flatten(order="F")


def bits(a):
    return "".join("1" if v else "0" for v in flat(a))


def floats(a):
    return [round(float(v), 6) for v in flat(a)]


def ball(radius_mm, spacing):
    half = [int(np.floor(radius_mm / s)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing)], indexing="ij")
    d2 = sum(g * g for g in grids)
    gap = np.abs(np.sqrt(d2) - radius_mm).min()
    assert gap > 1e-3, f"radius {radius_mm} mm is ambiguous on this lattice (gap {gap})"
    return d2 <= radius_mm * radius_mm


def hd95(a, b, spacing):
    """medpy.metric.binary.hd95: surface = mask XOR 6-connected erosion (grid border counts as
    outside), directed distances from one surface to the nearest voxel of the other surface."""
    cross = ndimage.generate_binary_structure(3, 1)
    sa = a ^ ndimage.binary_erosion(a, structure=cross, border_value=0)
    sb = b ^ ndimage.binary_erosion(b, structure=cross, border_value=0)
    da = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return max(np.percentile(da, 95), np.percentile(db, 95))


def main():
    rng = np.random.default_rng(20261129)
    # Blobby mask: smoothed noise, thresholded (several components, holes, touches the border).
    blob = ndimage.gaussian_filter(rng.standard_normal(SHAPE), sigma=1.2) > 0.02
    # Speckle mask: independent voxels, many tiny components (stresses connectivity rules).
    speckle = rng.random(SHAPE) < 0.12
    # Dense mask with enclosed background pockets, for fill_holes.
    dense = ndimage.gaussian_filter(rng.standard_normal(SHAPE), sigma=0.8) > -0.45
    # A second blobby mask for the overlap metrics.
    blob2 = ndimage.gaussian_filter(rng.standard_normal(SHAPE), sigma=1.2) > 0.0

    se = ball(RADIUS_MM, SPACING)
    full26 = np.ones((3, 3, 3), bool)
    lab6, n6 = ndimage.label(speckle)
    lab26, n26 = ndimage.label(speckle, structure=full26)
    blab26, bn26 = ndimage.label(blob, structure=full26)
    filled = ndimage.binary_fill_holes(dense)
    assert (filled != dense).sum() > 0, "fixture needs at least one hole"

    out = {
        "shape": SHAPE,
        "spacing_mm": SPACING,
        "radius_mm": RADIUS_MM,
        "blob": bits(blob),
        "speckle": bits(speckle),
        "dense": bits(dense),
        "blob2": bits(blob2),
        # distance of every voxel to the nearest blob voxel
        "edt_to_blob_mm": floats(ndimage.distance_transform_edt(~blob, sampling=SPACING)),
        # distance of every voxel to the nearest non-blob voxel, the outside of the grid counting
        # as non-blob (a one-voxel background shell)
        "edt_to_outside_blob_mm": floats(
            ndimage.distance_transform_edt(np.pad(blob, 1), sampling=SPACING)[1:-1, 1:-1, 1:-1]
        ),
        "dilate_blob": bits(ndimage.binary_dilation(blob, structure=se, border_value=0)),
        "erode_blob": bits(ndimage.binary_erosion(blob, structure=se, border_value=0)),
        "open_blob": bits(ndimage.binary_opening(blob, structure=se)),
        # closing of the mask embedded in an infinite background: pad past the radius, then crop
        "close_blob": bits(
            ndimage.binary_closing(np.pad(blob, 4), structure=se)[4:-4, 4:-4, 4:-4]
        ),
        "fill_holes_dense": bits(filled),
        "speckle_labels6": [int(v) for v in flat(lab6)],
        "speckle_count6": int(n6),
        "speckle_sizes6": sorted((int(v) for v in np.bincount(flat(lab6))[1:]), reverse=True),
        "speckle_count26": int(n26),
        "speckle_sizes26": sorted((int(v) for v in np.bincount(flat(lab26))[1:]), reverse=True),
        "speckle_labels26": [int(v) for v in flat(lab26)],
        "blob_count26": int(bn26),
        "blob_sizes26": sorted((int(v) for v in np.bincount(flat(blab26))[1:]), reverse=True),
        "dice_blob_blob2": float(2 * (blob & blob2).sum() / (blob.sum() + blob2.sum())),
        "jaccard_blob_blob2": float((blob & blob2).sum() / (blob | blob2).sum()),
        "hd95_blob_blob2_mm": float(hd95(blob, blob2, SPACING)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): blob {blob.sum()} voxels, "
          f"speckle {n6}/{n26} components (6/26), {(filled != dense).sum()} hole voxels")


if __name__ == "__main__":
    main()
