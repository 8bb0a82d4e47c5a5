//! `voxelprompt render IMAGE --out PNG [--labels L] [--roi ID | --at X Y Z] [--window LO HI]`

use anyhow::{Context, Result};
use std::path::PathBuf;
use voxel::io;
use voxel::lut::ColorLut;
use voxel::render::{self, Focus, Overlay, RenderOptions, Window};

/// Arguments of `render`.
#[derive(clap::Args)]
pub struct RenderArgs {
    /// Image to draw.
    image: PathBuf,
    /// PNG to write (never one of the inputs).
    #[arg(long)]
    out: PathBuf,
    /// Label map drawn on top (fill and contour).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Colour table for the labels (default: FreeSurfer aseg colours).
    #[arg(long)]
    lut: Option<PathBuf>,
    /// Centre the panels on the centroid of this label.
    #[arg(long, conflicts_with = "at")]
    roi: Option<i32>,
    /// Centre the panels on this world point (RAS mm).
    #[arg(long, num_args = 3, allow_negative_numbers = true)]
    at: Option<Vec<f64>>,
    /// Intensities shown black and white (default: 1st and 99th percentiles).
    #[arg(long, num_args = 2, allow_negative_numbers = true)]
    window: Option<Vec<f32>>,
    /// Pixel size in mm (default: fine enough for about 400 pixels across the widest panel).
    #[arg(long)]
    pixel_mm: Option<f64>,
    /// Overlay opacity, 0–1.
    #[arg(long, default_value_t = 0.4)]
    alpha: f32,
}

/// Renders the tri-planar picture.
pub fn run(args: &RenderArgs) -> Result<()> {
    let mut inputs = vec![args.image.as_path()];
    inputs.extend(args.labels.as_deref());
    inputs.extend(args.lut.as_deref());
    io::ensure_not_input(&args.out, &inputs)?;
    let image = super::scan_input::read_scan(&args.image)
        .with_context(|| format!("reading {}", args.image.display()))?;
    let labels = match &args.labels {
        Some(p) => Some(io::read_labels(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let lut = match &args.lut {
        Some(p) => ColorLut::read(p)?,
        None => ColorLut::freesurfer_aseg(),
    };
    let roi_mask = match (args.roi, &labels) {
        (Some(id), Some(l)) => {
            let m = l.mask_of(id);
            anyhow::ensure!(!m.is_empty(), "label {id} does not occur in the label map");
            Some(m)
        }
        (Some(_), None) => anyhow::bail!("--roi needs --labels"),
        _ => None,
    };
    let focus = match (&roi_mask, &args.at) {
        (Some(m), _) => Focus::MaskCentroid(m),
        (None, Some(p)) => Focus::WorldMm([p[0], p[1], p[2]]),
        _ => Focus::Centre,
    };
    let window = match &args.window {
        Some(w) => Window::Range {
            low: w[0],
            high: w[1],
        },
        None => Window::Auto,
    };
    let colour = |id: i32| lut.color(id);
    let options = RenderOptions {
        focus,
        window,
        overlay: labels.as_ref().map(|l| Overlay {
            labels: l,
            alpha: args.alpha.clamp(0.0, 1.0),
            colours: Some(&colour),
        }),
        pixel_mm: Some(args.pixel_mm.unwrap_or_else(|| {
            let g = image.geometry();
            let finest = g.spacing_mm().into_iter().fold(f64::INFINITY, f64::min);
            let widest = g.fov_mm().into_iter().fold(0.0, f64::max);
            finest.min(widest / 400.0)
        })),
    };
    render::save_triplanar_png(&args.out, &image, &options)?;
    crate::cmd::say!("wrote {}", args.out.display());
    if crate::cmd::json() {
        let written = [args.out.display().to_string()];
        crate::cmd::print_json(&serde_json::json!({ "written": written }))?;
    }
    Ok(())
}
