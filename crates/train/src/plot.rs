//! `loss.png`: the learning curves of a run from its `train.csv` (training loss, its
//! cross-entropy and Dice parts, and the validation loss), drawn with `plotters`.
//!
//! Text needs a TrueType font; the first of [`FONT_PATHS`] that exists is used (Debian's
//! `fonts-dejavu-core` provides it). Without one the plot is an error, never a panic.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Result, TrainError};

/// Where a sans-serif TrueType font is looked for.
pub const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

fn ensure_font() -> Result<()> {
    use std::sync::OnceLock;
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = FONT_PATHS
            .iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| {
                format!(
                    "no TrueType font found (looked in {}; install fonts-dejavu-core)",
                    FONT_PATHS.join(", ")
                )
            })?;
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        // plotters keeps the font for the life of the process.
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, leaked)
            .map_err(|_| format!("{path}: not a usable TrueType font"))
    })
    .clone()
    .map_err(TrainError::Backend)
}

/// A named curve and its colour.
type Series<'a> = (&'a str, &'a Vec<(f64, f64)>, RGBColor);

/// Curves read from `train.csv`: (samples, value) per series.
struct Curves {
    loss: Vec<(f64, f64)>,
    cross_entropy: Vec<(f64, f64)>,
    dice: Vec<(f64, f64)>,
    validation: Vec<(f64, f64)>,
    /// Share of the free-running validation samples passed (absent in older logs).
    free_running: Vec<(f64, f64)>,
}

fn read_csv(csv: &Path) -> Result<Curves> {
    let text = std::fs::read_to_string(csv).map_err(|e| TrainError::io(csv, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| TrainError::checkpoint(csv, format!("has no column {name:?}")))
    };
    let (samples, loss, ce, dice, val) = (
        col("samples")?,
        col("loss")?,
        col("cross_entropy")?,
        col("dice")?,
        col("validation")?,
    );
    let free_running = col("free_running_success").ok();
    let mut c = Curves {
        loss: Vec::new(),
        cross_entropy: Vec::new(),
        dice: Vec::new(),
        validation: Vec::new(),
        free_running: Vec::new(),
    };
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
        let Some(x) = get(samples) else { continue };
        for (i, series) in [
            (loss, &mut c.loss),
            (ce, &mut c.cross_entropy),
            (dice, &mut c.dice),
            (val, &mut c.validation),
        ] {
            if let Some(y) = get(i).filter(|y| y.is_finite()) {
                series.push((x, y));
            }
        }
        if let Some(y) = free_running.and_then(get).filter(|y| y.is_finite()) {
            c.free_running.push((x, y));
        }
    }
    Ok(c)
}

/// Draws `loss.png` from a run's `train.csv`.
pub fn loss_png(csv: &Path, out: &Path) -> Result<()> {
    ensure_font()?;
    let curves = read_csv(csv)?;
    if curves.loss.is_empty() {
        return Err(TrainError::checkpoint(csv, "has no rows to plot"));
    }
    let draw_error = |e: String| TrainError::Backend(format!("drawing {}: {e}", out.display()));
    let x_max = curves
        .loss
        .iter()
        .chain(&curves.validation)
        .map(|p| p.0)
        .fold(1.0f64, f64::max);
    let y_max = curves
        .loss
        .iter()
        .chain(&curves.validation)
        .chain(&curves.cross_entropy)
        .chain(&curves.free_running)
        .map(|p| p.1)
        .fold(1e-3f64, f64::max)
        * 1.05;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "loss.png".into());
    let tmp = out.with_file_name(format!(".partial-{name}"));
    {
        let root = BitMapBackend::new(&tmp, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("VoxelPrompt joint training", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| draw_error(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("training samples")
            .y_desc("loss")
            .draw()
            .map_err(|e| draw_error(e.to_string()))?;
        let series: [Series<'_>; 5] = [
            ("loss (ce + λ·dice)", &curves.loss, RGBColor(31, 119, 180)),
            (
                "cross-entropy",
                &curves.cross_entropy,
                RGBColor(255, 127, 14),
            ),
            ("Σ dice loss", &curves.dice, RGBColor(44, 160, 44)),
            ("validation loss", &curves.validation, RGBColor(214, 39, 40)),
            (
                "free-running success (share, oracle vision)",
                &curves.free_running,
                RGBColor(148, 103, 189),
            ),
        ];
        for (name, points, color) in series {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| draw_error(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_error(e.to_string()))?;
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| TrainError::io(out, e))?;
    Ok(())
}

/// One series of a bar chart: its name, one value per category (`NaN` = no bar) and colour.
pub struct Bars<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Value per category.
    pub values: &'a [f64],
    /// Fill colour.
    pub colour: RGBColor,
}

/// Horizontal grouped bars, one row per category (top to bottom in the given order), values in
/// `0..=x_max`, written to `out` through a temporary file.
pub fn bar_chart_png(
    out: &Path,
    title: &str,
    x_label: &str,
    categories: &[String],
    series: &[Bars<'_>],
    x_max: f64,
) -> Result<()> {
    ensure_font()?;
    if categories.is_empty() || series.iter().any(|s| s.values.len() != categories.len()) {
        return Err(TrainError::Backend(format!(
            "drawing {}: every series needs one value per category",
            out.display()
        )));
    }
    let draw_error = |e: String| TrainError::Backend(format!("drawing {}: {e}", out.display()));
    let n = categories.len();
    let rows = series.len().max(1) as f64;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "chart.png".into());
    let tmp = out.with_file_name(format!(".partial-{name}"));
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4);
    let height = (90 + 22 * n * series.len().max(1)).clamp(240, 2400) as u32;
    {
        let root = BitMapBackend::new(&tmp, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        let labels: Vec<String> = categories.to_vec();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size((8 * longest + 16).clamp(60, 320) as u32)
            .build_cartesian_2d(0.0..x_max, -0.5..n as f64 - 0.5)
            .map_err(|e| draw_error(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|y: &f64| {
                // Category k is centred on y = n-1-k (top to bottom), where the ticks fall.
                let k = n as f64 - 1.0 - y;
                let i = k.round();
                if (k - i).abs() < 0.01 && i >= 0.0 && (i as usize) < n {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc(x_label)
            .draw()
            .map_err(|e| draw_error(e.to_string()))?;
        let band = 0.8 / rows;
        for (j, s) in series.iter().enumerate() {
            let colour = s.colour;
            let bars = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(move |(k, &v)| {
                    let top = (n - 1 - k) as f64 + 0.4 - j as f64 * band;
                    Rectangle::new([(0.0, top - band), (v.min(x_max), top)], colour.filled())
                });
            chart
                .draw_series(bars)
                .map_err(|e| draw_error(e.to_string()))?
                .label(s.name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_error(e.to_string()))?;
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| TrainError::io(out, e))?;
    Ok(())
}
