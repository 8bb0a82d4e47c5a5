//! Grouping image files into series (SeriesInstanceUID, then orientation and size when a
//! scanner mixed them under one UID), describing each series, choosing one, and assembling its
//! slices into a [`voxel::Image`].

use crate::error::{DicomError, Result};
use crate::header::{read_header, FileHeader};
use crate::pixels::{decode_frames, transfer_syntax_name};
use crate::reference::{copied_attributes, SeriesRef, SourceSlice};
use crate::source::{entries, Entry};
use crate::stack::{stack, Plane, Stack};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use voxel::{Geometry, Image, Orientation, Volume};

/// What a user needs to pick a series; deliberately nothing that identifies the patient.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// How to choose it on a command line: `3`, `3:2` (second part of a split series), or the
    /// UID when the series has no number.
    pub selector: String,
    /// SeriesNumber, when given.
    pub number: Option<i64>,
    /// Part within its series UID when the UID held several orientations or sizes (1-based).
    pub part: Option<usize>,
    /// SeriesInstanceUID.
    pub uid: String,
    /// SeriesDescription.
    pub description: String,
    /// Modality (CT, MR, …).
    pub modality: String,
    /// Voxels along column, row and slice.
    pub shape: [usize; 3],
    /// Voxel size (mm) along column, row and slice; the slice size is from the positions.
    pub spacing_mm: [f64; 3],
    /// Orientation code of the volume as read (e.g. `LPS` for axial DICOM).
    pub orientation: String,
    /// Transfer syntax name.
    pub transfer_syntax: String,
    /// Files (or frames of a multi-frame file) making up the series.
    pub images: usize,
    /// Whether it has several slices (a localizer or a screenshot has one).
    pub volume_like: bool,
    /// Why it cannot be read as a regular volume (gantry tilt, missing slice, …), if so.
    pub problem: Option<String>,
}

impl SeriesInfo {
    /// One line for listings and error messages.
    pub fn line(&self) -> String {
        let [x, y, z] = self.shape;
        let [sx, sy, sz] = self.spacing_mm;
        let mut line = format!(
            "#{:<6} {:<3} {:>3}×{}×{} voxels, {sx:.3}×{sy:.3}×{sz:.3} mm, {}, {} image(s), {}, \"{}\"",
            self.selector,
            self.modality,
            x,
            y,
            z,
            self.orientation,
            self.images,
            self.transfer_syntax,
            self.description
        );
        if let Some(p) = &self.problem {
            line.push_str(&format!(" — cannot read: {p}"));
        }
        line
    }
}

/// Which series of a path to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// SeriesNumber, optionally a part of a split series.
    Number(i64, Option<usize>),
    /// SeriesInstanceUID, optionally a part of a split series.
    Uid(String, Option<usize>),
}

impl std::str::FromStr for Selector {
    type Err = DicomError;

