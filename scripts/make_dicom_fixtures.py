#!/usr/bin/env python3
"""Writes small DICOM test series with known geometry, and the truth for each as NIfTI.

Usage: make_dicom_fixtures.py OUT_DIR            # every case below (each ≤ 32³ voxels)
       make_dicom_fixtures.py OUT_DIR --bench N  # one N-slice 256×256 CT series in OUT_DIR/bench

Each case is a folder OUT_DIR/<case>/ (or a file / zip) written with pydicom from a numpy
volume whose affine we choose; OUT_DIR/<case>.nii holds the truth in the reader's convention:
voxel i = DICOM column, j = DICOM row, k = slices sorted along the slice normal (row × column
direction cosines), RAS affine = diag(-1, -1, 1) · LPS affine, values = stored · slope +
intercept (float32). OUT_DIR/manifest.json names every case, its truth, and for the corrupt
cases the file that must be named in the error. Slices are written in shuffled file order with
shuffled names, so only the positions can sort them. Every file carries a made-up patient
name, ID and birth date, so tests can check that none of them is ever printed.
"""

import io
import json
import math
import shutil
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
# Made-up identifiers; the tests assert that none of them reaches any output.
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "PHI-12345", "PatientBirthDate": "19700101"}
STUDY_UID = generate_uid()
FRAME_UID = generate_uid()


def ds_str(x):
    """A DS value with full precision that fits DICOM's 16 characters."""
    s = f"{x:.10g}"
    return s if len(s) <= 16 else f"{x:.8g}"


def rotation(deg_x, deg_y, deg_z):
    ax, ay, az = (math.radians(d) for d in (deg_x, deg_y, deg_z))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


