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
pub use profiler::{run_profile, ProfileRequest};

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
