//! Tri-planar slice pictures: axial, coronal and sagittal panels side by side through one world
//! point, with window/level, an optional label overlay and orientation letters, saved as PNG.
//!
//! Conventions, so a picture reads the same whatever order the file stores its voxels in:
//! the volume is reoriented to RAS first and every panel is upright (anterior or superior at the
//! top). Panels use the **neurological** convention: the patient's left is on the image left and
//! right on the right (axial seen from above, coronal seen from behind); sagittal panels show
//! anterior on the left. Each panel carries letters on its edges (L/R, A/P, S/I) naming the
//! direction each edge faces, so the convention is never ambiguous. Panels are resampled to
//! square pixels in mm (by default the finest voxel spacing), so anisotropic voxels keep the true
//! aspect ratio; every panel shares that pixel size.

use crate::error::{Result, VoxelError};
use crate::intensity::percentiles;
use crate::volume::{Image, LabelMap, Mask};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Largest panel side chosen automatically (pixels); the pixel size grows to respect it.
const AUTO_MAX_PANEL_PX: f64 = 1024.0;
/// Largest panel side accepted for an explicit pixel size (pixels).
const MAX_PANEL_PX: f64 = 8192.0;
/// Black gap between panels (pixels).
const GAP_PX: usize = 4;
/// Orientation letter colour (yellow, drawn over a black shadow).
const LETTER_RGB: [u8; 3] = [255, 230, 0];

/// An 8-bit RGB picture, rows top to bottom, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height × 3` bytes, row-major, top row first.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A black picture.
    pub fn new(width: usize, height: usize) -> RgbImage {
        RgbImage {
            width,
            height,
            pixels: vec![0; width * height * 3],
        }
    }

    /// Colour of pixel `(x, y)` (x to the right, y down); panics outside like slice indexing.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let o = 3 * (y * self.width + x);
        [self.pixels[o], self.pixels[o + 1], self.pixels[o + 2]]
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let o = 3 * (y * self.width + x);
        self.pixels[o..o + 3].copy_from_slice(&rgb);
    }

    /// Writes the picture as an 8-bit RGB PNG. The file is written under a temporary name in the
    /// same directory and renamed into place, so readers never see a half-written file.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let (w, h) = match (u32::try_from(self.width), u32::try_from(self.height)) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
            _ => {
                return Err(VoxelError::InvalidArgument(format!(
                    "cannot write a {}×{} picture",
                    self.width, self.height
                )))
            }
        };
        let name = path.file_name().ok_or_else(|| {
            VoxelError::InvalidArgument(format!("{}: not a file path", path.display()))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            let mut out = std::io::BufWriter::new(file);
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().map_err(png_io)?;
            writer.write_image_data(&self.pixels).map_err(png_io)?;
            writer.finish().map_err(png_io)?;
            out.flush()?;
            out.get_ref().sync_all()
        })();
        match result.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Best effort: the error that matters is the write's.
                let _ = std::fs::remove_file(&tmp);
                Err(VoxelError::io(path, e))
            }
        }
    }
}

fn png_io(e: png::EncodingError) -> std::io::Error {
    match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Which world point the three panels pass through.
#[derive(Clone, Copy, Debug, Default)]
pub enum Focus<'a> {
    /// The centre of the image grid.
    #[default]
    Centre,
    /// A world position in RAS+ mm.
    WorldMm([f64; 3]),
    /// The centroid (in world mm) of a mask, on any grid.
    MaskCentroid(&'a Mask),
}

/// How intensities map to grey levels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Window {
    /// From the 1st (black) to the 99th (white) percentile of the image's finite voxels.
    #[default]
    Auto,
    /// `low` is black, `high` is white.
    Range {
        /// Intensity shown black.
        low: f32,
        /// Intensity shown white.
        high: f32,
    },
    /// The classic radiology window: centre `level`, total `width`.
    LevelWidth {
        /// Intensity in the middle of the grey ramp.
        level: f32,
        /// Intensity span from black to white.
        width: f32,
    },
}

/// A label map drawn over the image: filled with `alpha` and outlined opaquely.
#[derive(Clone, Copy)]
pub struct Overlay<'a> {
    /// The labels (any grid; sampled at each pixel's world position, nearest voxel). 0 is not
    /// drawn.
    pub labels: &'a LabelMap,
    /// Opacity of the fill, 0 (invisible) to 1 (opaque); the 1-pixel contour is always opaque.
    pub alpha: f32,
    /// Colour of each label; `None` uses [`label_colour`].
    pub colours: Option<&'a dyn Fn(i32) -> [u8; 3]>,
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("labels", &self.labels.shape())
            .field("alpha", &self.alpha)
            .field("colours", &self.colours.map(|_| "fn"))
            .finish()
    }
}

