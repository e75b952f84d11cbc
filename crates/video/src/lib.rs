//! Video for deepoffload: read real video, pick frames at a target rate, scale them, and
//! encode/decode H.264 as a phone and an edge server would.
//!
//! - [`source`]: MP4 (native), Y4M, image folders and ffmpeg behind [`VideoSource`].
//! - [`Sampler`]: which frames are analysed at a target frame rate (the rule is documented there).
//! - [`pixels`]: bilinear resize and YUV 4:2:0 ↔ RGB.
//! - [`h264`]: encoder with rate control, skipped-frame and PSNR reporting; decoder.
//! - [`catalogue`]: the default videos (vtest, bikes), pinned and fetched like the models.
//!
//! This crate knows nothing of detection or networks.

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod h264;
mod mp4_writer;
pub mod pixels;
mod sample;
pub mod source;

pub use catalogue::{default_videos, DefaultVideo};
pub use h264::{EncodedFrame, EncoderSettings, FrameKind, H264Decoder, H264Encoder, RateControl};
pub use mp4_writer::Mp4VideoWriter;
pub use pixels::{Resizer, Yuv420};
pub use sample::Sampler;
pub use source::{open, Frame, OpenOptions, VideoInfo, VideoSource};

use std::path::PathBuf;

/// Why video could not be read, converted or coded. Each variant names the file where there is one.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The container or stream is malformed or unsupported.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Ffmpeg { path: PathBuf, message: String },
    #[error("H.264 decode: {0}")]
    Decode(String),
    #[error("H.264 encode: {0}")]
    Encode(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Asset(#[from] deepoffload_assets::AssetError),
}