class Series:
    """One acquisition: stored values (x = column, y = row, z = slice), direction cosines and
    spacing in LPS, one position per slice."""

    def __init__(self, name, shape, row_dir, col_dir, spacing_rc, slice_mm, origin, modality="MR",
                 signed=False, slope=None, intercept=None, seed=0, number=3, tilt_deg=0.0):
        self.name = name
        self.row_dir = np.asarray(row_dir, float)  # direction of increasing column index
        self.col_dir = np.asarray(col_dir, float)  # direction of increasing row index
        self.spacing_rc = spacing_rc  # (between rows, between columns), as PixelSpacing
        self.modality = modality
        self.signed = signed
        self.slope, self.intercept = slope, intercept
        self.number = number
        self.uid = generate_uid()
        rng = np.random.default_rng(seed)
        lo, hi = (-1000, 3000) if signed else (0, 4000)
        self.stored = rng.integers(lo, hi, size=shape).astype(np.int16 if signed else np.uint16)
        normal = np.cross(self.row_dir, self.col_dir)
        if tilt_deg:
            # Gantry tilt: the image plane is tilted but the table moves along z (LPS S).
            step = np.array([0.0, 0.0, slice_mm])
        else:
            step = normal * slice_mm
        self.positions = [np.asarray(origin, float) + k * step for k in range(shape[2])]

    def lps_affine(self):
        nz = self.stored.shape[2]
        a = np.eye(4)
        a[:3, 0] = self.row_dir * self.spacing_rc[1]
        a[:3, 1] = self.col_dir * self.spacing_rc[0]
        a[:3, 2] = (self.positions[-1] - self.positions[0]) / (nz - 1) if nz > 1 else np.cross(self.row_dir, self.col_dir)
        a[:3, 3] = self.positions[0]
        return a

    def values(self):
        v = self.stored.astype(np.float64)
        if self.slope is not None:
            v = v * self.slope + self.intercept
        return v.astype(np.float32)

    def write_truth(self, path):
        ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.lps_affine()
        img = nib.Nifti1Image(self.values(), ras)
        img.set_sform(ras, code=1)
        img.set_qform(ras, code=1)
        nib.save(img, str(path))

    def base(self, sop_class):
        ds = Dataset()
        for k, v in PATIENT.items():
            setattr(ds, k, v)
        ds.SOPClassUID = sop_class
        ds.StudyInstanceUID = STUDY_UID
        ds.SeriesInstanceUID = self.uid
        ds.FrameOfReferenceUID = FRAME_UID
        ds.Modality = self.modality
        ds.SeriesNumber = self.number
        ds.SeriesDescription = f"{self.name} test series"
        ds.StudyDate = "20240101"
        ds.Rows, ds.Columns = self.stored.shape[1], self.stored.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if self.signed else 0
        return ds

    def slice_dataset(self, k):
        ds = self.base(CT_STORAGE if self.modality == "CT" else MR_STORAGE)
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_str(x) for x in self.positions[k]]
        ds.ImageOrientationPatient = [ds_str(x) for x in list(self.row_dir) + list(self.col_dir)]
        ds.PixelSpacing = [ds_str(x) for x in self.spacing_rc]
        ds.SliceThickness = "1.0"  # deliberately not the slice spacing: readers must use positions
        if self.slope is not None:
            ds.RescaleSlope = ds_str(self.slope)
            ds.RescaleIntercept = ds_str(self.intercept)
            ds.RescaleType = "HU" if self.modality == "CT" else "US"
        if self.stored.dtype == np.uint8:
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
            # JPEG baseline: encoded by Pillow (libjpeg); the truth is libjpeg's decoding.
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(self.stored[:, :, k].T)).save(buf, "JPEG", quality=90)
            ds.jpeg_bytes = buf.getvalue()
            decoded = np.asarray(Image.open(io.BytesIO(ds.jpeg_bytes)))
            self.stored[:, :, k] = decoded.T
            return ds
        ds.PixelData = np.ascontiguousarray(self.stored[:, :, k].T).tobytes()
        return ds

    def write_slices(self, folder, transfer=ExplicitVRLittleEndian, skip=(), seed=1):
        folder.mkdir(parents=True, exist_ok=True)
        order = np.random.default_rng(seed).permutation(self.stored.shape[2])
        files = {}
        for n, k in enumerate(order):
            if k in skip:
                continue
            ds = self.slice_dataset(int(k))
            path = folder / f"IM{n:04d}"
            save(ds, path, transfer)
            files[int(k)] = path
        return files

    def write_multiframe(self, path, seed=2):
        """One enhanced MR file, frames in shuffled order, geometry in functional groups."""
        ds = self.base(ENHANCED_MR_STORAGE)
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = 1
        nz = self.stored.shape[2]
        order = np.random.default_rng(seed).permutation(nz)
        ds.NumberOfFrames = nz
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [ds_str(x) for x in self.spacing_rc]
        measures.SliceThickness = "1.0"
        shared.PixelMeasuresSequence = Sequence([measures])
        orient = Dataset()
        orient.ImageOrientationPatient = [ds_str(x) for x in list(self.row_dir) + list(self.col_dir)]
        shared.PlaneOrientationSequence = Sequence([orient])
        if self.slope is not None:
            pvt = Dataset()
            pvt.RescaleSlope = ds_str(self.slope)
            pvt.RescaleIntercept = ds_str(self.intercept)
            pvt.RescaleType = "US"
            shared.PixelValueTransformationSequence = Sequence([pvt])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        frames = []
        for k in order:
            f = Dataset()
            pos = Dataset()
            pos.ImagePositionPatient = [ds_str(x) for x in self.positions[int(k)]]
            f.PlanePositionSequence = Sequence([pos])
            content = Dataset()
            content.InStackPositionNumber = int(k) + 1
            content.StackID = "1"
            content.DimensionIndexValues = [1, int(k) + 1]
            f.FrameContentSequence = Sequence([content])
            frames.append(f)
        ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
        dim_org = generate_uid()
        ds.DimensionOrganizationSequence = Sequence([Dataset()])
        ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_org
        dims = []
        for pointer, group in ((0x00209056, 0x00209111), (0x00209057, 0x00209111)):
            d = Dataset()
            d.DimensionOrganizationUID = dim_org
            d.DimensionIndexPointer = pointer
            d.FunctionalGroupPointer = group
            dims.append(d)
        ds.DimensionIndexSequence = Sequence(dims)
        ds.PixelData = b"".join(np.ascontiguousarray(self.stored[:, :, int(k)].T).tobytes() for k in order)
        save(ds, path, ExplicitVRLittleEndian)


def save(ds, path, transfer):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if transfer == JPEGBaseline8Bit:
        ds.PixelData = pydicom.encaps.encapsulate([ds.jpeg_bytes])
        del ds.jpeg_bytes
        ds["PixelData"].VR = "OB"
        meta.TransferSyntaxUID = transfer
        ds.LossyImageCompression = "01"
    elif transfer in (RLELossless, JPEG2000Lossless):
        ds.compress(transfer, encoding_plugin="pylibjpeg" if transfer == JPEG2000Lossless else "")
    else:
        meta.TransferSyntaxUID = transfer
    ds.save_as(path, enforce_file_format=True)


