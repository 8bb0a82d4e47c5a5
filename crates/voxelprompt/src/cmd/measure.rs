//! `voxelprompt measure LABELS [--image IMG] [--lut LUT] [--format table|csv|json]` (`--json`
//! is `--format json`)

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use voxel::io;
use voxel::lut::ColorLut;
use voxel::measure;

use crate::cmd::exit::{Exit, EXIT_BAD_INPUT};

/// Output formats of `measure`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MeasureFormat {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of rows.
    Json,
}

/// Arguments of `measure`.
#[derive(clap::Args)]
pub struct MeasureArgs {
    /// Label map (integer NIfTI or MGH/MGZ).
    labels: PathBuf,
    /// Image to compute the mean and standard deviation of inside each label (same grid).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Colour table naming the labels (`id name [R G B A]` per line). Default: a table beside
    /// the map (`MAP.txt`, `STEM.txt`, `STEM_lut.txt`, `STEM_LUT.txt`), else FreeSurfer's names
    /// when the map is recognisably FreeSurfer's, else ids only.
    #[arg(long)]
    lut: Option<PathBuf>,
    /// Output format (default: table; json under `--json`).
    #[arg(long, value_enum)]
    format: Option<MeasureFormat>,
}

#[derive(Serialize)]
struct Row {
    name: String,
    #[serde(flatten)]
    stats: measure::LabelStats,
}

/// The colour tables looked for beside a label map, in order.
pub fn sidecar_tables(labels: &Path) -> Vec<PathBuf> {
    let name = labels
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = [".nii.gz", ".nii", ".mgz", ".mgh"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name)
        .to_string();
    let dir = labels.parent().unwrap_or(Path::new(""));
    vec![
        dir.join(format!("{name}.txt")),
        dir.join(format!("{stem}.txt")),
        dir.join(format!("{stem}_lut.txt")),
        dir.join(format!("{stem}_LUT.txt")),
    ]
}

/// Whether a map's labels are recognisably FreeSurfer's: both cerebral white matters (2, 41)
/// and both hippocampi (17, 53) present, and at least 80 % of its labels among FreeSurfer's
/// aseg ids and cortical parcel ranges (an extra lesion label or two is allowed; it stays
/// unnamed).
pub fn looks_like_freesurfer(ids: &[i32]) -> bool {
    let aseg = ColorLut::freesurfer_aseg();
    let known = |id: i32| aseg.name(id).is_some() || (1000..3000).contains(&id);
    let nonzero: Vec<i32> = ids.iter().copied().filter(|&i| i != 0).collect();
    let known_count = nonzero.iter().filter(|&&i| known(i)).count();
    [2, 41, 17, 53].iter().all(|id| ids.contains(id)) && known_count * 5 >= nonzero.len() * 4
}

/// The table naming a map's labels when none is given (see [`MeasureArgs::lut`]).
fn default_lut(labels: &Path, ids: &[i32]) -> Result<Option<ColorLut>> {
    if let Some(table) = sidecar_tables(labels).into_iter().find(|p| p.is_file()) {
        let lut = ColorLut::read(&table)
            .with_context(|| format!("reading colour table {}", table.display()))?;
        return Ok(Some(lut));
    }
    Ok(looks_like_freesurfer(ids).then(ColorLut::freesurfer_aseg))
}

/// Measures every non-zero label and prints one row per label.
pub fn run(args: &MeasureArgs) -> Result<()> {
    let format = match (args.format, crate::cmd::json()) {
        (None, false) => MeasureFormat::Table,
        (None | Some(MeasureFormat::Json), true) => MeasureFormat::Json,
        (Some(f), false) => f,
        (Some(f), true) => {
            return Err(Exit::new(
                EXIT_BAD_INPUT,
                format!(
                    "--json asks for JSON but --format for {}: give one of them",
                    clap::ValueEnum::to_possible_value(&f)
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default()
                ),
            )
            .into())
        }
    };
    let labels = io::read_labels(&args.labels)
        .with_context(|| format!("reading label map {}", args.labels.display()))?;
    let image = match &args.image {
        Some(p) => Some(
            super::scan_input::read_scan(p)
                .with_context(|| format!("reading image {}", p.display()))?,
        ),
        None => None,
    };
    let lut = match &args.lut {
        Some(p) => Some(
            ColorLut::read(p).with_context(|| format!("reading colour table {}", p.display()))?,
        ),
        None => default_lut(&args.labels, &labels.labels())?,
    };
    let stats =
        measure::measure_labels(&labels, image.as_ref()).with_context(|| match &args.image {
            Some(img) => format!(
                "measuring {} with image {}",
                args.labels.display(),
                img.display()
            ),
            None => format!("measuring {}", args.labels.display()),
        })?;
    let rows: Vec<Row> = stats
        .into_iter()
        .map(|s| Row {
            name: lut
                .as_ref()
                .and_then(|l| l.name(s.label))
                .unwrap_or("")
                .to_string(),
            stats: s,
        })
        .collect();
    let fmt_opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
    match format {
        MeasureFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        MeasureFormat::Csv => {
            println!("label,name,voxel_count,volume_ml,extent_lr_mm,extent_ap_mm,extent_si_mm,centroid_x_mm,centroid_y_mm,centroid_z_mm,mean,std");
            for r in &rows {
                let s = &r.stats;
                println!(
                    "{},{},{},{:.4},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{},{}",
                    r.stats.label,
                    r.name,
                    s.voxel_count,
                    s.volume_ml,
                    s.extents_mm[0],
                    s.extents_mm[1],
                    s.extents_mm[2],
                    s.centroid_mm[0],
                    s.centroid_mm[1],
                    s.centroid_mm[2],
                    fmt_opt(s.mean),
                    fmt_opt(s.std)
                );
            }
        }
        MeasureFormat::Table => {
            println!(
                "{:>6}  {:<28} {:>9} {:>11}  {:>22}  {:>24}  {:>10} {:>10}",
                "label",
                "name",
                "voxels",
                "volume_mL",
                "extents_mm (LR AP SI)",
                "centroid_mm (x y z)",
                "mean",
                "std"
            );
            for r in &rows {
                let s = &r.stats;
                let e = s.extents_mm;
                let c = s.centroid_mm;
                println!(
                    "{:>6}  {:<28} {:>9} {:>11.3}  {:>6.1} {:>6.1} {:>6.1}    {:>7.1} {:>7.1} {:>7.1}  {:>10} {:>10}",
                    r.stats.label,
                    r.name,
                    s.voxel_count,
                    s.volume_ml,
                    e[0],
                    e[1],
                    e[2],
                    c[0],
                    c[1],
                    c[2],
                    fmt_opt(s.mean),
                    fmt_opt(s.std)
                );
            }
        }
    }
    Ok(())
}
