//! Multipart uploads: `scan` file fields written under server-chosen names (the client's file
//! name only lends a known extension, which picks the reader), `name`/`date` text fields
//! describing the i-th scan, and `prompt`.

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

use super::api::ApiError;

/// Extensions the readers know, longest first; anything else is stored without one (a DICOM
/// file is recognised by its content).
const EXTENSIONS: [&str; 6] = [".nii.gz", ".nii", ".mgz", ".mgh", ".zip", ".dcm"];

/// Most scans in one upload.
const MAX_SCANS: usize = 16;

/// Longest text field, bytes.
const MAX_TEXT: usize = 8192;

/// One uploaded scan file.
pub struct Uploaded {
    /// Where it was written.
    pub path: PathBuf,
    /// The client's file name, cleaned for display (never used as a path).
    pub client_name: String,
}

/// What a multipart upload held.
pub struct Upload {
    /// The `prompt` field.
    pub prompt: Option<String>,
    /// The `scan` fields, in order.
    pub scans: Vec<Uploaded>,
    /// The `name` fields, in order (the i-th names the i-th scan; empty: the default).
    pub names: Vec<String>,
    /// The `date` fields, in order.
    pub dates: Vec<String>,
}

/// The known extension of a client file name, or "".
pub fn extension(client_name: &str) -> &'static str {
    let lower = client_name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|e| lower.ends_with(*e))
        .copied()
        .unwrap_or("")
}

/// A client file name fit to show: its last path component, printable ASCII, 100 chars.
pub fn display_name(client_name: &str) -> String {
    let leaf = client_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(client_name);
    let clean: String = leaf
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    if clean.is_empty() {
        "upload".into()
    } else {
        clean
    }
}

pub(crate) fn multipart_error(e: MultipartError, limit_bytes: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit_bytes)
    } else {
        ApiError::bad_request(format!("malformed multipart upload: {}", e.body_text()))
    }
}

pub(crate) fn too_large(limit_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the upload is larger than this server's limit of {} MiB (--max-upload-mb)",
            limit_bytes >> 20
        ),
    )
}

/// Reads every field, writing scans as `inputs_dir/scan_N.EXT`.
pub async fn receive(
    mut multipart: Multipart,
    inputs_dir: &Path,
    limit_bytes: usize,
) -> Result<Upload, ApiError> {
    let mut upload = Upload {
        prompt: None,
        scans: Vec::new(),
        names: Vec::new(),
        dates: Vec::new(),
    };
    let err = |e| multipart_error(e, limit_bytes);
    while let Some(mut field) = multipart.next_field().await.map_err(err)? {
        let field_name = field.name().unwrap_or("").to_string();
        match field_name.as_str() {
            "scan" => {
                if upload.scans.len() == MAX_SCANS {
                    return Err(ApiError::bad_request(format!(
                        "at most {MAX_SCANS} scans per upload"
                    )));
                }
                let client = field.file_name().unwrap_or("").to_string();
                let n = upload.scans.len() + 1;
                let path = inputs_dir.join(format!("scan_{n}{}", extension(&client)));
                let mut file = tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?;
                let mut bytes = 0usize;
                while let Some(chunk) = field.chunk().await.map_err(err)? {
                    bytes += chunk.len();
                    file.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                file.flush().await.map_err(ApiError::internal)?;
                let client_name = display_name(&client);
                if bytes == 0 {
                    return Err(ApiError::bad_request(format!(
                        "scan {n} ({client_name}) is empty"
                    )));
                }
                upload.scans.push(Uploaded { path, client_name });
            }
            "prompt" | "name" | "date" => {
                let text = field.text().await.map_err(err)?;
                if text.len() > MAX_TEXT {
                    return Err(ApiError::bad_request(format!(
                        "the field {field_name} is longer than {MAX_TEXT} bytes"
                    )));
                }
                let text = text.trim().to_string();
                match field_name.as_str() {
                    "prompt" => upload.prompt = Some(text),
                    "name" => upload.names.push(text),
                    _ => upload.dates.push(text),
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown field {:?} (expected prompt, scan, name, date)",
                    display_name(other)
                )))
            }
        }
    }
    Ok(upload)
}

/// A valid program variable name: a letter or `_`, then letters, digits, `_`; at most 64.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// A `YYYY-MM-DD` date.
pub fn valid_date(date: &str) -> bool {
    date.len() == 10
        && date.chars().enumerate().all(|(k, c)| {
            if k == 4 || k == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_lend_only_a_known_extension() {
        assert_eq!(extension("../../etc/passwd"), "");
        assert_eq!(extension("T1.NII.GZ"), ".nii.gz");
        assert_eq!(extension("a.nii"), ".nii");
        assert_eq!(extension("study.zip"), ".zip");
        assert_eq!(extension("x.nii.gz.sh"), "");
        assert_eq!(display_name("..\\..\\evil\x07.nii"), "evil.nii");
        assert_eq!(display_name("/"), "upload");
    }

    #[test]
    fn names_and_dates() {
        assert!(valid_name("t1") && valid_name("_a9") && !valid_name("9a"));
        assert!(!valid_name("a-b") && !valid_name("") && !valid_name("a b"));
        assert!(valid_date("2024-01-31") && !valid_date("2024-1-31") && !valid_date("yesterday"));
    }
}