    /// `3`, `3:2`, `1.2.840.113619.2.55`, `1.2.840.113619.2.55:2`.
    fn from_str(s: &str) -> Result<Selector> {
        let bad = || DicomError::BadSelector(s.to_string());
        let (id, part) = match s.split_once(':') {
            Some((id, part)) => (id, Some(part.parse::<usize>().map_err(|_| bad())?)),
            None => (s, None),
        };
        if part == Some(0) || id.is_empty() {
            return Err(bad());
        }
        if let Ok(n) = id.parse::<i64>() {
            return Ok(Selector::Number(n, part));
        }
        let uid_like = id.chars().all(|c| c.is_ascii_digit() || c == '.')
            && !id.starts_with('.')
            && !id.ends_with('.');
        if uid_like {
            Ok(Selector::Uid(id.to_string(), part))
        } else {
            Err(bad())
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (id, part) = match self {
            Selector::Number(n, p) => (n.to_string(), p),
            Selector::Uid(u, p) => (u.clone(), p),
        };
        match part {
            Some(p) => write!(f, "{id}:{p}"),
            None => write!(f, "{id}"),
        }
    }
}

/// A scanned path: its files and the series they form. Scanning reads headers only; pixel
/// data is decoded by [`Scan::read`] for the chosen series.
pub struct Scan {
    path: PathBuf,
    entries: Vec<Entry>,
    headers: Vec<FileHeader>,
    series: Vec<Series>,
    skipped: usize,
}

struct Series {
    info: SeriesInfo,
    /// (header index, frame index) of each image, in scan order.
    images: Vec<(usize, usize)>,
    stack: std::result::Result<Stack, String>,
}

/// Reads the headers of every file under `path` (folder, file or zip) and groups them.
pub fn scan(path: &Path) -> Result<Scan> {
    let entries = entries(path)?;
    let results: Vec<Result<Option<FileHeader>>> = entries
        .par_iter()
        .enumerate()
        .map(|(i, e)| read_header(i, e))
        .collect();
    let mut headers = Vec::new();
    let mut skipped = 0;
    for r in results {
        match r? {
            Some(h) => headers.push(h),
            None => skipped += 1,
        }
    }
    let series = group(&headers);
    if series.is_empty() {
        return Err(DicomError::NoImages {
            path: path.to_path_buf(),
            skipped,
        });
    }
    Ok(Scan {
        path: path.to_path_buf(),
        entries,
        headers,
        series,
        skipped,
    })
}

/// Quantised grouping key: cosines to 1e-4, spacing to 1e-4 mm.
type GroupKey = (String, usize, usize, Option<[i64; 6]>, [i64; 2]);

fn group(headers: &[FileHeader]) -> Vec<Series> {
    let q = |x: f64| (x * 1e4).round() as i64;
    let mut groups: BTreeMap<GroupKey, Vec<(usize, usize)>> = BTreeMap::new();
    for (h, header) in headers.iter().enumerate() {
        for (f, frame) in header.frames.iter().enumerate() {
            let key = (
                header.series_uid.clone(),
                header.rows,
                header.columns,
                frame.orientation.map(|o| o.map(q)),
                frame.pixel_spacing.map(q),
            );
            groups.entry(key).or_default().push((h, f));
        }
    }
    // Parts of one UID, numbered in instance order.
    let first_instance = |images: &Vec<(usize, usize)>| {
        images
            .iter()
            .map(|&(h, f)| (headers[h].instance_number, headers[h].entry, f))
            .min()
    };
    let mut by_uid: HashMap<String, Vec<Vec<(usize, usize)>>> = HashMap::new();
    for ((uid, ..), images) in groups {
        by_uid.entry(uid).or_default().push(images);
    }
    let mut series = Vec::new();
    for (uid, mut parts) in by_uid {
        parts.sort_by_key(first_instance);
        let split = parts.len() > 1;
        for (p, images) in parts.into_iter().enumerate() {
            series.push(describe(
                headers,
                uid.clone(),
                split.then_some(p + 1),
                images,
            ));
        }
    }
    series.sort_by(|a, b| {
        (a.info.number, &a.info.uid, a.info.part).cmp(&(b.info.number, &b.info.uid, b.info.part))
    });
    series
}

fn describe(
    headers: &[FileHeader],
    uid: String,
    part: Option<usize>,
    images: Vec<(usize, usize)>,
) -> Series {
    let (h0, f0) = images[0];
    let first = &headers[h0];
    let stack = geometry(headers, &images);
    let (shape_z, spacing, orientation) = match &stack {
        Ok(s) => {
            let sp = s.affine.column_norms();
            (
                images.len(),
                sp,
                Orientation::from_affine(&s.affine).to_string(),
            )
        }
        Err(_) => {
            let ps = first.frames[f0].pixel_spacing;
            (images.len(), [ps[1], ps[0], f64::NAN], "?".to_string())
        }
    };
    let id = match first.series_number {
        Some(n) => n.to_string(),
        None => uid.clone(),
    };
    let selector = match part {
        Some(p) => format!("{id}:{p}"),
        None => id,
    };
    let mut syntaxes: Vec<&str> = images
        .iter()
        .map(|&(h, _)| headers[h].transfer_syntax.as_str())
        .collect();
    syntaxes.sort_unstable();
    syntaxes.dedup();
    Series {
        info: SeriesInfo {
            selector,
            number: first.series_number,
            part,
            uid,
            description: first.description.clone(),
            modality: first.modality.clone(),
            shape: [first.columns, first.rows, shape_z],
            spacing_mm: spacing,
            orientation,
            transfer_syntax: syntaxes
                .iter()
                .map(|s| transfer_syntax_name(s))
                .collect::<Vec<_>>()
                .join(" + "),
            images: images.len(),
            volume_like: images.len() > 1,
            problem: stack.as_ref().err().cloned(),
        },
        images,
        stack,
    }
}

fn geometry(
    headers: &[FileHeader],
    images: &[(usize, usize)],
) -> std::result::Result<Stack, String> {
    let (h0, f0) = images[0];
    let positions: Option<Vec<[f64; 3]>> = images
        .iter()
        .map(|&(h, f)| headers[h].frames[f].position)
        .collect();
    let plane = headers[h0].plane(f0);
    let slice_mm = headers[h0].slice_mm.filter(|&s| s > 0.0).unwrap_or(1.0);
    match (plane, positions) {
        (Some(plane), Some(positions)) => stack(&plane, &positions, slice_mm),
        // A single image without geometry (secondary capture): an axial 2-D grid, as dcm2niix.
        _ if images.len() == 1 => {
            let plane = Plane {
                orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                pixel_spacing: headers[h0].frames[f0].pixel_spacing,
            };
            stack(&plane, &[[0.0; 3]], slice_mm)
        }
        _ => Err(
            "ImagePositionPatient or ImageOrientationPatient is missing, so the slices \
                  cannot be stacked"
                .to_string(),
        ),
    }
}

impl Scan {
    /// The path scanned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every series found, ordered by series number.
    pub fn series(&self) -> Vec<SeriesInfo> {
        self.series.iter().map(|s| s.info.clone()).collect()
    }