/// What to draw; `RenderOptions::default()` is the grid centre, automatic window, no overlay and
/// pixels at the finest voxel spacing.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions<'a> {
    /// The point the panels pass through.
    pub focus: Focus<'a>,
    /// Grey-level window.
    pub window: Window,
    /// Optional labels drawn on top.
    pub overlay: Option<Overlay<'a>>,
    /// Pixel size in mm; `None` = the finest voxel spacing, enlarged if a panel would exceed
    /// 1024 pixels.
    pub pixel_mm: Option<f64>,
}

/// A deterministic, well-spread colour for a label id (golden-ratio hue steps), used when no
/// colour map is given.
pub fn label_colour(label: i32) -> [u8; 3] {
    let h = (label as f64 * 0.618_033_988_749_895 + 0.13).rem_euclid(1.0) * 6.0;
    let (s, v) = (0.7, 1.0);
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to8 = |t: f64| ((t + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to8(r), to8(g), to8(b)]
}

/// Renders axial, coronal and sagittal panels (left to right) through the focus point; see the
/// module documentation for the conventions.
pub fn render_triplanar(image: &Image, options: &RenderOptions) -> Result<RgbImage> {
    let panels = render_panels(image, options)?;
    Ok(compose(&panels))
}

/// [`render_triplanar`] written to a PNG file at `path`.
pub fn save_triplanar_png(path: &Path, image: &Image, options: &RenderOptions) -> Result<()> {
    render_triplanar(image, options)?.write_png(path)
}

/// Colour of a voxel the reference has and the prediction missed.
pub const MISSED_COLOUR: [u8; 3] = [40, 200, 60];
/// Colour of a voxel the prediction added outside the reference.
pub const EXTRA_COLOUR: [u8; 3] = [230, 50, 40];
/// Colour of a voxel both masks hold.
pub const AGREED_COLOUR: [u8; 3] = [250, 220, 40];

/// A predicted mask against a reference, drawn over `image` through the reference's centroid
/// (the prediction's when the reference is empty): [`MISSED_COLOUR`] where only the reference
/// has a voxel, [`EXTRA_COLOUR`] where only the prediction has one, [`AGREED_COLOUR`] where
/// both do. The masks must share the image's grid.
pub fn save_comparison_png(
    path: &Path,
    image: &Image,
    reference: &Mask,
    predicted: &Mask,
    pixel_mm: Option<f64>,
) -> Result<()> {
    let codes: Vec<i32> = reference
        .data()
        .iter()
        .zip(predicted.data())
        .map(|(&t, &p)| i32::from(t) + 2 * i32::from(p))
        .collect();
    let labels = reference.map(i32::from).with_data(codes)?;
    let colour = |code: i32| match code {
        1 => MISSED_COLOUR,
        2 => EXTRA_COLOUR,
        _ => AGREED_COLOUR,
    };
    let focus = if reference.count() > 0 {
        Focus::MaskCentroid(reference)
    } else if predicted.count() > 0 {
        Focus::MaskCentroid(predicted)
    } else {
        Focus::Centre
    };
    let options = RenderOptions {
        focus,
        overlay: Some(Overlay {
            labels: &labels,
            alpha: 0.4,
            colours: Some(&colour),
        }),
        pixel_mm,
        ..RenderOptions::default()
    };
    save_triplanar_png(path, image, &options)
}

/// The centroid of a mask's voxels in world mm, or `None` for an empty mask.
fn mask_centroid_mm(mask: &Mask) -> Option<[f64; 3]> {
    let [nx, ny, _] = mask.shape();
    let (sum, count) = mask
        .data()
        .par_chunks(nx * ny)
        .enumerate()
        .map(|(k, slice)| {
            let mut s = [0.0f64; 3];
            let mut c = 0u64;
            for (n, _) in slice.iter().enumerate().filter(|(_, &v)| v) {
                s[0] += (n % nx) as f64;
                s[1] += (n / nx) as f64;
                s[2] += k as f64;
                c += 1;
            }
            (s, c)
        })
        .reduce(
            || ([0.0; 3], 0),
            |a, b| {
                (
                    [a.0[0] + b.0[0], a.0[1] + b.0[1], a.0[2] + b.0[2]],
                    a.1 + b.1,
                )
            },
        );
    if count == 0 {
        return None;
    }
    let c = count as f64;
    // The affine is linear, so the world centroid is the affine of the mean index.
    Some(
        mask.geometry()
            .voxel_to_world([sum[0] / c, sum[1] / c, sum[2] / c]),
    )
}

/// One panel's sampling: pixel `(u, v)` reads RAS voxel `origin + u·du + v·dv`.
struct PanelSpec {
    width: usize,
    height: usize,
    origin: [f64; 3],
    du: [f64; 3],
    dv: [f64; 3],
    /// The voxel axis held fixed (the slice axis).
    fixed_axis: usize,
    /// Letters for the left, right, top and bottom edges.
    letters: [u8; 4],
}

fn render_panels(image: &Image, options: &RenderOptions) -> Result<[RgbImage; 3]> {
    let ras = image.to_ras();
    let g = ras.geometry();
    let shape = g.shape();
    let spacing = g.spacing_mm();

    let focus = match options.focus {
        Focus::Centre => g.center_world(),
        Focus::WorldMm(p) => p,
        Focus::MaskCentroid(m) => mask_centroid_mm(m)
            .ok_or_else(|| VoxelError::InvalidArgument("cannot focus on an empty mask".into()))?,
    };
    let c = g.world_to_voxel(focus);
    if !(0..3).all(|a| c[a] >= -0.5 && c[a] <= shape[a] as f64 - 0.5) {
        return Err(VoxelError::InvalidArgument(format!(
            "focus point {focus:?} mm lies outside the image"
        )));
    }
    // Show whole slices of data rather than blends of two.
    let slice: [f64; 3] = std::array::from_fn(|a| c[a].round().clamp(0.0, (shape[a] - 1) as f64));

    let (low, high) = window_bounds(&ras, options.window)?;
    let pixel_mm = pixel_size_mm(shape, spacing, options.pixel_mm)?;
    let px = |a: usize| ((shape[a] as f64 * spacing[a] / pixel_mm).round() as usize).max(1);
    // Voxels per pixel along axis a, so that the panel spans the full extent of the grid.
    let step = |a: usize, n: usize| shape[a] as f64 / n as f64;
    let (wx, wy, wz) = (px(0), px(1), px(2));
    let start = |a: usize, n: usize| 0.5 * step(a, n) - 0.5;
    let end = |a: usize, n: usize| shape[a] as f64 - 0.5 - 0.5 * step(a, n);
    let specs = [
        // Axial: x to the right (L→R), anterior at the top.
        PanelSpec {
            width: wx,
            height: wy,
            origin: [start(0, wx), end(1, wy), slice[2]],
            du: [step(0, wx), 0.0, 0.0],
            dv: [0.0, -step(1, wy), 0.0],
            fixed_axis: 2,
            letters: [b'L', b'R', b'A', b'P'],
        },
        // Coronal: x to the right (L→R), superior at the top.
        PanelSpec {
            width: wx,
            height: wz,
            origin: [start(0, wx), slice[1], end(2, wz)],
            du: [step(0, wx), 0.0, 0.0],
            dv: [0.0, 0.0, -step(2, wz)],
            fixed_axis: 1,
            letters: [b'L', b'R', b'S', b'I'],
        },
        // Sagittal: anterior on the left, superior at the top.
        PanelSpec {
            width: wy,
            height: wz,
            origin: [slice[0], end(1, wy), end(2, wz)],
            du: [0.0, -step(1, wy), 0.0],
            dv: [0.0, 0.0, -step(2, wz)],
            fixed_axis: 0,
            letters: [b'A', b'P', b'S', b'I'],
        },
    ];

    let overlay = match &options.overlay {
        Some(o) => {
            if !(0.0..=1.0).contains(&o.alpha) {
                return Err(VoxelError::InvalidArgument(format!(
                    "overlay alpha {} must be within 0–1",
                    o.alpha
                )));
            }
            let to_overlay = o
                .labels
                .geometry()
                .affine()
                .inverse()
                .ok_or_else(|| VoxelError::InvalidGeometry("overlay affine is singular".into()))?
                .compose(g.affine());
            Some((o, to_overlay))
        }
        None => None,
    };

    let panels = specs.map(|spec| {
        let mut pic = RgbImage::new(spec.width, spec.height);
        let scale = 255.0 / (high - low);
        for v in 0..spec.height {
            for u in 0..spec.width {
                let p: [f64; 3] = std::array::from_fn(|a| {
                    spec.origin[a] + u as f64 * spec.du[a] + v as f64 * spec.dv[a]
                });
                let value = bilinear_in_plane(ras.data(), shape, p, spec.fixed_axis);
                let grey = ((value as f64 - low) * scale).clamp(0.0, 255.0);
                let grey = if grey.is_nan() { 0 } else { grey.round() as u8 };
                pic.set(u, v, [grey; 3]);
            }
        }
        if let Some((o, to_overlay)) = &overlay {
            let labels: Vec<i32> = (0..spec.width * spec.height)
                .map(|n| {
                    let (u, v) = ((n % spec.width) as f64, (n / spec.width) as f64);
                    let p: [f64; 3] =
                        std::array::from_fn(|a| spec.origin[a] + u * spec.du[a] + v * spec.dv[a]);
                    nearest_label(o.labels, to_overlay.apply(p))
                })
                .collect();
            draw_overlay(&mut pic, &labels, o);
        }
        draw_letters(&mut pic, spec.letters);
        pic
    });
    Ok(panels)
}

/// Pixel size: explicit (checked) or the finest spacing, grown so no panel side exceeds the
/// automatic limit.
fn pixel_size_mm(shape: [usize; 3], spacing: [f64; 3], requested: Option<f64>) -> Result<f64> {
    let extent = (0..3)
        .map(|a| shape[a] as f64 * spacing[a])
        .fold(0.0, f64::max);
    match requested {
        Some(p) if p > 0.0 && p.is_finite() => {
            if extent / p > MAX_PANEL_PX {
                return Err(VoxelError::TooLarge(format!(
                    "pixels of {p} mm would make a panel {:.0} pixels wide (limit {MAX_PANEL_PX})",
                    extent / p
                )));
            }
            Ok(p)
        }
        Some(p) => Err(VoxelError::InvalidArgument(format!(
            "pixel size {p} mm must be positive and finite"
        ))),
        None => {
            let finest = spacing.iter().copied().fold(f64::INFINITY, f64::min);
            Ok(finest.max(extent / AUTO_MAX_PANEL_PX))
        }
    }
}

fn window_bounds(image: &Image, window: Window) -> Result<(f64, f64)> {
    let (low, high) = match window {
        Window::Auto => match percentiles(image.data(), &[1.0, 99.0]) {
            Ok(p) => (p[0] as f64, p[1] as f64),
            // No finite voxel at all: everything will be drawn black.
            Err(_) => (0.0, 1.0),
        },
        Window::Range { low, high } => (low as f64, high as f64),
        Window::LevelWidth { level, width } => (
            level as f64 - width as f64 / 2.0,
            level as f64 + width as f64 / 2.0,
        ),
    };
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(VoxelError::InvalidArgument(format!(
            "window [{low}, {high}] must be finite and ordered"
        )));
    }
    // A flat window would divide by zero; show values above it white.
    Ok(if high > low {
        (low, high)
    } else {
        (low, low + 1e-6_f64.max(low.abs() * 1e-6))
    })
}

