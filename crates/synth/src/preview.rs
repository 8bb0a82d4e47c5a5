//! PNG previews: three orthogonal slices of an image side by side, lesion voxels tinted red,
//! so a person can check a synthetic subject at a glance (`voxel` has no renderer yet).

use crate::error::{Result, SynthError};
use std::path::Path;
use voxel::{Image, LabelMap};

/// Writes sagittal | coronal | axial slices through voxel `at` of `image` (values in [0, 1]),
/// with `lesions` (same grid, nonzero = lesion) blended in red, each pixel one voxel scaled by
/// `zoom`.
pub fn write_montage(
    path: &Path,
    image: &Image,
    lesions: Option<&LabelMap>,
    at: [usize; 3],
    zoom: usize,
) -> Result<()> {
    write_montage_rows(path, &[(image, lesions)], at, zoom)
}

/// Like [`write_montage`] with one row of three slices per `(image, lesion overlay)` pair, e.g.
/// the same subject on several contrasts; all images must share a grid.
pub fn write_montage_rows(
    path: &Path,
    rows: &[(&Image, Option<&LabelMap>)],
    at: [usize; 3],
    zoom: usize,
) -> Result<()> {
    let Some((first, _)) = rows.first() else {
        return Err(SynthError::InvalidArgument(
            "a montage needs at least one image".into(),
        ));
    };
    let [nx, ny, nz] = first.shape();
    for (img, les) in rows {
        let same = img.shape() == first.shape() && les.is_none_or(|l| l.shape() == first.shape());
        if !same {
            return Err(SynthError::InvalidArgument(
                "montage rows must share one grid".into(),
            ));
        }
    }
    let zoom = zoom.max(1);
    let at = [at[0].min(nx - 1), at[1].min(ny - 1), at[2].min(nz - 1)];
    // Panels (width axis, height axis, fixed axis): sagittal (y, z), coronal (x, z), axial (x, y).
    let panels = [(1usize, 2usize, 0usize), (0, 2, 1), (0, 1, 2)];
    let dims = [nx, ny, nz];
    let width: usize = panels.iter().map(|p| dims[p.0]).sum::<usize>() * zoom;
    let row_height = dims.iter().copied().max().unwrap_or(1) * zoom;
    let height = row_height * rows.len();
    let mut rgb = vec![0u8; width * height * 3];
    for (r, (image, lesions)) in rows.iter().enumerate() {
        let mut x0 = 0;
        for &(wa, ha, fa) in &panels {
            for v in 0..dims[ha] {
                for u in 0..dims[wa] {
                    let mut ijk = [0usize; 3];
                    ijk[wa] = u;
                    ijk[ha] = v;
                    ijk[fa] = at[fa];
                    let g = (image.at(ijk[0], ijk[1], ijk[2]).clamp(0.0, 1.0) * 255.0) as u8;
                    let lesion = lesions.is_some_and(|l| l.at(ijk[0], ijk[1], ijk[2]) != 0);
                    let px = if lesion {
                        [g / 2 + 127, g / 2, g / 2]
                    } else {
                        [g, g, g]
                    };
                    // Superior/anterior up: image rows run top to bottom.
                    let row0 = r * row_height + (dims[ha] - 1 - v) * zoom;
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            let o = ((row0 + dy) * width + x0 + u * zoom + dx) * 3;
                            rgb[o..o + 3].copy_from_slice(&px);
                        }
                    }
                }
            }
            x0 += dims[wa] * zoom;
        }
    }
    let io = |source: std::io::Error| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    w.write_image_data(&rgb)
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    Ok(())
}
