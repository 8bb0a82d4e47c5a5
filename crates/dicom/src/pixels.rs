//! Decoding the pixel data of one file into f32 frames, with each frame's rescale applied
//! (CT in Hounsfield units). Codecs are dicom-rs's pure-Rust ones (see the crate docs).

use crate::error::{DicomError, Result};
use crate::header::FileHeader;
use crate::source::Entry;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

/// Every frame of `entry`, frame-major, column fastest, as `stored · slope + intercept`.
pub fn decode_frames(entry: &Entry, header: &FileHeader) -> Result<Vec<f32>> {
    let path = &entry.name;
    check_transfer_syntax(path, &header.transfer_syntax)?;
    let bytes = entry.bytes()?;
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(&bytes[..])
        .map_err(|e| DicomError::Parse {
            path: path.clone(),
            problem: e.to_string(),
        })?;
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(DicomError::NoPixelData { path: path.clone() });
    }
    let decoded = obj.decode_pixel_data().map_err(|e| DicomError::Decode {
        path: path.clone(),
        problem: e.to_string(),
    })?;
    if decoded.samples_per_pixel() != 1 {
        return Err(DicomError::Unsupported {
            path: path.clone(),
            problem: format!(
                "colour image ({} samples per pixel, {:?}); only greyscale volumes are read",
                decoded.samples_per_pixel(),
                decoded.photometric_interpretation()
            ),
        });
    }
    let frame_len = header.rows * header.columns;
    let expected = frame_len * header.frames.len();
    let bytes_per_sample = usize::from(decoded.bits_allocated().div_ceil(8));
    if decoded.data().len() < expected * bytes_per_sample {
        return Err(DicomError::Decode {
            path: path.clone(),
            problem: format!(
                "{} bytes of pixel data for {} frame(s) of {}×{} at {} bits",
                decoded.data().len(),
                header.frames.len(),
                header.columns,
                header.rows,
                decoded.bits_allocated()
            ),
        });
    }
    let options = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
    let mut values: Vec<f32> =
        decoded
            .to_vec_with_options(&options)
            .map_err(|e| DicomError::Decode {
                path: path.clone(),
                problem: e.to_string(),
            })?;
    values.truncate(expected);
    for (frame, chunk) in header.frames.iter().zip(values.chunks_mut(frame_len)) {
        let (slope, intercept) = frame.rescale;
        if (slope, intercept) != (1.0, 0.0) {
            // In f64, then rounded once: the same f32 as numpy's `stored * slope + intercept`.
            for v in chunk {
                *v = (f64::from(*v) * slope + intercept) as f32;
            }
        }
    }
    Ok(values)
}

/// Fails with the transfer syntax's name unless its pixel data can be decoded here.
pub fn check_transfer_syntax(path: &std::path::Path, uid: &str) -> Result<()> {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) if ts.can_decode_all() => Ok(()),
        found => Err(DicomError::UnsupportedTransferSyntax {
            path: path.to_path_buf(),
            uid: uid.to_string(),
            name: found.map_or("unknown", |ts| ts.name()).to_string(),
        }),
    }
}

/// The name of a transfer syntax UID, e.g. `"Explicit VR Little Endian"`.
pub fn transfer_syntax_name(uid: &str) -> String {
    TransferSyntaxRegistry
        .get(uid)
        .map_or_else(|| format!("unknown ({uid})"), |ts| ts.name().to_string())
}
