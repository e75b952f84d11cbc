//! Object detection for deepoffload: Darknet YOLO models imported to ONNX and run on ONNX Runtime.
//!
//! - [`darknet`]: cfg parser, weights loader, ONNX export (usable on its own).
//! - [`catalogue`]: the pinned models and runtime library.
//! - [`ImportedModel`]: name or files → network + ONNX bytes.
//! - [`Detector`] / [`YoloDetector`]: image → detections, with per-stage times.
//! - [`preprocess`], [`postprocess`]: OpenCV-exact resize, YOLO decode, class-wise NMS.
//!
//! This crate never opens sockets or reads video; it turns pixels into boxes.

pub mod annotate;
pub mod catalogue;
pub mod darknet;
mod detector;
mod engine;
mod model;
pub mod onnx;
pub mod postprocess;
pub mod preprocess;

pub use detector::{
    DetectOutput, Detector, DetectorInfo, DetectorOptions, PaddedDetector, StageTimes, YoloDetector,
};
pub use engine::{init_runtime, OrtModel, ENV_ORT_LIB};
pub use model::{read_names, ImportedModel, ModelFiles, ModelOverrides};
pub use postprocess::Thresholds;
pub use preprocess::ResizeMode;

use darknet::DarknetError;
use deepoffload_assets::AssetError;

/// Why detection could not run. Each variant names the file or input and, where there is one,
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error(transparent)]
    Darknet(#[from] DarknetError),
    /// ONNX Runtime failed to load or to run.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// An input is not usable (unknown model, mismatched names file, bad image...).
    #[error("{0}")]
    Usage(String),
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}
