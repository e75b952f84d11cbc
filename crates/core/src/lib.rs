//! The shared vocabulary of deepoffload.
//!
//! Every other crate speaks in these types, so a detection produced on the device, carried over
//! the wire and scored by the profiler is one and the same value. This crate must stay free of
//! heavy dependencies (no runtimes, codecs, sockets or files): only plain data and pure functions.

mod config;
mod detection;
mod image;
pub mod metrics;
pub mod profile;
mod stats;
mod units;

pub use config::{scaled_side, Config, LatencyBreakdown, Placement, Radio, Tracking};
pub use detection::{class_name, BBox, Detection};
pub use image::{ImageError, RgbBuffer, RgbImageRef};
pub use stats::{quantile, Summary};
pub use units::{format_bitrate, parse_bitrate, parse_duration, parse_fraction, parse_resolution};
