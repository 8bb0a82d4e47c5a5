//! Measurements with units, all from `voxel::measure`: `volume` (mL), `extents` (mm along
//! L-R, A-P, S-I), `bbox` and `centroid` (world RAS+ mm), `mean`/`std` (image units, inside a
//! mask or over the whole image) and `snr`. An empty mask has volume 0; the other
//! measurements refuse it rather than return NaN.

use super::voxel_error;
use crate::context::{CallResult, Context};
use crate::values::{MaskHandle, VolumeHandle};
use rhai::{Array, Dynamic, Engine, Map};
use std::sync::Arc;
use voxel::measure;
use voxel::{Image, Mask, Volume};

fn triple(v: [f64; 3]) -> Array {
    v.iter().map(|&x| Dynamic::from_float(x)).collect()
}

/// Mean and std over `mask`, or over the whole image without one. The whole-image mask is a
/// transient one byte per voxel, at most the input's own size, so it is not counted.
fn mean_std(image: &Image, mask: Option<&Mask>) -> voxel::Result<(f64, f64)> {
    match mask {
        Some(m) => measure::mean_std(image, m),
        None => measure::mean_std(image, &Volume::filled(image.geometry().clone(), true)),
    }
}

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    let c = ctx.clone();
    engine.register_fn("volume", move |m: MaskHandle| -> CallResult<f64> {
        c.check_deadline()?;
        c.charge(m.0.data().len(), "volume")?;
        Ok(measure::volume_ml(&m.0))
    });
    let c = ctx.clone();
    engine.register_fn("extents", move |m: MaskHandle| -> CallResult<Array> {
        c.check_deadline()?;
        c.charge(m.0.data().len(), "extents")?;
        Ok(triple(
            measure::extents_mm(&m.0).map_err(|e| voxel_error("extents", e))?,
        ))
    });
    let c = ctx.clone();
    engine.register_fn("bbox", move |m: MaskHandle| -> CallResult<Map> {
        c.check_deadline()?;
        c.charge(m.0.data().len(), "bbox")?;
        let b = measure::bounding_box_mm(&m.0).map_err(|e| voxel_error("bbox", e))?;
        let mut map = Map::new();
        map.insert("min".into(), Dynamic::from_array(triple(b.min_mm)));
        map.insert("max".into(), Dynamic::from_array(triple(b.max_mm)));
        Ok(map)
    });
    let c = ctx.clone();
    engine.register_fn("centroid", move |m: MaskHandle| -> CallResult<Array> {
        c.check_deadline()?;
        c.charge(m.0.data().len(), "centroid")?;
        Ok(triple(
            measure::centroid_mm(&m.0).map_err(|e| voxel_error("centroid", e))?,
        ))
    });

    for (name, pick) in [("mean", 0usize), ("std", 1usize)] {
        let c = ctx.clone();
        engine.register_fn(name, move |v: VolumeHandle| -> CallResult<f64> {
            c.check_deadline()?;
            c.charge(2 * v.0.data().len(), name)?;
            let ms = mean_std(&v.0, None).map_err(|e| voxel_error(name, e))?;
            Ok(if pick == 0 { ms.0 } else { ms.1 })
        });
        let c = ctx.clone();
        engine.register_fn(
            name,
            move |v: VolumeHandle, m: MaskHandle| -> CallResult<f64> {
                c.check_deadline()?;
                c.charge(2 * v.0.data().len(), name)?;
                let ms = mean_std(&v.0, Some(&m.0)).map_err(|e| voxel_error(name, e))?;
                Ok(if pick == 0 { ms.0 } else { ms.1 })
            },
        );
    }

    let c = ctx.clone();
    engine.register_fn(
        "snr",
        move |v: VolumeHandle, roi: MaskHandle| -> CallResult<f64> {
            c.check_deadline()?;
            c.charge(2 * v.0.data().len(), "snr")?;
            measure::snr(&v.0, &roi.0, None).map_err(|e| voxel_error("snr", e))
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "snr",
        move |v: VolumeHandle, roi: MaskHandle, background: MaskHandle| -> CallResult<f64> {
            c.check_deadline()?;
            c.charge(4 * v.0.data().len(), "snr")?;
            measure::snr(&v.0, &roi.0, Some(&background.0)).map_err(|e| voxel_error("snr", e))
        },
    );
}