def zip_dir(src, dest):
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, Path("export") / p.relative_to(src))


def make_all(out):
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}

    def case(name, series, path=None, **extra):
        truth = out / f"{name}.nii"
        series.write_truth(truth)
        manifest[name] = {"path": str(path or out / name), "truth": str(truth), "number": series.number,
                          "uid": series.uid, **extra}

    axial = Series("axial", (16, 12, 10), (1, 0, 0), (0, 1, 0), (1.1, 0.9), 2.5, (-7.2, -6.6, 20.0), seed=1)
    axial.write_slices(out / "axial")
    case("axial", axial)
    sag = Series("sagittal", (12, 14, 8), (0, 1, 0), (0, 0, -1), (1.2, 0.8), 1.5, (10.0, -5.0, 30.0), seed=2)
    sag.write_slices(out / "sagittal")
    case("sagittal", sag)
    cor = Series("coronal", (14, 10, 9), (1, 0, 0), (0, 0, -1), (1.0, 1.3), 2.0, (-9.0, 12.0, 25.0), seed=3)
    cor.write_slices(out / "coronal")
    case("coronal", cor)
    rot = rotation(15, -10, 25)
    obl = Series("oblique", (10, 12, 8), rot[:, 0], rot[:, 1], (1.25, 1.05), 3.0, (3.3, -20.1, 7.7), seed=4)
    obl.write_slices(out / "oblique")
    case("oblique", obl)
    ct = Series("ct", (16, 16, 12), (1, 0, 0), (0, 1, 0), (0.7, 0.7), 1.25, (-5.6, -5.6, -100.0),
                modality="CT", signed=True, slope=0.5, intercept=-1024.0, seed=5, number=5)
    ct.write_slices(out / "ct")
    case("ct", ct)
    # Transfer syntaxes we write ourselves (uncompressed implicit, deflate, RLE, JPEG 2000).
    for name, ts in (("implicit", ImplicitVRLittleEndian), ("deflate", DeflatedExplicitVRLittleEndian),
                     ("rle", RLELossless), ("j2k", JPEG2000Lossless)):
        # 32 × 32 in-plane: OpenJPEG's default 6 resolution levels need at least 32 pixels.
        s = Series(name, (32, 32, 4), rot[:, 0], rot[:, 1], (1.0, 1.0), 2.0, (0.0, 0.0, 0.0),
                   modality="CT", signed=True, slope=1.0, intercept=-1024.0, seed=6)
        s.write_slices(out / name, transfer=ts)
        case(name, s)
    jpeg = Series("jpeg", (32, 32, 4), rot[:, 0], rot[:, 1], (1.0, 1.0), 2.0, (0.0, 0.0, 0.0), seed=6)
    yy, xx = np.mgrid[0:32, 0:32]
    jpeg.stored = np.stack([(xx.T * 5 + yy.T * 3 + 20 * z) % 250 for z in range(4)], axis=2).astype(np.uint8)
    jpeg.write_slices(out / "jpeg", transfer=JPEGBaseline8Bit)
    case("jpeg", jpeg)
    mf = Series("multiframe", (12, 14, 10), rot[:, 0], rot[:, 1], (0.9, 1.1), 1.8, (1.0, 2.0, 3.0),
                slope=2.0, intercept=5.0, seed=7)
    (out / "multiframe").mkdir()
    mf.write_multiframe(out / "multiframe" / "enhanced.dcm")
    case("multiframe", mf, path=out / "multiframe" / "enhanced.dcm")
    zip_dir(out / "axial", out / "axial.zip")
    manifest["axial_zip"] = dict(manifest["axial"], path=str(out / "axial.zip"))

    # Cases that must be refused.
    tilt = Series("tilted", (10, 10, 8), (1, 0, 0), (0, math.cos(math.radians(15)), math.sin(math.radians(15))),
                  (1.0, 1.0), 2.0, (0.0, 0.0, 0.0), modality="CT", signed=True, slope=1.0, intercept=-1024.0,
                  seed=8, tilt_deg=15.0)
    tilt.write_slices(out / "tilted")
    manifest["tilted"] = {"path": str(out / "tilted"), "error": "tilt"}
    gap = Series("missing", (10, 10, 9), (1, 0, 0), (0, 1, 0), (1.0, 1.0), 2.0, (0.0, 0.0, 0.0), seed=9)
    gap.write_slices(out / "missing", skip=(4,))
    manifest["missing"] = {"path": str(out / "missing"), "error": "missing"}
    uneven = Series("uneven", (10, 10, 6), (1, 0, 0), (0, 1, 0), (1.0, 1.0), 2.0, (0.0, 0.0, 0.0), seed=10)
    uneven.positions = [p + np.array([0, 0, 0.7 if k >= 3 else 0.0]) for k, p in enumerate(uneven.positions)]
    uneven.write_slices(out / "uneven")
    manifest["uneven"] = {"path": str(out / "uneven"), "error": "spacing"}
    for name, damage in (("truncated", "truncate"), ("nopixel", "nopixel"), ("wrongvr", "wrongvr")):
        s = Series(name, (8, 8, 5), (1, 0, 0), (0, 1, 0), (1.0, 1.0), 2.0, (0.0, 0.0, 0.0), seed=11)
        files = s.write_slices(out / name)
        bad = files[2]
        if damage == "truncate":
            data = bad.read_bytes()
            bad.write_bytes(data[: len(data) * 6 // 10])
        elif damage == "nopixel":
            ds = pydicom.dcmread(bad)
            del ds.PixelData
            ds.save_as(bad, enforce_file_format=True)
        else:
            ds = pydicom.dcmread(bad)
            # A wrong VR: the position as a long string that is not three numbers.
            ds.add_new(0x00200032, "LO", "left\\of\\centre")
            ds.save_as(bad, enforce_file_format=True)
        manifest[name] = {"path": str(out / name), "file": bad.name}

    # Several series in one folder, including a three-plane localizer that shares one series UID.
    mixed = out / "mixed"
    axial.write_slices(mixed / "a")
    ct.write_slices(mixed / "b")
    loc = Series("localizer", (8, 8, 1), (1, 0, 0), (0, 1, 0), (2.0, 2.0), 1.0, (0, 0, 0), seed=12, number=1)
    for n, (r, c) in enumerate((((1, 0, 0), (0, 1, 0)), ((0, 1, 0), (0, 0, -1)), ((1, 0, 0), (0, 0, -1)))):
        loc.row_dir, loc.col_dir = np.asarray(r, float), np.asarray(c, float)
        ds = loc.slice_dataset(0)
        ds.InstanceNumber = n + 1
        save(ds, mixed / f"loc{n}", ExplicitVRLittleEndian)
    (mixed / "README.txt").write_text("not a DICOM file; readers skip it\n")
    manifest["mixed"] = {"path": str(mixed), "series": [1, 3, 5]}

    manifest["codecs"] = codec_truth(out / "codecs")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


# Files shipped with pydicom, one per transfer syntax; the truth is pydicom's own decoding
# (pylibjpeg for JPEG and JPEG 2000) with the modality LUT applied.
CODEC_FILES = ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
               "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "CT_small.dcm", "image_dfl.dcm",
               "JPEG2000.dcm", "693_J2KI.dcm"]


def codec_truth(folder):
    from pydicom.pixels import apply_modality_lut

    folder.mkdir(parents=True)
    src = Path(pydicom.__file__).parent / "data" / "test_files"
    out = {}
    for name in CODEC_FILES:
        ds = pydicom.dcmread(src / name)
        values = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
        truth = folder / (name[:-4] + ".nii")
        nib.save(nib.Nifti1Image(np.ascontiguousarray(values.T[:, :, None]), np.eye(4)), str(truth))
        out[name] = {"path": str(src / name), "truth": str(truth),
                     "transfer_syntax": ds.file_meta.TransferSyntaxUID.name}
    out["unsupported"] = {"path": str(src / "MR_small_jpeg_ls_lossless.dcm")}
    out["jpeg12"] = {"path": str(src / "JPGExtended.dcm")}
    out["truncated"] = {"path": str(src / "MR_truncated.dcm")}
    return out


def make_bench(out, n):
    s = Series("bench", (256, 256, n), (1, 0, 0), (0, 1, 0), (0.8, 0.8), 1.0, (-100.0, -100.0, 0.0),
               modality="CT", signed=True, slope=1.0, intercept=-1024.0, seed=13)
    s.write_slices(out / "bench")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--bench"):
        sys.exit(__doc__)
    target = Path(sys.argv[1])
    if len(sys.argv) == 4:
        make_bench(target, int(sys.argv[3]))
    else:
        if target.exists():
            shutil.rmtree(target)
        make_all(target)
