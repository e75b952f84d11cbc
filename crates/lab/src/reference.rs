//! The accuracy reference: the big model on the raw decoded frames (as in the study), computed
//! once per video and model and cached.

use crate::LabError;
use deepoffload_core::Detection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reference detections of the first `frames.len()` frames of a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub video_sha256: String,
    pub model: String,
    pub input_size: u32,
    /// Per frame, in order from frame 0.
    pub frames: Vec<Vec<Detection>>,
}

/// sha256 of a file (or of a directory's sorted file names and sizes, for image folders).
pub fn video_digest(path: &Path) -> Result<String, LabError> {
    let io = |e: std::io::Error| LabError::Io(format!("{}: {e}", path.display()));
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut entries: Vec<(String, u64)> = std::fs::read_dir(path)
            .map_err(io)?
            .flatten()
            .filter_map(|e| {
                Some((
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().ok()?.len(),
                ))
            })
            .collect();
        entries.sort();
        for (name, len) in entries {
            hasher.update(name.as_bytes());
            hasher.update(len.to_le_bytes());
        }
    } else {
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Where a reference is cached.
pub fn cache_path(cache_dir: &Path, digest: &str, model: &str, size: u32) -> PathBuf {
    cache_dir
        .join("reference")
        .join(format!("{}-{model}-{size}.json", &digest[..16]))
}

/// A cached reference covering at least `frames` frames, if there is one.
pub fn load_cached(path: &Path, digest: &str, frames: usize) -> Option<Reference> {
    let text = std::fs::read_to_string(path).ok()?;
    let r: Reference = serde_json::from_str(&text).ok()?;
    (r.video_sha256 == digest && r.frames.len() >= frames).then_some(r)
}

/// Writes a reference to the cache (atomically, so a crash never leaves half a file).
pub fn store(path: &Path, reference: &Reference) -> Result<(), LabError> {
    let dir = path.parent().expect("cache path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| LabError::Io(format!("{}: {e}", dir.display())))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(reference).expect("serialisable"))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| LabError::Io(format!("{}: {e}", path.display())))
}
