#!/usr/bin/env python3
"""Writes crates/voxel/tests/fixtures/numeric_reference.json: reference values from numpy/scipy
that the voxel crate's resample and intensity tests compare against.

Arrays are stored x fastest (Fortran order), as the voxel crate stores them. Coordinates follow
the voxel crate's conventions: a target voxel maps to source voxel coordinates through
inv(source_affine) @ target_affine; a point is inside the source when every coordinate lies in
[-0.5, n - 0.5], where neighbours are clamped to the edge (scipy mode='nearest'); outside points
get the fill value. Anti-aliasing is scipy.ndimage.gaussian_filter(mode='reflect', truncate=4).

Run: python3 scripts/voxel_reference_fixture.py
"""
import json
import os

import numpy as np
from scipy import ndimage

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "voxel", "tests", "fixtures",
                   "numeric_reference.json")
rng = np.random.default_rng(20240611)


def r4(a):
    """Rounds to 4 decimals so the fixture stays small; the rounded values are the inputs."""
    return np.round(np.asarray(a, dtype=np.float64), 4)


def flat(a):
    return [float(v) for v in np.asarray(a).ravel(order="F")]


def resample_case(src, src_aff, tgt_shape, tgt_aff, fill, sigma_vox):
    m = np.linalg.inv(src_aff) @ tgt_aff
    blurred = ndimage.gaussian_filter(src, sigma=sigma_vox, mode="reflect", truncate=4.0) \
        if any(s > 0 for s in sigma_vox) else src
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in tgt_shape], indexing="ij")
    vox = np.stack([ii, jj, kk, np.ones_like(ii)], axis=0).reshape(4, -1).astype(np.float64)
    c = (m @ vox)[:3]
    n = np.array(src.shape, dtype=np.float64)[:, None]
    inside = np.all((c >= -0.5) & (c <= n - 0.5), axis=0)
    vals = ndimage.map_coordinates(blurred, c, order=1, mode="nearest")
    out = np.where(inside, vals, fill).reshape(tgt_shape)
    return {
        "source_shape": list(src.shape),
        "source_affine": src_aff.tolist(),
        "source": flat(src),
        "target_shape": list(tgt_shape),
        "target_affine": tgt_aff.tolist(),
        "fill": fill,
        "sigma_vox": list(sigma_vox),
        "expected": flat(out),
    }


def main():
    fx = {}

    # Percentiles (numpy default 'linear' method) and histograms on float32 data.
    vals = r4(rng.normal(50.0, 20.0, size=57)).astype(np.float32)
    qs = [0.0, 0.5, 1.0, 25.0, 50.0, 73.3, 99.0, 99.5, 100.0]
    v64 = vals.astype(np.float64)
    fx["percentile"] = {
        "values": [float(v) for v in vals],
        "q": qs,
        "expected": [float(np.percentile(v64, q)) for q in qs],
    }
    counts, edges = np.histogram(v64, bins=7, range=(10.0, 90.0))
    counts_auto, edges_auto = np.histogram(v64, bins=5)
    fx["histogram"] = {
        "values": [float(v) for v in vals],
        "bins": 7, "range": [10.0, 90.0], "counts": counts.tolist(), "edges": edges.tolist(),
        "auto_bins": 5, "auto_counts": counts_auto.tolist(), "auto_edges": edges_auto.tolist(),
    }

    # 1-D Gaussian blur kernels.
    sig = r4(rng.uniform(0.0, 10.0, size=11))
    fx["gaussian1d"] = {
        "signal": flat(sig),
        "cases": [{"sigma": s,
                   "expected": flat(ndimage.gaussian_filter1d(sig, s, mode="reflect", truncate=4.0))}
                  for s in (0.5, 1.3, 3.0)],
    }

    # Trilinear resampling onto an oblique, partly outside grid (no anti-aliasing).
    src = r4(rng.uniform(0.0, 100.0, size=(4, 5, 6)))
    src_aff = np.array([[1.2, 0.0, 0.0, -3.0], [0.0, 0.9, 0.1, 2.0], [0.0, 0.0, 2.0, 5.0],
                        [0, 0, 0, 1.0]])
    t = np.deg2rad(20.0)
    tgt_aff = np.array([[np.cos(t) * 0.8, -np.sin(t) * 1.1, 0.0, -3.5],
                        [np.sin(t) * 0.8, np.cos(t) * 1.1, 0.0, 1.0],
                        [0.0, 0.0, 1.5, 4.0], [0, 0, 0, 1.0]])
    fx["trilinear"] = resample_case(src, src_aff, (6, 5, 8), tgt_aff, -7.0, (0.0, 0.0, 0.0))

    # Anti-aliased downsampling 1 mm -> 2 mm (sigma 0.5 voxel on every axis), centre preserved.
    src = r4(rng.uniform(0.0, 100.0, size=(8, 8, 6)))
    src_aff = np.array([[1.0, 0, 0, 10.0], [0, 1.0, 0, -4.0], [0, 0, 1.0, 2.0], [0, 0, 0, 1.0]])
    tgt_aff = np.array([[2.0, 0, 0, 10.5], [0, 2.0, 0, -3.5], [0, 0, 2.0, 2.5], [0, 0, 0, 1.0]])
    fx["downsample_2x"] = resample_case(src, src_aff, (4, 4, 3), tgt_aff, 0.0, (0.5, 0.5, 0.5))

    # Anisotropic: x steps 3 source voxels (sigma 1), y unchanged, z upsampled (sigma 0); the
    # target's axes are permuted relative to the source (target i runs along source y).
    src = r4(rng.uniform(0.0, 100.0, size=(9, 5, 4)))
    src_aff = np.array([[1.0, 0, 0, 0.0], [0, 1.0, 0, 0.0], [0, 0, 1.0, 0.0], [0, 0, 0, 1.0]])
    tgt_aff = np.array([[0.0, 3.0, 0, 1.0], [1.0, 0.0, 0, 0.0], [0, 0, 0.5, 0.0], [0, 0, 0, 1.0]])
    fx["anisotropic_permuted"] = resample_case(src, src_aff, (5, 3, 7), tgt_aff, 0.0,
                                               (1.0, 0.0, 0.0))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fx, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
