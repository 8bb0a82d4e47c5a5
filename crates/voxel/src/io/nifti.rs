//! NIfTI-1 (read/write) and NIfTI-2 (read), single-file `.nii` / `.nii.gz`. Affine choice,
//! quaternion handling and scaling follow nibabel: sform if its code is set, else qform, else
//! a centred pixdim affine with the x axis flipped.

use super::{DataType, FileInfo, RawData, RawVolume};
use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use std::path::Path;

/// A parsed header: what the user sees plus where the data sits.
pub(crate) struct Header {
    pub info: FileInfo,
    vox_offset: usize,
    big_endian: bool,
}

struct Fields<'a> {
    b: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn arr<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[at..at + N]);
        a
    }
    fn i16(&self, at: usize) -> i16 {
        let a = self.arr::<2>(at);
        if self.big {
            i16::from_be_bytes(a)
        } else {
            i16::from_le_bytes(a)
        }
    }
    fn i32(&self, at: usize) -> i32 {
        let a = self.arr::<4>(at);
        if self.big {
            i32::from_be_bytes(a)
        } else {
            i32::from_le_bytes(a)
        }
    }
    fn i64(&self, at: usize) -> i64 {
        let a = self.arr::<8>(at);
        if self.big {
            i64::from_be_bytes(a)
        } else {
            i64::from_le_bytes(a)
        }
    }
    fn f32(&self, at: usize) -> f64 {
        let a = self.arr::<4>(at);
        (if self.big {
            f32::from_be_bytes(a)
        } else {
            f32::from_le_bytes(a)
        }) as f64
    }
    fn f64(&self, at: usize) -> f64 {
        let a = self.arr::<8>(at);
        if self.big {
            f64::from_be_bytes(a)
        } else {
            f64::from_le_bytes(a)
        }
    }
    fn text(&self, at: usize, len: usize) -> String {
        let s = &self.b[at..at + len];
        let end = s.iter().position(|&c| c == 0).unwrap_or(len);
        String::from_utf8_lossy(&s[..end]).trim().to_string()
    }
}

/// The header values that differ in layout between NIfTI-1 and NIfTI-2.
struct Common {
    version: u8,
    dim: [i64; 8],
    datatype: i32,
    pixdim: [f64; 8],
    vox_offset: f64,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i32,
    sform_code: i32,
    quatern: [f64; 3],
    qoffset: [f64; 3],
    srow: [[f64; 4]; 3],
    xyzt_units: i32,
    descrip: String,
}

fn read_common(path: &Path, b: &[u8]) -> Result<(Common, bool)> {
    if b.len() < 348 {
        return Err(VoxelError::format(
            path,
            format!("file too short for a NIfTI header ({} bytes)", b.len()),
        ));
    }
    let le = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let be = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (version, big) = match (le, be) {
        (348, _) => (1, false),
        (_, 348) => (1, true),
        (540, _) => (2, false),
        (_, 540) => (2, true),
        _ => {
            return Err(VoxelError::format(
                path,
                format!("not a NIfTI file (header size field is {le}, expected 348 or 540)"),
            ))
        }
    };
    let f = Fields { b, big };
    if version == 1 {
        let magic = &b[344..348];
        if magic == b"ni1\0" {
            return Err(VoxelError::format(
                path,
                "is a two-file NIfTI header (.hdr/.img); only single .nii files are supported",
            ));
        }
        if magic != b"n+1\0" {
            return Err(VoxelError::format(
                path,
                format!("bad NIfTI-1 magic {magic:?}"),
            ));
        }
        let mut dim = [0i64; 8];
        let mut pixdim = [0f64; 8];
        for i in 0..8 {
            dim[i] = f.i16(40 + 2 * i) as i64;
            pixdim[i] = f.f32(76 + 4 * i);
        }
        let mut srow = [[0.0; 4]; 3];
        for (r, row) in srow.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f.f32(280 + 16 * r + 4 * c);
            }
        }
        Ok((
            Common {
                version,
                dim,
                datatype: f.i16(70) as i32,
                pixdim,
                vox_offset: f.f32(108),
                scl_slope: f.f32(112),
                scl_inter: f.f32(116),
                qform_code: f.i16(252) as i32,
                sform_code: f.i16(254) as i32,
                quatern: [f.f32(256), f.f32(260), f.f32(264)],
                qoffset: [f.f32(268), f.f32(272), f.f32(276)],
                srow,
                xyzt_units: b[123] as i32,
                descrip: f.text(148, 80),
            },
            big,
        ))
    } else {
        if b.len() < 540 {
            return Err(VoxelError::format(
                path,
                "file too short for a NIfTI-2 header",
            ));
        }
        if &b[4..8] != b"n+2\0" {
            return Err(VoxelError::format(
                path,
                format!("bad NIfTI-2 magic {:?}", &b[4..12]),
            ));
        }
        let mut dim = [0i64; 8];
        let mut pixdim = [0f64; 8];
        for i in 0..8 {
            dim[i] = f.i64(16 + 8 * i);
            pixdim[i] = f.f64(104 + 8 * i);
        }
        let mut srow = [[0.0; 4]; 3];
        for (r, row) in srow.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f.f64(400 + 32 * r + 8 * c);
            }
        }
        Ok((
            Common {
                version,
                dim,
                datatype: f.i16(12) as i32,
                pixdim,
                vox_offset: f.i64(168) as f64,
                scl_slope: f.f64(176),
                scl_inter: f.f64(184),
                qform_code: f.i32(344),
                sform_code: f.i32(348),
                quatern: [f.f64(352), f.f64(360), f.f64(368)],
                qoffset: [f.f64(376), f.f64(384), f.f64(392)],
                srow,
                xyzt_units: f.i32(500),
                descrip: f.text(240, 80),
            },
            big,
        ))
    }
}

