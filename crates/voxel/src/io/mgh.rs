//! FreeSurfer MGH/MGZ: big-endian 284-byte header, then voxels, then an optional footer of scan
//! parameters. The affine is built exactly as FreeSurfer's vox2ras and nibabel's `get_affine`:
//! `M = Mdcᵀ·diag(delta)`, `t = Pxyz_c − M·dims/2` (half the *dimension*, not of dim−1, which is
//! what makes odd sizes come out right).

use super::{DataType, FileInfo, RawData, RawVolume};
use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use std::path::Path;

const HEADER_BYTES: usize = 284;

pub(crate) struct Header {
    pub info: FileInfo,
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_f32(b: &[u8], at: usize) -> f64 {
    f32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as f64
}

pub(crate) fn parse_header(path: &Path, b: &[u8], gz: bool) -> Result<Header> {
    if b.len() < 90 {
        return Err(VoxelError::format(
            path,
            format!("file too short for an MGH header ({} bytes)", b.len()),
        ));
    }
    let version = be_i32(b, 0);
    if version != 1 {
        return Err(VoxelError::format(
            path,
            format!("not an MGH file (version field {version}, expected 1)"),
        ));
    }
    let dims = [be_i32(b, 4), be_i32(b, 8), be_i32(b, 12), be_i32(b, 16)];
    if dims.iter().any(|&d| d <= 0) {
        return Err(VoxelError::format(
            path,
            format!("zero-size data: dimensions {dims:?}"),
        ));
    }
    let datatype = match be_i32(b, 20) {
        0 => DataType::U8,
        1 => DataType::I32,
        3 => DataType::F32,
        4 => DataType::I16,
        t => {
            return Err(VoxelError::format(
                path,
                format!("unsupported MGH data type {t}"),
            ))
        }
    };
    let good_ras = i16::from_be_bytes([b[28], b[29]]) != 0;
    let (delta, mdc, c_ras) = if good_ras {
        let delta = [be_f32(b, 30), be_f32(b, 34), be_f32(b, 38)];
        let mut mdc = [[0.0; 3]; 3];
        for (r, row) in mdc.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = be_f32(b, 42 + 12 * r + 4 * c);
            }
        }
        (delta, mdc, [be_f32(b, 78), be_f32(b, 82), be_f32(b, 86)])
    } else {
        // nibabel's default when the direction cosines are flagged invalid.
        (
            [1.0; 3],
            [[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]],
            [0.0; 3],
        )
    };
    for (a, d) in delta.iter().enumerate() {
        if !d.is_finite() || *d <= 0.0 {
            return Err(VoxelError::format(
                path,
                format!("voxel size {d} along axis {a} must be positive and finite"),
            ));
        }
    }
    // mdc rows are the unit directions of the voxel axes; the affine's columns.
    let mut lin = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            lin[r][c] = mdc[c][r] * delta[c];
        }
    }
    let mut t = [0.0; 3];
    for r in 0..3 {
        let centre: f64 = (0..3).map(|c| lin[r][c] * dims[c] as f64).sum::<f64>() / 2.0;
        t[r] = c_ras[r] - centre;
    }
    let affine = Affine::from_linear_translation(lin, t);
    let shape = [dims[0] as usize, dims[1] as usize, dims[2] as usize];
    Geometry::new(shape, affine).map_err(|e| VoxelError::format(path, e.to_string()))?;
    Ok(Header {
        info: FileInfo {
            path: path.to_path_buf(),
            format: "MGH".into(),
            gzip: gz,
            datatype,
            shape,
            frames: dims[3] as usize,
            affine,
            affine_source: "mgh".into(),
            scaling: None,
            spatial_unit: "mm".into(),
            description: String::new(),
        },
    })
}

pub(crate) fn decode(path: &Path, bytes: &[u8], gz: bool) -> Result<RawVolume> {
    let h = parse_header(path, bytes, gz)?;
    let n = h.info.shape.iter().product::<usize>() * h.info.frames;
    let need = n
        .checked_mul(h.info.datatype.size())
        .and_then(|v| v.checked_add(HEADER_BYTES))
        .ok_or_else(|| VoxelError::format(path, "data size overflows"))?;
    if bytes.len() < need {
        return Err(VoxelError::format(
            path,
            format!(
                "truncated: header promises {} bytes of voxel data, file has {}",
                need - HEADER_BYTES,
                bytes.len().saturating_sub(HEADER_BYTES)
            ),
        ));
    }
    let data = RawData::decode(&bytes[HEADER_BYTES..], h.info.datatype, n, true);
    Ok(RawVolume { info: h.info, data })
}

pub(crate) fn encode(
    path: &Path,
    geometry: &Geometry,
    data: &RawData,
    scaling: Option<(f64, f64)>,
) -> Result<Vec<u8>> {
    if scaling.is_some() {
        return Err(VoxelError::InvalidArgument(format!(
            "{}: MGH cannot store a slope/intercept; write floats or whole-number integers",
            path.display()
        )));
    }
    let code = match data.datatype() {
        DataType::U8 => 0,
        DataType::I32 => 1,
        DataType::F32 => 3,
        DataType::I16 => 4,
        other => {
            return Err(VoxelError::InvalidArgument(format!(
                "{}: MGH stores u8, i16, i32 or f32, not {other:?}",
                path.display()
            )))
        }
    };
    let shape = geometry.shape();
    let frames = data.len() / geometry.num_voxels().max(1);
    let mut out = Vec::with_capacity(HEADER_BYTES + data.len() * data.datatype().size() + 20);
    for v in [
        1,
        shape[0] as i32,
        shape[1] as i32,
        shape[2] as i32,
        frames as i32,
        code,
        0,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&1i16.to_be_bytes());
    let a = geometry.affine();
    let delta = a.column_norms();
    for d in delta {
        out.extend_from_slice(&(d as f32).to_be_bytes());
    }
    for (c, d) in delta.iter().enumerate() {
        for row in &a.0[..3] {
            out.extend_from_slice(&((row[c] / d) as f32).to_be_bytes());
        }
    }
    let half = [
        shape[0] as f64 / 2.0,
        shape[1] as f64 / 2.0,
        shape[2] as f64 / 2.0,
    ];
    for v in a.apply(half) {
        out.extend_from_slice(&(v as f32).to_be_bytes());
    }
    out.resize(HEADER_BYTES, 0);
    data.encode_into(&mut out, true);
    // Footer: TR, flip angle, TE, TI, FoV (unknown = 0), as nibabel writes it.
    out.extend_from_slice(&[0u8; 20]);
    Ok(out)
}