    /// Files that were not DICOM images (other files, DICOMDIR, reports).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    fn listing(&self) -> String {
        self.series
            .iter()
            .map(|s| format!("  {}", s.info.line()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The series `selector` names; without one, the only volume (several slices) the path
    /// holds, or its only series.
    pub fn select(&self, selector: Option<&Selector>) -> Result<&SeriesInfo> {
        self.find(selector).map(|s| &s.info)
    }

    fn find(&self, selector: Option<&Selector>) -> Result<&Series> {
        let Some(selector) = selector else {
            let volumes: Vec<&Series> = self.series.iter().filter(|s| s.info.volume_like).collect();
            return match (volumes.len(), self.series.len()) {
                (1, _) => Ok(volumes[0]),
                (0, 1) => Ok(&self.series[0]),
                _ => Err(DicomError::Ambiguous {
                    path: self.path.clone(),
                    count: self.series.len(),
                    list: self.listing(),
                }),
            };
        };
        let matches: Vec<&Series> = self
            .series
            .iter()
            .filter(|s| match selector {
                Selector::Number(n, part) => {
                    s.info.number == Some(*n) && part.is_none_or(|p| s.info.part == Some(p))
                }
                Selector::Uid(u, part) => {
                    s.info.uid == *u && part.is_none_or(|p| s.info.part == Some(p))
                }
            })
            .collect();
        match matches.len() {
            1 => Ok(matches[0]),
            n => Err(DicomError::NoMatch {
                path: self.path.clone(),
                selector: selector.to_string(),
                problem: if n == 0 {
                    "no series matches".into()
                } else {
                    format!("{n} series match (a split series: add :PART)")
                },
                list: self.listing(),
            }),
        }
    }

    /// What a derived object (a DICOM SEG) needs to reference the chosen series: its UIDs, the
    /// source image of every voxel slice of [`Scan::read`]'s image (same order), its grid, and
    /// the patient and study elements to copy (opaque, never displayed). Reads one header
    /// again, no pixel data.
    pub fn series_ref(&self, selector: Option<&Selector>) -> Result<SeriesRef> {
        let series = self.find(selector)?;
        let geometry_error = |problem: String| DicomError::Geometry {
            path: self.path.clone(),
            series: series.info.selector.clone(),
            problem,
        };
        let stack = series
            .stack
            .as_ref()
            .map_err(|p| geometry_error(p.clone()))?;
        let geometry = Geometry::new(series.info.shape, stack.affine)
            .map_err(|e| geometry_error(e.to_string()))?;
        let (h0, f0) = series.images[stack.order[0]];
        let first = &self.headers[h0];
        let orientation = first.frames[f0]
            .orientation
            .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let slices = stack
            .order
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let (h, f) = series.images[i];
                let header = &self.headers[h];
                // A single image without a position sits where the affine puts it (LPS).
                let position = header.frames[f].position.unwrap_or_else(|| {
                    let [x, y, z] = stack.affine.apply([0.0, 0.0, k as f64]);
                    [-x, -y, z]
                });
                SourceSlice {
                    sop_class_uid: header.sop_class_uid.clone(),
                    sop_instance_uid: header.sop_instance_uid.clone(),
                    frame_number: (header.frames.len() > 1).then_some(f + 1),
                    position,
                }
            })
            .collect();
        Ok(SeriesRef {
            path: self.path.clone(),
            selector: series.info.selector.clone(),
            series_uid: series.info.uid.clone(),
            series_number: series.info.number,
            study_uid: first.study_uid.clone(),
            frame_of_reference_uid: first.frame_of_reference_uid.clone(),
            modality: series.info.modality.clone(),
            geometry,
            orientation,
            pixel_spacing: first.frames[f0].pixel_spacing,
            slice_spacing_mm: stack.slice_spacing_mm,
            slices,
            copied: copied_attributes(&self.entries[first.entry])?,
        })
    }

