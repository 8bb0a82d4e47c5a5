//! Reading and writing volumes. One registry picks the format from the file name; each format
//! lives in its own module (`nifti`, `mgh`) and produces a [`RawVolume`] that this module turns
//! into images or label maps.

pub mod datatype;
pub mod gzip;
pub mod mgh;
pub mod nifti;

use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use crate::volume::{Image, LabelMap, Mask, Volume};
pub use datatype::{DataType, RawData};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A file format we know, from the file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Format {
    /// NIfTI-1 or NIfTI-2 single file (`.nii`, `.nii.gz`).
    Nifti,
    /// FreeSurfer MGH (`.mgh`, `.mgz`).
    Mgh,
}

/// Format and gzip flag of a path, by extension.
pub fn format_of(path: &Path) -> Result<(Format, bool)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".nii.gz") {
        Ok((Format::Nifti, true))
    } else if name.ends_with(".nii") {
        Ok((Format::Nifti, false))
    } else if name.ends_with(".mgz") || name.ends_with(".mgh.gz") {
        Ok((Format::Mgh, true))
    } else if name.ends_with(".mgh") {
        Ok((Format::Mgh, false))
    } else {
        Err(VoxelError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// Everything a header says that a user may want to see (`voxelprompt info`).
#[derive(Clone, Debug, Serialize)]
pub struct FileInfo {
    /// The file read.
    pub path: PathBuf,
    /// Format name with version, e.g. `"NIfTI-1"`, `"NIfTI-2"`, `"MGH"`.
    pub format: String,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
    /// Stored voxel type.
    pub datatype: DataType,
    /// Spatial shape.
    pub shape: [usize; 3],
    /// Number of frames (4th dimension), 1 for 3-D files.
    pub frames: usize,
    /// Voxel→world affine chosen as nibabel does.
    pub affine: Affine,
    /// Where the affine came from: `"sform"`, `"qform"`, `"pixdim"`, `"mgh"`.
    pub affine_source: String,
    /// Stored scaling `value = raw · slope + inter`, when the file applies one.
    pub scaling: Option<(f64, f64)>,
    /// Spatial unit written in the header (`"mm"`, `"m"`, `"um"`, `"unknown"`).
    pub spatial_unit: String,
    /// Free-text description from the header, if any.
    pub description: String,
}

impl FileInfo {
    /// The grid of the file's spatial dimensions.
    pub fn geometry(&self) -> Result<Geometry> {
        Geometry::new(self.shape, self.affine)
            .map_err(|e| VoxelError::format(&self.path, e.to_string()))
    }
}

/// Header plus undecoded voxel values of every frame (frame-major, x fastest within a frame).
#[derive(Clone, Debug)]
pub struct RawVolume {
    /// What the header says.
    pub info: FileInfo,
    /// The stored values before scaling.
    pub data: RawData,
}

/// What to do with NaN/±Inf voxels when reading an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinite {
    /// Refuse the file with an error naming the count (the default: such voxels poison every
    /// measurement silently).
    #[default]
    Error,
    /// Replace them with 0.
    Zero,
}

/// Options for reading images.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Policy for NaN/Inf voxels.
    pub non_finite: NonFinite,
}

/// Options for writing images.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// Stored type; integer types get a slope/intercept so values round-trip within one step.
    pub datatype: DataType,
    /// gzip level 0–9 for compressed outputs (nibabel's default is 1).
    pub gzip_level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            datatype: DataType::F32,
            gzip_level: 1,
        }
    }
}

/// Reads the header of a file (and, for gzip files, only as much of the stream as needed).
pub fn read_info(path: &Path) -> Result<FileInfo> {
    let (format, gz) = format_of(path)?;
    let head = read_prefix(path, gz, 1024)?;
    match format {
        Format::Nifti => nifti::parse_header(path, &head, gz).map(|h| h.info),
        Format::Mgh => mgh::parse_header(path, &head, gz).map(|h| h.info),
    }
}

/// Reads a whole file into a [`RawVolume`].
pub fn read_raw(path: &Path) -> Result<RawVolume> {
    let (format, gz) = format_of(path)?;
    let bytes = read_bytes(path, gz)?;
    match format {
        Format::Nifti => nifti::decode(path, &bytes, gz),
        Format::Mgh => mgh::decode(path, &bytes, gz),
    }
}

/// Reads a 3-D image as f32 with the file's scaling applied (as nibabel's `get_fdata`).
/// Fails on files with several frames (see [`read_image_frames`]) and on NaN/Inf voxels.
pub fn read_image(path: &Path) -> Result<Image> {
    read_image_with(path, ReadOptions::default())
}

/// [`read_image`] with explicit options.
pub fn read_image_with(path: &Path, options: ReadOptions) -> Result<Image> {
    let raw = read_raw(path)?;
    if raw.info.frames != 1 {
        return Err(VoxelError::format(
            path,
            format!(
                "has {} frames (4-D); read one frame with read_image_frames",
                raw.info.frames
            ),
        ));
    }
    let mut frames = frames_to_images(raw, options)?;
    frames
        .pop()
        .ok_or_else(|| VoxelError::format(path, "no voxel data"))
}

/// Reads every frame of a 3-D or 4-D image.
pub fn read_image_frames(path: &Path) -> Result<Vec<Image>> {
    frames_to_images(read_raw(path)?, ReadOptions::default())
}

