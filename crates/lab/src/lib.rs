//! The laboratory: the profiler that measures every configuration, device classes, energy
//! meters and models, polynomial fits and generated findings.
//!
//! It also replays decision policies over network traces (`replay`), a simulation calibrated
//! on a profile whose network part is the link emulator's own timing model. This crate never
//! opens sockets.

pub mod devices;
pub mod energy;
pub mod fit;
pub mod grid;
mod profiler;
pub mod reference;
pub mod replay;
pub mod summary;

pub use devices::{find_device, DeviceClass};
pub use grid::{Grid, ModelAt};
pub use profiler::{machine_description, run_profile, ProfileRequest};

/// Why profiling stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Detect(#[from] deepoffload_detect::DetectError),
    #[error(transparent)]
    Video(#[from] deepoffload_video::VideoError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Usage(String),
}

/// Reads a profile file, with errors that say how to make a good one.
pub fn load_profile(
    path: &std::path::Path,
) -> Result<deepoffload_core::profile::Profile, LabError> {
    use deepoffload_core::profile::PROFILE_SCHEMA;
    let text = std::fs::read_to_string(path).map_err(|e| {
        LabError::Usage(format!(
            "{}: cannot read the profile ({e}); make one with `deepoffload profile --out {}`",
            path.display(),
            path.display()
        ))
    })?;
    let profile: deepoffload_core::profile::Profile =
        serde_json::from_str(&text).map_err(|e| {
            LabError::Usage(format!(
                "{}: not a deepoffload profile ({PROFILE_SCHEMA}): {e}; make one with `deepoffload profile`",
                path.display()
            ))
        })?;
    if profile.schema != PROFILE_SCHEMA {
        return Err(LabError::Usage(format!(
            "{}: schema `{}`, this deepoffload reads `{PROFILE_SCHEMA}`; profile again",
            path.display(),
            profile.schema
        )));
    }
    Ok(profile)
}