/// Bilinear interpolation in the two axes other than `fixed_axis` (whose coordinate is already
/// a whole slice index), clamped to the edge voxels.
fn bilinear_in_plane(data: &[f32], shape: [usize; 3], p: [f64; 3], fixed_axis: usize) -> f32 {
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    let mut f = [0.0f32; 3];
    for a in 0..3 {
        let x = p[a].clamp(0.0, (shape[a] - 1) as f64);
        if a == fixed_axis {
            lo[a] = x.round() as usize;
            hi[a] = lo[a];
        } else {
            lo[a] = x.floor() as usize;
            hi[a] = (lo[a] + 1).min(shape[a] - 1);
            f[a] = (x - lo[a] as f64) as f32;
        }
    }
    let at = |i: usize, j: usize, k: usize| data[i + shape[0] * (j + shape[1] * k)];
    let mut sum = 0.0f32;
    for corner in 0..8usize {
        let pick = |a: usize| corner >> a & 1 == 1;
        let mut w = 1.0f32;
        let mut idx = [0usize; 3];
        for a in 0..3 {
            if pick(a) {
                w *= f[a];
                idx[a] = hi[a];
            } else {
                w *= 1.0 - f[a];
                idx[a] = lo[a];
            }
        }
        if w > 0.0 {
            sum += w * at(idx[0], idx[1], idx[2]);
        }
    }
    sum
}

