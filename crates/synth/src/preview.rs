//! PNG previews: three orthogonal slices of an image side by side, lesion voxels tinted red,
//! so a person can check a synthetic subject at a glance. The panels are drawn by
//! [`voxel::render`] (its conventions: axial | coronal | sagittal, neurological left-right,
//! orientation letters on the edges); this module picks the slices, the grey scale and the
//! lesion tint, and stacks rows.

use crate::error::{Result, SynthError};
use std::path::Path;
use voxel::render::{render_triplanar, Focus, Overlay, RenderOptions, RgbImage, Window};
use voxel::{Image, LabelMap};

/// Lesion voxels are blended half-way to this colour (and outlined in it).
const LESION_RGB: [u8; 3] = [255, 0, 0];

/// Writes axial | coronal | sagittal slices through voxel `at` of `image` (values in [0, 1]),
/// with `lesions` (same grid, nonzero = lesion) blended in red, each voxel drawn about `zoom`
/// pixels wide.
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
    for (img, les) in rows {
        let same = img.shape() == first.shape() && les.is_none_or(|l| l.shape() == first.shape());
        if !same {
            return Err(SynthError::InvalidArgument(
                "montage rows must share one grid".into(),
            ));
        }
    }
    let g = first.geometry();
    let shape = g.shape();
    let at: [f64; 3] = std::array::from_fn(|a| at[a].min(shape[a].saturating_sub(1)) as f64);
    let finest_mm = g.spacing_mm().into_iter().fold(f64::INFINITY, f64::min);
    let tint = |_: i32| LESION_RGB;
    let pictures = rows
        .iter()
        .map(|(image, lesions)| {
            let options = RenderOptions {
                focus: Focus::WorldMm(g.voxel_to_world(at)),
                window: Window::Range {
                    low: 0.0,
                    high: 1.0,
                },
                overlay: lesions.map(|labels| Overlay {
                    labels,
                    alpha: 0.5,
                    colours: Some(&tint),
                }),
                pixel_mm: Some(finest_mm / zoom.max(1) as f64),
            };
            render_triplanar(image, &options)
        })
        .collect::<voxel::Result<Vec<_>>>()?;
    Ok(stack_rows(&pictures).write_png(path)?)
}

/// Pictures one below the other, left-aligned on black.
fn stack_rows(pictures: &[RgbImage]) -> RgbImage {
    let width = pictures.iter().map(|p| p.width).max().unwrap_or(0);
    let height = pictures.iter().map(|p| p.height).sum();
    let mut out = RgbImage::new(width, height);
    let mut y0 = 0;
    for p in pictures {
        for y in 0..p.height {
            let src = &p.pixels[3 * y * p.width..3 * (y + 1) * p.width];
            let o = 3 * (y0 + y) * width;
            out.pixels[o..o + src.len()].copy_from_slice(src);
        }
        y0 += p.height;
    }
    out
}