fn datatype_of(code: i32) -> Option<DataType> {
    Some(match code {
        2 => DataType::U8,
        4 => DataType::I16,
        8 => DataType::I32,
        16 => DataType::F32,
        64 => DataType::F64,
        256 => DataType::I8,
        512 => DataType::U16,
        768 => DataType::U32,
        1024 => DataType::I64,
        1280 => DataType::U64,
        _ => return None,
    })
}

fn code_of(dtype: DataType) -> i16 {
    match dtype {
        DataType::U8 => 2,
        DataType::I16 => 4,
        DataType::I32 => 8,
        DataType::F32 => 16,
        DataType::F64 => 64,
        DataType::I8 => 256,
        DataType::U16 => 512,
        DataType::U32 => 768,
        DataType::I64 => 1024,
        DataType::U64 => 1280,
    }
}

/// nibabel's quaternion → rotation (`quat2mat`), with `w` filled in as `fillpositive` does.
fn qform_affine(path: &Path, c: &Common) -> Result<Affine> {
    let [b, cq, d] = c.quatern;
    let mut w2 = 1.0 - (b * b + cq * cq + d * d);
    if w2 < 0.0 {
        // Stored values are float32, so allow their rounding error before calling it invalid.
        if w2 < -3.0 * f32::EPSILON as f64 {
            return Err(VoxelError::format(path, "qform quaternion has norm > 1"));
        }
        w2 = 0.0;
    }
    let (w, x, y, z) = (w2.sqrt(), b, cq, d);
    let nq = w * w + x * x + y * y + z * z;
    let r = if nq < f64::EPSILON {
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    } else {
        let s = 2.0 / nq;
        let (xs, ys, zs) = (x * s, y * s, z * s);
        let (wx, wy, wz) = (w * xs, w * ys, w * zs);
        let (xx, xy, xz) = (x * xs, x * ys, x * zs);
        let (yy, yz, zz) = (y * ys, y * zs, z * zs);
        [
            [1.0 - (yy + zz), xy - wz, xz + wy],
            [xy + wz, 1.0 - (xx + zz), yz - wx],
            [xz - wy, yz + wx, 1.0 - (xx + yy)],
        ]
    };
    let qfac = if c.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let vox = [c.pixdim[1], c.pixdim[2], c.pixdim[3] * qfac];
    let mut lin = [[0.0; 3]; 3];
    for row in 0..3 {
        for col in 0..3 {
            lin[row][col] = r[row][col] * vox[col];
        }
    }
    Ok(Affine::from_linear_translation(lin, c.qoffset))
}

/// nibabel's `shape_zoom_affine(shape, zooms, x_flip=True)`: centred on the grid, x flipped.
fn base_affine(shape: [usize; 3], zooms: [f64; 3]) -> Affine {
    let z = [-zooms[0], zooms[1], zooms[2]];
    let mut origin = [0.0; 3];
    for a in 0..3 {
        origin[a] = -((shape[a] as f64 - 1.0) / 2.0) * z[a];
    }
    Affine::from_linear_translation(
        [[z[0], 0.0, 0.0], [0.0, z[1], 0.0], [0.0, 0.0, z[2]]],
        origin,
    )
}

