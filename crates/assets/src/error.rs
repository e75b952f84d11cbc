//! Errors that say what is missing and how to provide it.

use std::path::PathBuf;

/// Why an asset could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// Nothing usable was found and fetching failed or was disabled. The message lists every
    /// place that was tried and every way to provide the file.
    #[error("{0}")]
    Missing(String),
    /// An explicitly named file does not exist or cannot be read.
    #[error("{path}: {source} (check the path given with {flag})")]
    Explicit {
        path: PathBuf,
        flag: String,
        source: std::io::Error,
    },
    /// A fetch ran but produced something other than the pinned bytes.
    #[error("{what}: sha256 is {actual}, expected {expected}; the package index served different bytes than the pinned ones, so it was not used")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A fetch step failed (the registry client, unpacking, the cache directory).
    #[error("fetching {what} failed: {message}")]
    Fetch { what: String, message: String },
    /// The cache directory cannot be written.
    #[error("{path}: {source} (set DEEPOFFLOAD_CACHE to a writable directory)")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}