/// Label at overlay voxel coordinate `p` (nearest voxel), 0 outside the overlay grid.
fn nearest_label(labels: &LabelMap, p: [f64; 3]) -> i32 {
    let s = labels.shape();
    if !(0..3).all(|a| p[a] >= -0.5 && p[a] < s[a] as f64 - 0.5) {
        return 0;
    }
    let idx = |a: usize| ((p[a] + 0.5).floor() as usize).min(s[a] - 1);
    labels.at(idx(0), idx(1), idx(2))
}

fn draw_overlay(pic: &mut RgbImage, labels: &[i32], overlay: &Overlay) {
    let (w, h) = (pic.width, pic.height);
    let alpha = overlay.alpha;
    for y in 0..h {
        for x in 0..w {
            let l = labels[y * w + x];
            if l == 0 {
                continue;
            }
            let colour = match overlay.colours {
                Some(f) => f(l),
                None => label_colour(l),
            };
            // A pixel is on the contour when a 4-neighbour inside the panel has another label.
            let differs = |nx: usize, ny: usize| labels[ny * w + nx] != l;
            let contour = (x > 0 && differs(x - 1, y))
                || (x + 1 < w && differs(x + 1, y))
                || (y > 0 && differs(x, y - 1))
                || (y + 1 < h && differs(x, y + 1));
            let out = if contour {
                colour
            } else {
                let base = pic.pixel(x, y);
                std::array::from_fn(|c| {
                    ((1.0 - alpha) * base[c] as f32 + alpha * colour[c] as f32)
                        .round()
                        .clamp(0.0, 255.0) as u8
                })
            };
            pic.set(x, y, out);
        }
    }
}

