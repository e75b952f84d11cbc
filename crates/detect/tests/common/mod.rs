//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The project's `../shared` directory (or `DEEPOFFLOAD_SHARED`). Tests that need it fail
/// loudly when it is missing rather than skip.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("DEEPOFFLOAD_SHARED")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("fixtures").is_dir(),
        "{} has no fixtures/: run the tests from a checkout beside ../shared, or set DEEPOFFLOAD_SHARED",
        dir.display()
    );
    dir
}

/// Loads a PNG fixture as packed RGB.
pub fn load_rgb(path: &std::path::Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}