pub(crate) fn parse_header(path: &Path, bytes: &[u8], gz: bool) -> Result<Header> {
    let (c, big) = read_common(path, bytes)?;
    let ndim = c.dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(VoxelError::format(
            path,
            format!("dim[0] = {ndim} must be between 1 and 7"),
        ));
    }
    let ndim = ndim as usize;
    for i in 1..=ndim {
        if c.dim[i] <= 0 {
            return Err(VoxelError::format(
                path,
                format!("zero-size data: dimension {i} has size {}", c.dim[i]),
            ));
        }
    }
    if (5..=ndim).any(|i| c.dim[i] > 1) {
        return Err(VoxelError::format(
            path,
            format!(
                "{ndim}-D data with shape {:?}; at most 4-D is supported",
                &c.dim[1..=ndim]
            ),
        ));
    }
    let size = |i: usize| if i <= ndim { c.dim[i] as usize } else { 1 };
    let shape = [size(1), size(2), size(3)];
    let frames = size(4);
    let datatype = datatype_of(c.datatype).ok_or_else(|| {
        VoxelError::format(
            path,
            format!("unsupported NIfTI datatype code {}", c.datatype),
        )
    })?;
    for a in 1..=3 {
        let p = c.pixdim[a];
        if a <= ndim.max(3) && (!p.is_finite() || p <= 0.0) {
            return Err(VoxelError::format(
                path,
                format!("pixdim[{a}] = {p} voxel size must be positive and finite"),
            ));
        }
    }
    let (affine, source) = if c.sform_code > 0 {
        let s = c.srow;
        (Affine([s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]]), "sform")
    } else if c.qform_code > 0 {
        (qform_affine(path, &c)?, "qform")
    } else {
        (
            base_affine(shape, [c.pixdim[1], c.pixdim[2], c.pixdim[3]]),
            "pixdim",
        )
    };
    Geometry::new(shape, affine).map_err(|e| VoxelError::format(path, format!("{source}: {e}")))?;
    let scaling = if c.scl_slope == 0.0 || !c.scl_slope.is_finite() {
        None
    } else if !c.scl_inter.is_finite() {
        return Err(VoxelError::format(path, "scl_inter is not finite"));
    } else if c.scl_slope == 1.0 && c.scl_inter == 0.0 {
        None
    } else {
        Some((c.scl_slope, c.scl_inter))
    };
    let min_offset = if c.version == 1 { 352 } else { 544 };
    let vox_offset = if c.vox_offset.is_finite() && c.vox_offset >= min_offset as f64 {
        c.vox_offset as usize
    } else {
        min_offset
    };
    let spatial_unit = match c.xyzt_units & 0x07 {
        1 => "m",
        2 => "mm",
        3 => "um",
        _ => "unknown",
    };
    Ok(Header {
        info: FileInfo {
            path: path.to_path_buf(),
            format: format!("NIfTI-{}", c.version),
            gzip: gz,
            datatype,
            shape,
            frames,
            affine,
            affine_source: source.to_string(),
            scaling,
            spatial_unit: spatial_unit.to_string(),
            description: c.descrip,
        },
        vox_offset,
        big_endian: big,
    })
}

pub(crate) fn decode(path: &Path, bytes: &[u8], gz: bool) -> Result<RawVolume> {
    let h = parse_header(path, bytes, gz)?;
    let n = h.info.shape.iter().product::<usize>() * h.info.frames;
    let need = n
        .checked_mul(h.info.datatype.size())
        .and_then(|b| b.checked_add(h.vox_offset))
        .ok_or_else(|| VoxelError::format(path, "data size overflows"))?;
    if bytes.len() < need {
        return Err(VoxelError::format(
            path,
            format!(
                "truncated: header promises {} bytes of voxel data at offset {}, file has {}",
                need - h.vox_offset,
                h.vox_offset,
                bytes.len().saturating_sub(h.vox_offset)
            ),
        ));
    }
    let data = RawData::decode(&bytes[h.vox_offset..], h.info.datatype, n, h.big_endian);
    Ok(RawVolume { info: h.info, data })
}