/// 5×7 bitmaps of the six orientation letters; each row's 5 low bits, leftmost pixel highest.
fn glyph(letter: u8) -> [u8; 7] {
    match letter {
        b'R' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        b'L' => [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        b'A' => [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        b'P' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        b'S' => [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        b'I' => [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        _ => [0; 7],
    }
}

/// Draws `letter` with its top-left corner at `(x0, y0)`, each font pixel `scale` wide, over a
/// black shadow one pixel down-right; clipped to the picture.
fn draw_glyph(pic: &mut RgbImage, letter: u8, x0: usize, y0: usize, scale: usize) {
    let rows = glyph(letter);
    for (off, colour) in [(1usize, [0u8; 3]), (0, LETTER_RGB)] {
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits >> (4 - c) & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (x, y) = (x0 + c * scale + dx + off, y0 + r * scale + dy + off);
                        if x < pic.width && y < pic.height {
                            pic.set(x, y, colour);
                        }
                    }
                }
            }
        }
    }
}

/// Letters at the middle of the left, right, top and bottom edges.
fn draw_letters(pic: &mut RgbImage, letters: [u8; 4]) {
    let (w, h) = (pic.width, pic.height);
    // About 1/12 of the smaller side per letter height, at least the bare 5×7 font.
    let scale = (w.min(h) / 84).clamp(1, 4);
    let (gw, gh, m) = (5 * scale, 7 * scale, 2);
    if w < 2 * gw + 2 * m || h < 2 * gh + 2 * m {
        return;
    }
    let (midx, midy) = ((w - gw) / 2, (h - gh) / 2);
    draw_glyph(pic, letters[0], m, midy, scale);
    draw_glyph(pic, letters[1], w - m - gw - 1, midy, scale);
    draw_glyph(pic, letters[2], midx, m, scale);
    draw_glyph(pic, letters[3], midx, h - m - gh - 1, scale);
}

