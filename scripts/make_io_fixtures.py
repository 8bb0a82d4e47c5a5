#!/usr/bin/env python3
"""Writes the small NIfTI/MGH fixtures in crates/voxel/tests/fixtures with nibabel, plus
expected.json holding what nibabel reads back from each file (shape, affine, dtype and every
voxel value as float64, x fastest). The Rust tests compare against these values.

Run: python3 scripts/make_io_fixtures.py   (needs numpy and nibabel)
"""
import json
import os

import nibabel as nib
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "voxel", "tests", "fixtures")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20261129)


def oblique(spacing, angle_deg, origin, flip_x=True):
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    if flip_x:
        rot = rot @ np.diag([-1.0, 1, 1])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(spacing)
    aff[:3, 3] = origin
    return aff


cases = []


def add(name, img):
    path = os.path.join(OUT, name)
    nib.save(img, path)
    back = nib.load(path)
    data = np.asarray(back.get_fdata(dtype=np.float64))
    cases.append(
        {
            "file": name,
            "shape": list(data.shape),
            "affine": back.affine.tolist(),
            "dtype": str(back.get_data_dtype()),
            "values": data.ravel(order="F").tolist(),
            "axcodes": "".join(nib.aff2axcodes(back.affine)),
        }
    )


shape = (5, 6, 7)
# 1. float32, oblique sform (scanner), little-endian, uncompressed.
d = rng.normal(100, 20, shape).astype(np.float32)
img = nib.Nifti1Image(d, oblique([0.7, 0.9, 3.0], 15, [90, -126, -72]))
img.header.set_sform(img.affine, code=1)
add("f32_sform.nii", img)

# 2. int16 with slope/intercept and qform only (sform code 0).
d = (rng.integers(-300, 300, shape)).astype(np.int16)
img = nib.Nifti1Image(d, oblique([1.2, 1.2, 2.0], -30, [10, 20, 30], flip_x=False))
img.header.set_qform(img.affine, code=1)
img.header.set_sform(None, code=0)
img.header.set_slope_inter(0.5, -10.0)
add("i16_qform_scaled.nii.gz", img)

# 3. uint8 label map, neither sform nor qform: nibabel's centred pixdim affine.
d = rng.integers(0, 5, shape).astype(np.uint8)
hdr = nib.Nifti1Header()
hdr.set_data_dtype(np.uint8)
hdr.set_data_shape(shape)
hdr.set_zooms((2.0, 2.5, 3.0))
img = nib.Nifti1Image(d, None, hdr)
img.header.set_qform(None, code=0)
img.header.set_sform(None, code=0)
add("u8_pixdim_only.nii", img)

# 4. big-endian float64.
d = rng.normal(0, 1, shape).astype(">f8")
img = nib.Nifti1Image(d, oblique([1, 1, 1], 90, [0, 0, 0]))
img.header.set_data_dtype(">f8")
add("f64_bigendian.nii", img)

# 5. int32 labels, gzip.
d = rng.integers(0, 3000, shape).astype(np.int32)
add("i32_labels.nii.gz", nib.Nifti1Image(d, np.diag([1.0, 1.0, 1.0, 1.0])))

# 6. NIfTI-2.
d = rng.normal(5, 1, shape).astype(np.float32)
add("f32_nifti2.nii", nib.Nifti2Image(d, oblique([0.5, 0.5, 4.0], 5, [1, 2, 3])))

# 7. MGZ with odd dimensions, oblique, uint8.
d = rng.integers(0, 255, (5, 7, 9)).astype(np.uint8)
add("u8_odd.mgz", nib.MGHImage(d, oblique([1.0, 1.3, 0.8], 20, [4.5, -3.0, 11.0])))

# 8. MGH float32, FreeSurfer's conformed LIA orientation.
lia = np.array([[-1.0, 0, 0, 3], [0, 0, 1, -4], [0, -1, 0, 5], [0, 0, 0, 1]])
d = rng.normal(50, 10, (6, 6, 4)).astype(np.float32)
add("f32_lia.mgh", nib.MGHImage(d, lia))

# 9. int16 MGZ.
d = rng.integers(-1000, 1000, (4, 5, 3)).astype(np.int16)
add("i16.mgz", nib.MGHImage(d, oblique([2, 2, 2], -45, [0, 0, 0])))

# 10. 4-D NIfTI with 2 frames.
d = rng.normal(0, 1, shape + (2,)).astype(np.float32)
add("f32_4d.nii.gz", nib.Nifti1Image(d, np.eye(4)))

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump({"nibabel": nib.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} fixtures to {OUT}")
