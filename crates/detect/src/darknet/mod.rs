//! Darknet models: cfg parsing, weights loading and conversion to an ONNX graph.
//!
//! Usable on its own: `Network::parse` + `Weights::read` + `to_onnx` turn any supported Darknet
//! detector into ONNX bytes that ONNX Runtime, TensorRT or Triton can serve.

mod cfg;
mod export;
mod network;
mod weights;

pub use cfg::{parse_sections, CfgOption, Section};
pub use export::{head_output_name, to_onnx, INPUT_NAME, META_CLASS_NAMES, META_HEADS};
pub use network::{Activation, Head, HeadKind, Layer, LayerKind, Network, Shape};
pub use weights::{Weights, WeightsHeader};

/// Why a Darknet model cannot be imported. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DarknetError {
    #[error("{file}:{line}: {message}")]
    Cfg {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Weights { file: String, message: String },
    #[error("{file}: input size {width}x{height} is not supported: width and height must be positive multiples of 32 (e.g. 320, 416, 608)")]
    InputSize {
        file: String,
        width: usize,
        height: usize,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}
