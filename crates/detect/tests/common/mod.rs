//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The project's `../shared` directory (or `DEEPOFFLOAD_SHARED`). Tests that need it fail
/// loudly when it is missing rather than skip.
/// Found the way the binary finds it (`DEEPOFFLOAD_SHARED`, else `shared/` beside an ancestor).
pub fn shared_dir() -> PathBuf {
    let dir = deepoffload_assets::StoreConfig::from_env().shared;
    match dir {
        Some(dir) if dir.join("fixtures").is_dir() => dir,
        _ => panic!("no shared directory with fixtures/: run the tests from a checkout beside ../shared, or set DEEPOFFLOAD_SHARED"),
    }
}

/// Loads a PNG fixture as packed RGB.
pub fn load_rgb(path: &std::path::Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}
