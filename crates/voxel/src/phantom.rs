//! Analytic phantoms with known truth: spheres, ellipsoids and boxes in world millimetres, and a
//! small labelled "head" used by the demo, the CLI tests and other crates' tests.

use crate::error::Result;
use crate::geometry::Geometry;
use crate::lut::ColorLut;
use crate::volume::{Image, LabelMap, Mask, Volume};
use rayon::prelude::*;

/// Voxels whose centre lies inside the ellipsoid with semi-axes `radii_mm` (world-axis aligned)
/// centred at `centre_mm`.
pub fn ellipsoid_mask(geometry: &Geometry, centre_mm: [f64; 3], radii_mm: [f64; 3]) -> Mask {
    world_mask(geometry, |p| {
        (0..3)
            .map(|a| ((p[a] - centre_mm[a]) / radii_mm[a]).powi(2))
            .sum::<f64>()
            <= 1.0
    })
}

/// Voxels whose centre lies within `radius_mm` of `centre_mm`.
pub fn sphere_mask(geometry: &Geometry, centre_mm: [f64; 3], radius_mm: f64) -> Mask {
    ellipsoid_mask(geometry, centre_mm, [radius_mm; 3])
}

/// Voxels whose centre lies inside the world-aligned box `[lo_mm, hi_mm]`.
pub fn box_mask(geometry: &Geometry, lo_mm: [f64; 3], hi_mm: [f64; 3]) -> Mask {
    world_mask(geometry, |p| {
        (0..3).all(|a| p[a] >= lo_mm[a] && p[a] <= hi_mm[a])
    })
}

fn world_mask(geometry: &Geometry, inside: impl Fn([f64; 3]) -> bool + Sync) -> Mask {
    let n = geometry.num_voxels();
    let data: Vec<bool> = (0..n)
        .into_par_iter()
        .map(|idx| {
            let c = geometry.coords(idx);
            inside(geometry.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]))
        })
        .collect();
    Volume::filled(geometry.clone(), false)
        .with_data(data)
        .unwrap_or_else(|_| Volume::filled(geometry.clone(), false))
}

/// A labelled ellipsoidal head with FreeSurfer aseg label ids and a T1-like image: cerebral
/// white matter (2/41), cortex (3/42), lateral ventricles (4/43), hippocampi (17/53) and a
/// lesion (label 99, "Lesion") in the left hemisphere. World origin at the head centre.
pub struct DemoHead {
    /// T1-weighted-looking image in [0, 1] with mild deterministic noise.
    pub image: Image,
    /// Label map on the same grid.
    pub labels: LabelMap,
    /// Names and colours of the labels.
    pub lut: ColorLut,
}

/// Builds the demo head on a grid of `spacing_mm` voxels covering 160 × 192 × 160 mm.
pub fn demo_head(spacing_mm: [f64; 3]) -> Result<DemoHead> {
    let fov = [160.0, 192.0, 160.0];
    let shape = [
        (fov[0] / spacing_mm[0]).round().max(1.0) as usize,
        (fov[1] / spacing_mm[1]).round().max(1.0) as usize,
        (fov[2] / spacing_mm[2]).round().max(1.0) as usize,
    ];
    let origin = [
        -(shape[0] as f64 - 1.0) * spacing_mm[0] / 2.0,
        -(shape[1] as f64 - 1.0) * spacing_mm[1] / 2.0,
        -(shape[2] as f64 - 1.0) * spacing_mm[2] / 2.0,
    ];
    let g = Geometry::from_spacing(shape, spacing_mm, origin)?;
    let n = g.num_voxels();
    let mut labels = vec![0i32; n];
    let mut paint = |mask: Mask, label: i32| {
        for (l, &m) in labels.iter_mut().zip(mask.data()) {
            if m {
                *l = label;
            }
        }
    };
    for (side, x) in [(-1.0, -1), (1.0, 1)] {
        let (wm, ctx, vent, hip) = if x < 0 {
            (2, 3, 4, 17)
        } else {
            (41, 42, 43, 53)
        };
        let cx = side * 32.0;
        // Hemispheres stop at the midline so left and right are exact mirror images.
        let hemi = world_mask(&g, |p| p[0] * side > 0.0);
        let within = |m: Mask| m.zip_map(&hemi, |a, b| a && b).unwrap_or(m);
        paint(
            within(ellipsoid_mask(&g, [cx, 0.0, 5.0], [34.0, 72.0, 55.0])),
            ctx,
        );
        paint(
            within(ellipsoid_mask(&g, [cx, 0.0, 5.0], [29.0, 66.0, 49.0])),
            wm,
        );
        paint(
            ellipsoid_mask(&g, [side * 9.0, 2.0, 12.0], [5.0, 26.0, 9.0]),
            vent,
        );
        paint(
            ellipsoid_mask(&g, [side * 26.0, -18.0, -14.0], [6.0, 18.0, 6.0]),
            hip,
        );
    }
    paint(sphere_mask(&g, [-30.0, 25.0, 25.0], 9.0), 99);
    let label_map = Volume::new(g.clone(), labels)?;
    let intensity = |l: i32| -> f32 {
        match l {
            2 | 41 => 0.85,
            3 | 42 => 0.55,
            4 | 43 => 0.15,
            17 | 53 => 0.6,
            99 => 0.35,
            _ => 0.02,
        }
    };
    let data: Vec<f32> = label_map
        .data()
        .par_iter()
        .enumerate()
        .map(|(i, &l)| {
            // Deterministic hash noise: reproducible without an RNG dependency.
            let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
            let u = (h % 10_000) as f32 / 10_000.0 - 0.5;
            (intensity(l) + 0.04 * u).clamp(0.0, 1.0)
        })
        .collect();
    let image = Volume::new(g, data)?;
    let mut lut_text = String::new();
    let base = ColorLut::freesurfer_aseg();
    for id in [0, 2, 3, 4, 17, 41, 42, 43, 53] {
        let c = base.color(id);
        lut_text.push_str(&format!(
            "{id} {} {} {} {} 0\n",
            base.name(id).unwrap_or("?"),
            c[0],
            c[1],
            c[2]
        ));
    }
    lut_text.push_str("99 Lesion 255 40 40 0\n");
    let lut = ColorLut::parse(&lut_text, std::path::Path::new("<demo lut>"))?;
    Ok(DemoHead {
        image,
        labels: label_map,
        lut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_head_has_all_labels() {
        let h = demo_head([4.0, 4.0, 4.0]).unwrap();
        assert_eq!(h.labels.labels(), vec![0, 2, 3, 4, 17, 41, 42, 43, 53, 99]);
        assert_eq!(h.lut.name(99), Some("Lesion"));
        assert!(h.image.data().iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