fn frames_to_images(raw: RawVolume, options: ReadOptions) -> Result<Vec<Image>> {
    let geometry = raw.info.geometry()?;
    let path = raw.info.path.clone();
    let mut values = raw.data.into_f32(raw.info.scaling);
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        match options.non_finite {
            NonFinite::Error => {
                return Err(VoxelError::format(
                    &path,
                    format!("{bad} voxels are NaN or infinite; read with NonFinite::Zero to replace them by 0"),
                ))
            }
            NonFinite::Zero => values.iter_mut().filter(|v| !v.is_finite()).for_each(|v| *v = 0.0),
        }
    }
    let n = geometry.num_voxels();
    if raw.info.frames == 1 {
        return Ok(vec![Volume::new(geometry, values)?]);
    }
    let mut out = Vec::with_capacity(raw.info.frames);
    for f in 0..raw.info.frames {
        out.push(Volume::new(
            geometry.clone(),
            values[f * n..(f + 1) * n].to_vec(),
        )?);
    }
    Ok(out)
}

/// Reads a 3-D label map. Integer files are read exactly; float files are accepted only when
/// every value is a whole number (some tools store labels as float).
pub fn read_labels(path: &Path) -> Result<LabelMap> {
    let raw = read_raw(path)?;
    if raw.info.frames != 1 {
        return Err(VoxelError::format(
            path,
            format!("has {} frames; a label map must be 3-D", raw.info.frames),
        ));
    }
    let geometry = raw.info.geometry()?;
    let labels = raw
        .data
        .to_i32(raw.info.scaling)
        .map_err(|problem| VoxelError::format(path, format!("not a label map: {problem}")))?;
    Volume::new(geometry, labels)
}

/// Writes an image (f32 by default) to `.nii`, `.nii.gz`, `.mgh` or `.mgz`, through a temporary
/// file in the same directory that is renamed into place.
pub fn write_image(path: &Path, image: &Image, options: &WriteOptions) -> Result<()> {
    let (data, scaling) = RawData::from_f32(image.data(), options.datatype)
        .map_err(|p| VoxelError::InvalidArgument(format!("{}: {p}", path.display())))?;
    write_raw(path, image.geometry(), data, scaling, options.gzip_level)
}

/// Writes a label map as integers in the smallest type that holds every label
/// (u8, then i16, then i32).
pub fn write_labels(path: &Path, labels: &LabelMap) -> Result<()> {
    let data = RawData::from_labels(labels.data());
    write_raw(path, labels.geometry(), data, None, 1)
}

/// Writes a mask as a u8 0/1 label map.
pub fn write_mask(path: &Path, mask: &Mask) -> Result<()> {
    let data = RawData::U8(mask.data().iter().map(|&b| b as u8).collect());
    write_raw(path, mask.geometry(), data, None, 1)
}

fn write_raw(
    path: &Path,
    geometry: &Geometry,
    data: RawData,
    scaling: Option<(f64, f64)>,
    gzip_level: u32,
) -> Result<()> {
    let (format, gz) = format_of(path)?;
    let encoded = match format {
        Format::Nifti => nifti::encode(path, geometry, &data, scaling)?,
        Format::Mgh => mgh::encode(path, geometry, &data, scaling)?,
    };
    atomic_write(path, |w| {
        if gz {
            w.write_all(&gzip::compress(&encoded, gzip_level)?)?;
        } else {
            w.write_all(&encoded)?;
        }
        Ok(())
    })
}

/// Writes a file through a temporary sibling and renames it into place, so a reader never
/// sees a half-written file and a failed write leaves the old file intact.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        VoxelError::InvalidArgument(format!("{}: not a file name", path.display()))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        // No fsync: the rename already guarantees readers never see a partial file, and
        // flushing to disk would double the write time of large volumes.
        w.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(VoxelError::io(path, e));
    }
    Ok(())
}

/// Fails when `output` names the same file as any of `inputs` (after resolving links), so
/// nothing a user gave is ever overwritten.
pub fn ensure_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = std::fs::canonicalize(output).ok();
    for input in inputs {
        let same = match (&out, std::fs::canonicalize(input).ok()) {
            (Some(a), Some(b)) => *a == b,
            _ => output == *input,
        };
        if same {
            return Err(VoxelError::WouldOverwriteInput {
                path: output.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn read_bytes(path: &Path, gz: bool) -> Result<Vec<u8>> {
    let file_bytes = std::fs::read(path).map_err(|e| VoxelError::io(path, e))?;
    if !gz {
        return Ok(file_bytes);
    }
    if file_bytes.len() < 18 || file_bytes[0] != 0x1f || file_bytes[1] != 0x8b {
        return Err(VoxelError::format(path, "not a gzip file (bad gzip magic)"));
    }
    gzip::decompress(&file_bytes)
        .map_err(|e| VoxelError::format(path, format!("corrupt or truncated gzip stream: {e}")))
}

fn read_prefix(path: &Path, gz: bool, len: usize) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| VoxelError::io(path, e))?;
    let mut out = Vec::with_capacity(len);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(file)
    };
    reader
        .take(len as u64)
        .read_to_end(&mut out)
        .map_err(|e| VoxelError::format(path, format!("cannot read header: {e}")))?;
    Ok(out)
}