/// Quaternion (b, c, d), qfac and zooms of an affine, as nibabel's `set_qform`.
fn quaternion_of(affine: &Affine) -> ([f64; 3], f64, [f64; 3]) {
    let mut lin = affine.linear();
    let mut zooms = affine.column_norms();
    for row in lin.iter_mut() {
        for (c, v) in row.iter_mut().enumerate() {
            *v /= zooms[c];
        }
    }
    let mut qfac = 1.0;
    if crate::affine::det3(&lin) < 0.0 {
        qfac = -1.0;
        zooms[2] = -zooms[2];
        for row in lin.iter_mut() {
            row[2] = -row[2];
        }
    }
    let m = crate::orientation::polar_orthogonal(lin);
    let trace = m[0][0] + m[1][1] + m[2][2];
    let (w, x, y, z);
    if trace > 0.0 {
        let s = 0.5 / (trace + 1.0).sqrt();
        w = 0.25 / s;
        x = (m[2][1] - m[1][2]) * s;
        y = (m[0][2] - m[2][0]) * s;
        z = (m[1][0] - m[0][1]) * s;
    } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
        let s = 2.0 * (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt();
        w = (m[2][1] - m[1][2]) / s;
        x = 0.25 * s;
        y = (m[0][1] + m[1][0]) / s;
        z = (m[0][2] + m[2][0]) / s;
    } else if m[1][1] > m[2][2] {
        let s = 2.0 * (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt();
        w = (m[0][2] - m[2][0]) / s;
        x = (m[0][1] + m[1][0]) / s;
        y = 0.25 * s;
        z = (m[1][2] + m[2][1]) / s;
    } else {
        let s = 2.0 * (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt();
        w = (m[1][0] - m[0][1]) / s;
        x = (m[0][2] + m[2][0]) / s;
        y = (m[1][2] + m[2][1]) / s;
        z = 0.25 * s;
    }
    let sign = if w < 0.0 { -1.0 } else { 1.0 };
    (
        [x * sign, y * sign, z * sign],
        qfac,
        [zooms[0].abs(), zooms[1].abs(), zooms[2].abs()],
    )
}

/// Encodes a NIfTI-1 single file: 348-byte header, 4 zero extension bytes, data at 352.
/// Both sform and qform are set (code 1, scanner), spatial unit mm. NIfTI-1 stores each
/// dimension as an i16: a larger one is an error naming `path`, never a wrapped size.
pub(crate) fn encode(
    path: &Path,
    geometry: &Geometry,
    data: &RawData,
    scaling: Option<(f64, f64)>,
) -> Result<Vec<u8>> {
    let mut h = vec![0u8; 352];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut Vec<u8>, at: usize, v: f64| {
        h[at..at + 4].copy_from_slice(&(v as f32).to_le_bytes())
    };
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[38] = b'r';
    let shape = geometry.shape();
    let frames = data.len() / geometry.num_voxels().max(1);
    let dim = |what: &str, n: usize| {
        i16::try_from(n).map_err(|_| {
            VoxelError::InvalidArgument(format!(
                "{}: NIfTI-1 stores dimensions up to {} voxels, but the {what} has {n}; crop \
                 or resample the volume first",
                path.display(),
                i16::MAX
            ))
        })
    };
    let (nx, ny, nz) = (
        dim("x axis", shape[0])?,
        dim("y axis", shape[1])?,
        dim("z axis", shape[2])?,
    );
    let dims: [i16; 8] = if frames > 1 {
        [4, nx, ny, nz, dim("frame axis", frames)?, 1, 1, 1]
    } else {
        [3, nx, ny, nz, 1, 1, 1, 1]
    };
    for (i, d) in dims.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * i, *d);
    }
    let dtype = data.datatype();
    put_i16(&mut h, 70, code_of(dtype));
    put_i16(&mut h, 72, (dtype.size() * 8) as i16);
    let affine = geometry.affine();
    let (quat, qfac, zooms) = quaternion_of(affine);
    let pixdim = [qfac, zooms[0], zooms[1], zooms[2], 1.0, 1.0, 1.0, 1.0];
    for (i, p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * i, *p);
    }
    put_f32(&mut h, 108, 352.0);
    let (slope, inter) = scaling.unwrap_or((1.0, 0.0));
    put_f32(&mut h, 112, slope);
    put_f32(&mut h, 116, inter);
    h[123] = 2 | 8; // mm, seconds
    let descrip = b"voxelprompt";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    put_i16(&mut h, 252, 1);
    put_i16(&mut h, 254, 1);
    for (i, q) in quat.iter().enumerate() {
        put_f32(&mut h, 256 + 4 * i, *q);
    }
    let t = affine.translation();
    for (i, v) in t.iter().enumerate() {
        put_f32(&mut h, 268 + 4 * i, *v);
    }
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, affine.0[r][c]);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    data.encode_into(&mut h, false);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qform_round_trips_an_oblique_left_handed_affine() {
        let t: f64 = 0.3;
        let a = Affine([
            [-0.9 * t.cos(), 1.1 * t.sin(), 0.0, 90.0],
            [0.9 * t.sin(), 1.1 * t.cos(), 0.0, -126.0],
            [0.0, 0.0, 2.5, 72.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let (quat, qfac, zooms) = quaternion_of(&a);
        let c = Common {
            version: 1,
            dim: [3, 2, 2, 2, 1, 1, 1, 1],
            datatype: 16,
            pixdim: [qfac, zooms[0], zooms[1], zooms[2], 1.0, 1.0, 1.0, 1.0],
            vox_offset: 352.0,
            scl_slope: 1.0,
            scl_inter: 0.0,
            qform_code: 1,
            sform_code: 0,
            quatern: quat,
            qoffset: a.translation(),
            srow: [[0.0; 4]; 3],
            xyzt_units: 2,
            descrip: String::new(),
        };
        let back = qform_affine(Path::new("x.nii"), &c).unwrap();
        // w is recovered as sqrt(1 - |bcd|²), which loses digits near 180° rotations (nibabel
        // does the same); 1e-6 mm is far below float32 header precision anyway.
        assert!(back.max_abs_diff(&a) < 1e-6, "{back:?}");
    }
}
