//! Where DICOM files come from: a folder (recursively), one file, or a zip archive of either.
//! Every candidate becomes an [`Entry`] with the name a user would look for.

use crate::error::{DicomError, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One candidate file: on disk, or the bytes of a zip member.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name shown in messages: the path, or `archive.zip!member/path`.
    pub name: PathBuf,
    data: EntryData,
}

#[derive(Clone, Debug)]
enum EntryData {
    File,
    Bytes(Arc<Vec<u8>>),
}

impl Entry {
    /// The whole file.
    pub fn bytes(&self) -> Result<Arc<Vec<u8>>> {
        match &self.data {
            EntryData::File => {
                std::fs::read(&self.name)
                    .map(Arc::new)
                    .map_err(|cause| DicomError::Io {
                        path: self.name.clone(),
                        cause,
                    })
            }
            EntryData::Bytes(b) => Ok(b.clone()),
        }
    }
}

/// Whether `bytes` start as a DICOM Part 10 file: 128-byte preamble, then `DICM`.
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() >= 132 && &bytes[128..132] == b"DICM"
}

/// Whether the path names a zip archive (by its magic, so the extension does not matter).
fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// Every file under `path` (a folder, recursively, in name order), `path` itself, or the members
/// of a zip archive. Hidden files (`.DS_Store`) and folders are skipped.
pub fn entries(path: &Path) -> Result<Vec<Entry>> {
    let meta = std::fs::metadata(path).map_err(|cause| DicomError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    if meta.is_dir() {
        let mut out = Vec::new();
        walk(path, &mut out)?;
        return Ok(out);
    }
    if is_zip(path) {
        return zip_entries(path);
    }
    Ok(vec![Entry {
        name: path.to_path_buf(),
        data: EntryData::File,
    }])
}

fn walk(dir: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let io = |cause| DicomError::Io {
        path: dir.to_path_buf(),
        cause,
    };
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if child.is_dir() {
            walk(&child, out)?;
        } else if is_zip(&child) {
            out.extend(zip_entries(&child)?);
        } else {
            out.push(Entry {
                name: child,
                data: EntryData::File,
            });
        }
    }
    Ok(())
}

fn zip_entries(path: &Path) -> Result<Vec<Entry>> {
    let zip_err = |e: zip::result::ZipError| DicomError::Zip {
        path: path.to_path_buf(),
        problem: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|cause| DicomError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(zip_err)?;
        let member_name = member.name().to_string();
        let hidden = member_name
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with('.'))
            || member_name.starts_with("__MACOSX/");
        if !member.is_file() || hidden {
            continue;
        }
        let mut bytes = Vec::with_capacity(member.size().min(1 << 30) as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| DicomError::Zip {
                path: path.to_path_buf(),
                problem: format!("member {member_name}: {e}"),
            })?;
        out.push(Entry {
            name: PathBuf::from(format!("{}!{member_name}", path.display())),
            data: EntryData::Bytes(Arc::new(bytes)),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