    /// [`Scan::read`] and [`Scan::series_ref`] of the same series: the image, and what a SEG
    /// written for masks on its grid needs later.
    pub fn read_with_ref(&self, selector: Option<&Selector>) -> Result<(Image, SeriesRef)> {
        Ok((self.read(selector)?, self.series_ref(selector)?))
    }

    /// Decodes the chosen series into an image: voxel i = column, j = row, k = slice in order
    /// along the slice normal, RAS affine, values rescaled (CT in HU).
    pub fn read(&self, selector: Option<&Selector>) -> Result<Image> {
        let series = self.find(selector)?;
        let stack = series
            .stack
            .as_ref()
            .map_err(|problem| DicomError::Geometry {
                path: self.path.clone(),
                series: series.info.selector.clone(),
                problem: problem.clone(),
            })?;
        let mut files: Vec<usize> = series.images.iter().map(|&(h, _)| h).collect();
        files.sort_unstable();
        files.dedup();
        let decoded: Vec<(usize, Vec<f32>)> = files
            .par_iter()
            .map(|&h| {
                let header = &self.headers[h];
                decode_frames(&self.entries[header.entry], header).map(|v| (h, v))
            })
            .collect::<Result<_>>()?;
        let decoded: HashMap<usize, Vec<f32>> = decoded.into_iter().collect();
        let [nx, ny, nz] = series.info.shape;
        let frame_len = nx * ny;
        let mut data = vec![0f32; frame_len * nz];
        for (k, out) in data.chunks_mut(frame_len).enumerate() {
            let (h, f) = series.images[stack.order[k]];
            out.copy_from_slice(&decoded[&h][f * frame_len..(f + 1) * frame_len]);
        }
        let geometry =
            Geometry::new(series.info.shape, stack.affine).map_err(|e| DicomError::Geometry {
                path: self.path.clone(),
                series: series.info.selector.clone(),
                problem: e.to_string(),
            })?;
        Volume::new(geometry, data).map_err(|e| DicomError::Geometry {
            path: self.path.clone(),
            series: series.info.selector.clone(),
            problem: e.to_string(),
        })
    }
}