/// Panels side by side, vertically centred, separated by black gaps.
fn compose(panels: &[RgbImage; 3]) -> RgbImage {
    let width = panels.iter().map(|p| p.width).sum::<usize>() + GAP_PX * (panels.len() - 1);
    let height = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let mut out = RgbImage::new(width, height);
    let mut x0 = 0;
    for p in panels {
        let y0 = (height - p.height) / 2;
        for y in 0..p.height {
            let src = &p.pixels[3 * y * p.width..3 * (y + 1) * p.width];
            let o = 3 * ((y0 + y) * width + x0);
            out.pixels[o..o + src.len()].copy_from_slice(src);
        }
        x0 += p.width + GAP_PX;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affine::Affine;
    use crate::geometry::Geometry;
    use crate::orientation::Orientation;

    /// A 0.7×0.9×3 mm RAS phantom: an ellipsoid (100) with a bright cube (400) in its
    /// right-anterior-superior part; world origin at the grid centre.
    fn phantom() -> (Image, [f64; 3]) {
        let shape = [80, 70, 24];
        let spacing = [0.7, 0.9, 3.0];
        let origin: [f64; 3] = std::array::from_fn(|a| -(shape[a] as f64 - 1.0) / 2.0 * spacing[a]);
        let g = Geometry::from_spacing(shape, spacing, origin).unwrap();
        let cube = [12.0, 15.0, 18.0];
        let data = (0..g.num_voxels())
            .map(|n| {
                let c = g.coords(n);
                let w = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
                let r = (w[0] / 25.0).powi(2) + (w[1] / 28.0).powi(2) + (w[2] / 32.0).powi(2);
                if (0..3).all(|a| (w[a] - cube[a]).abs() <= 5.0) {
                    400.0
                } else if r <= 1.0 {
                    100.0
                } else {
                    0.0
                }
            })
            .collect();
        (Image::new(g, data).unwrap(), cube)
    }

    fn fixed_window() -> Window {
        Window::Range {
            low: 0.0,
            high: 400.0,
        }
    }

    /// Mean position (x, y) of the white (grey 255) pixels of a panel.
    fn white_centre(p: &RgbImage) -> (f64, f64) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for y in 0..p.height {
            for x in 0..p.width {
                if p.pixel(x, y) == [255, 255, 255] {
                    sx += x as f64;
                    sy += y as f64;
                    n += 1.0;
                }
            }
        }
        assert!(n > 0.0, "no white pixels");
        (sx / n / p.width as f64, sy / n / p.height as f64)
    }

    #[test]
    fn panels_are_upright_and_neurological() {
        let (img, cube) = phantom();
        let opts = RenderOptions {
            focus: Focus::WorldMm(cube),
            window: fixed_window(),
            ..Default::default()
        };
        let [axial, coronal, sagittal] = render_panels(&img, &opts).unwrap();
        // Right (x > 0) is on the image right, anterior and superior at the top.
        let (ax, ay) = white_centre(&axial);
        assert!(ax > 0.6 && ay < 0.4, "axial {ax} {ay}");
        let (cx, cy) = white_centre(&coronal);
        assert!(cx > 0.6 && cy < 0.4, "coronal {cx} {cy}");
        // Sagittal: anterior on the left.
        let (sx, sy) = white_centre(&sagittal);
        assert!(sx < 0.4 && sy < 0.4, "sagittal {sx} {sy}");
        // The cube centre (12, 15) mm in an 56×63 mm axial field: x at (12+28)/56 ≈ 0.71,
        // y at (31.5-15)/63 ≈ 0.26 from the top.
        assert!(
            (ax - 0.71).abs() < 0.03 && (ay - 0.26).abs() < 0.03,
            "axial {ax} {ay}"
        );
    }

    #[test]
    fn storage_order_does_not_change_the_picture() {
        let (img, cube) = phantom();
        let opts = RenderOptions {
            focus: Focus::WorldMm(cube),
            ..Default::default()
        };
        let want = render_triplanar(&img, &opts).unwrap();
        for code in ["LPS", "PIR", "SAL"] {
            let other = img.reorient(Orientation::parse(code).unwrap());
            assert_eq!(render_triplanar(&other, &opts).unwrap(), want, "{code}");
        }
    }

    #[test]
    fn anisotropic_voxels_get_square_pixels() {
        let (img, _) = phantom();
        let panels = render_panels(&img, &RenderOptions::default()).unwrap();
        // 80×0.7 = 56 mm, 70×0.9 = 63 mm, 24×3 = 72 mm at 0.7 mm pixels.
        let sizes: Vec<(usize, usize)> = panels.iter().map(|p| (p.width, p.height)).collect();
        assert_eq!(sizes, vec![(80, 90), (80, 103), (90, 103)]);
        let coarse = RenderOptions {
            pixel_mm: Some(2.0),
            ..Default::default()
        };
        let p = render_panels(&img, &coarse).unwrap();
        assert_eq!((p[2].width, p[2].height), (32, 36));
        let whole = render_triplanar(&img, &coarse).unwrap();
        assert_eq!((whole.width, whole.height), (28 + 28 + 32 + 2 * GAP_PX, 36));
        for bad in [0.0, -1.0, f64::NAN] {
            let o = RenderOptions {
                pixel_mm: Some(bad),
                ..Default::default()
            };
            assert!(render_triplanar(&img, &o).is_err());
        }
        let tiny = RenderOptions {
            pixel_mm: Some(0.001),
            ..Default::default()
        };
        assert!(matches!(
            render_triplanar(&img, &tiny),
            Err(VoxelError::TooLarge(_))
        ));
    }

    #[test]
    fn overlay_fills_with_alpha_and_outlines_opaquely() {
        let (img, cube) = phantom();
        // Label 5 on the cube, on a coarser grid than the image (overlay grids may differ).
        let lg = Geometry::from_spacing([30, 30, 30], [2.0; 3], [-30.0; 3]).unwrap();
        let labels = LabelMap::new(
            lg.clone(),
            (0..lg.num_voxels())
                .map(|n| {
                    let c = lg.coords(n);
                    let w = lg.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
                    i32::from((0..3).all(|a| (w[a] - cube[a]).abs() <= 4.0)) * 5
                })
                .collect(),
        )
        .unwrap();
        let colour = |l: i32| if l == 5 { [0, 200, 0] } else { [9, 9, 9] };
        let opts = RenderOptions {
            focus: Focus::WorldMm(cube),
            window: fixed_window(),
            overlay: Some(Overlay {
                labels: &labels,
                alpha: 0.5,
                colours: Some(&colour),
            }),
            ..Default::default()
        };
        let axial = &render_panels(&img, &opts).unwrap()[0];
        let count = |rgb: [u8; 3]| {
            (0..axial.height)
                .flat_map(|y| (0..axial.width).map(move |x| (x, y)))
                .filter(|&(x, y)| axial.pixel(x, y) == rgb)
                .count()
        };
        // Inside: white (255) half-blended with green.
        let fill = count([128, 228, 128]);
        let contour = count([0, 200, 0]);
        assert!(fill > 50, "fill pixels {fill}");
        assert!(contour > 20 && contour < fill, "contour pixels {contour}");
        // Label 0 is never drawn, and with default colours the label gets its fallback colour.
        assert_eq!(count([9, 9, 9]), 0);
        let default_colours = RenderOptions {
            overlay: Some(Overlay {
                labels: &labels,
                alpha: 1.0,
                colours: None,
            }),
            ..opts
        };
        let axial = &render_panels(&img, &default_colours).unwrap()[0];
        let c = label_colour(5);
        let (w, h) = (axial.width, axial.height);
        assert!((0..w * h).any(|n| axial.pixel(n % w, n / w) == c));
        let bad = RenderOptions {
            overlay: Some(Overlay {
                labels: &labels,
                alpha: 1.5,
                colours: None,
            }),
            ..opts
        };
        assert!(render_triplanar(&img, &bad).is_err());
    }

    #[test]
    fn focus_on_a_mask_centroid_in_world_mm() {
        let g = Geometry::new(
            [5, 6, 7],
            Affine([
                [0.0, 0.0, -2.0, 10.0],
                [1.5, 0.0, 0.0, -3.0],
                [0.0, -1.0, 0.0, 4.0],
                [0.0, 0.0, 0.0, 1.0],
            ]),
        )
        .unwrap();
        let mut data = vec![false; g.num_voxels()];
        data[g.index(1, 2, 3)] = true;
        data[g.index(3, 4, 3)] = true;
        let mask = Mask::new(g.clone(), data).unwrap();
        let c = mask_centroid_mm(&mask).unwrap();
        assert_eq!(c, g.voxel_to_world([2.0, 3.0, 3.0]));
        assert_eq!(c, [4.0, 0.0, 1.0]);
        assert!(mask_centroid_mm(&mask.map(|_| false)).is_none());
        let img = mask.to_image();
        let on = RenderOptions {
            focus: Focus::MaskCentroid(&mask),
            ..Default::default()
        };
        assert!(render_triplanar(&img, &on).is_ok());
        let empty = mask.map(|_| false);
        let off = RenderOptions {
            focus: Focus::MaskCentroid(&empty),
            ..Default::default()
        };
        assert!(render_triplanar(&img, &off).is_err());
        let outside = RenderOptions {
            focus: Focus::WorldMm([500.0, 0.0, 0.0]),
            ..Default::default()
        };
        assert!(render_triplanar(&img, &outside).is_err());
    }

    #[test]
    fn windows_and_letters() {
        let (img, _) = phantom();
        let auto = render_panels(&img, &RenderOptions::default()).unwrap();
        let lw = RenderOptions {
            window: Window::LevelWidth {
                level: 200.0,
                width: 400.0,
            },
            ..Default::default()
        };
        let explicit = render_panels(&img, &lw).unwrap();
        // Centre of the axial panel is ellipsoid (100): grey 64 in a 0–400 window.
        let (w, h) = (explicit[0].width, explicit[0].height);
        assert_eq!(explicit[0].pixel(w / 2, h / 2), [64; 3]);
        // The automatic window is the 1st–99th percentile range (0–100 here: the cube is under
        // 1% of the voxels), so the ellipsoid is white.
        let p = percentiles(img.data(), &[1.0, 99.0]).unwrap();
        assert_eq!(p, vec![0.0, 100.0]);
        let by_hand = RenderOptions {
            window: Window::Range {
                low: p[0],
                high: p[1],
            },
            ..Default::default()
        };
        assert_eq!(render_panels(&img, &by_hand).unwrap(), auto);
        assert_eq!(auto[0].pixel(w / 2, h / 2), [255; 3]);
        assert!(render_triplanar(
            &img,
            &RenderOptions {
                window: Window::Range {
                    low: 5.0,
                    high: 1.0
                },
                ..Default::default()
            }
        )
        .is_err());
        // A constant image does not divide by zero.
        assert!(render_triplanar(&img.map(|_| 3.0), &RenderOptions::default()).is_ok());
        // Letters: yellow pixels near the middle of each edge of every panel.
        for p in &auto {
            let yellow = |x0: usize, x1: usize, y0: usize, y1: usize| {
                (y0..y1).any(|y| (x0..x1).any(|x| p.pixel(x, y) == LETTER_RGB))
            };
            let (w, h) = (p.width, p.height);
            assert!(yellow(0, 10, h / 2 - 6, h / 2 + 6), "left letter");
            assert!(yellow(w - 10, w, h / 2 - 6, h / 2 + 6), "right letter");
            assert!(yellow(w / 2 - 6, w / 2 + 6, 0, 12), "top letter");
            assert!(yellow(w / 2 - 6, w / 2 + 6, h - 12, h), "bottom letter");
        }
        let glyphs: std::collections::HashSet<[u8; 7]> =
            b"RLAPSI".iter().map(|&c| glyph(c)).collect();
        assert_eq!(glyphs.len(), 6);
    }

    #[test]
    fn png_round_trip_and_atomic_write() {
        let (img, _) = phantom();
        let pic = render_triplanar(&img, &RenderOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tri.png");
        pic.write_png(&path).unwrap();
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            entries,
            vec![std::ffi::OsString::from("tri.png")],
            "no temporary file left"
        );
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width as usize, info.height as usize),
            (pic.width, pic.height)
        );
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &pic.pixels[..]);
        let missing = dir.path().join("no/such/dir/x.png");
        assert!(matches!(
            pic.write_png(&missing),
            Err(VoxelError::Io { .. })
        ));
    }

    /// Writes `/tmp/render_check.png` for a person to look at: an ellipsoid head with a nose
    /// (anterior), a bright right-anterior blob labelled 53 and a left-posterior blob labelled 17,
    /// stored LPS at 0.7×0.9×3 mm. Run with `cargo test -p voxel -- --ignored render_check`.
    #[test]
    #[ignore]
    fn render_check_png() {
        let shape = [100, 110, 40];
        let spacing = [0.7, 0.9, 3.0];
        let origin: [f64; 3] = std::array::from_fn(|a| -(shape[a] as f64 - 1.0) / 2.0 * spacing[a]);
        let g = Geometry::from_spacing(shape, spacing, origin).unwrap();
        let world = |n: usize| {
            let c = g.coords(n);
            g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])
        };
        let right = [14.0, 18.0, 10.0];
        let left = [-14.0, -20.0, 10.0];
        let near = |w: [f64; 3], c: [f64; 3], r: f64| {
            (0..3).map(|a| (w[a] - c[a]).powi(2)).sum::<f64>() <= r * r
        };
        let data = (0..g.num_voxels())
            .map(|n| {
                let w = world(n);
                let r = (w[0] / 30.0).powi(2) + (w[1] / 40.0).powi(2) + (w[2] / 50.0).powi(2);
                let nose =
                    (w[0] / 5.0).powi(2) + ((w[1] - 40.0) / 8.0).powi(2) + (w[2] / 8.0).powi(2)
                        <= 1.0;
                if near(w, right, 6.0) {
                    300.0
                } else if r <= 1.0 || nose {
                    // Brighter towards superior, so up/down is visible without labels.
                    100.0 + w[2] as f32
                } else {
                    0.0
                }
            })
            .collect();
        let labels = (0..g.num_voxels())
            .map(|n| {
                let w = world(n);
                if near(w, right, 6.0) {
                    53
                } else if near(w, left, 7.0) {
                    17
                } else {
                    0
                }
            })
            .collect();
        let lps = Orientation::parse("LPS").unwrap();
        let img = Image::new(g.clone(), data).unwrap().reorient(lps);
        let labels = LabelMap::new(g, labels).unwrap().reorient(lps);
        let focus = labels.mask_of(53);
        let opts = RenderOptions {
            focus: Focus::MaskCentroid(&focus),
            overlay: Some(Overlay {
                labels: &labels,
                alpha: 0.4,
                colours: None,
            }),
            ..Default::default()
        };
        save_triplanar_png(Path::new("/tmp/render_check.png"), &img, &opts).unwrap();
    }
}
