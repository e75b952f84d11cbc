//! Helpers shared by the video integration tests.
#![allow(dead_code)]

use deepoffload_assets::{Store, StoreConfig};
use std::path::PathBuf;

/// `../shared`, found the way the binary finds it; the tests fail without it.
pub fn shared_dir() -> PathBuf {
    match StoreConfig::from_env().shared {
        Some(dir) if dir.join("videos").is_dir() => dir,
        _ => panic!(
            "no shared directory with videos/: run beside ../shared or set DEEPOFFLOAD_SHARED"
        ),
    }
}

pub fn video(name: &str) -> PathBuf {
    shared_dir().join("videos").join(name)
}

pub fn store() -> Store {
    Store::from_env()
}
