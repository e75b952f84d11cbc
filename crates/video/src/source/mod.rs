//! Video sources: one trait, four readers, and `open` to pick the right one for a path.
//!
//! - MP4 with H.264 and no B-frames: demuxed with `mp4`, decoded with openh264, in process.
//! - Y4M (raw YUV 4:2:0): read with `y4m`.
//! - A directory of images: sorted by name, at a frame rate you give.
//! - Anything else (AVI, MKV, MPEG-4 part 2, H.264 with B-frames, …): an `ffmpeg` process
//!   decoding to raw RGB, the `ffmpeg` on PATH or the pinned static build from the
//!   `imageio-ffmpeg` package.
//!
//! Every frame carries its source timestamp (presentation time from the container, or
//! index / frame rate where the format has none).

mod ffmpeg;
mod images;
mod mp4;
mod y4m;

pub use self::ffmpeg::{find_ffmpeg, FfmpegSource, FFMPEG};
pub use self::images::ImageFolderSource;
pub use self::mp4::{probe_mp4, Mp4Probe, Mp4Source};
pub use self::y4m::Y4mSource;

use crate::VideoError;
use deepoffload_assets::Store;
use deepoffload_core::RgbBuffer;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in the source, from 0.
    pub index: u64,
    /// Presentation timestamp in the source.
    pub pts: Duration,
    pub image: RgbBuffer,
}

/// What is known about a source before reading it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    pub path: PathBuf,
    /// `mp4`, `y4m`, `images`, or ffmpeg's name for the container.
    pub container: String,
    /// e.g. `h264 (Constrained Baseline)`, `rawvideo`, `png`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Nominal frames per second.
    pub fps: f64,
    /// Frames in the file, when the container says.
    pub frames: Option<u64>,
    #[serde(with = "opt_secs")]
    pub duration: Option<Duration>,
    /// Average bit rate of the video stream in bits per second, when known.
    pub bitrate_bps: Option<u64>,
    /// Whether frames are stored out of presentation order (B-frames).
    pub reordered: bool,
    /// Who decodes it: `openh264`, `ffmpeg`, `y4m`, `image`.
    pub decoder: String,
}

mod opt_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// A stream of frames.
pub trait VideoSource: Send {
    fn info(&self) -> &VideoInfo;

    /// The next frame, `None` at the end; an error for corrupt or unreadable data.
    fn next_frame(&mut self) -> Result<Option<Frame>, VideoError>;
}

/// How `open` may read a path.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Frame rate of image folders (they carry no timestamps).
    pub image_fps: f64,
    /// Decode through ffmpeg even when a native reader exists.
    pub force_ffmpeg: bool,
    /// An explicit ffmpeg binary (else $DEEPOFFLOAD_FFMPEG, PATH, the pinned build).
    pub ffmpeg: Option<PathBuf>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            image_fps: 10.0,
            force_ffmpeg: false,
            ffmpeg: None,
        }
    }
}

/// Opens a file and reads its length, with errors that name it.
pub(crate) fn open_file(path: &Path) -> Result<(std::fs::File, u64), VideoError> {
    let err = |source| VideoError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    Ok((file, len))
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Opens a video file or image folder with the best reader for it.
pub fn open(
    path: &Path,
    store: &Store,
    options: &OpenOptions,
) -> Result<Box<dyn VideoSource>, VideoError> {
    let meta = std::fs::metadata(path).map_err(|source| VideoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Ok(Box::new(ImageFolderSource::open(path, options.image_fps)?));
    }
    let ext = extension(path);
    if ext == "y4m" && !options.force_ffmpeg {
        return Ok(Box::new(Y4mSource::open(path)?));
    }
    let mut probed = None;
    if matches!(ext.as_str(), "mp4" | "m4v" | "mov") {
        let probe = probe_mp4(path)?;
        if probe.native_ok() && !options.force_ffmpeg {
            return Ok(Box::new(Mp4Source::open(path, probe)?));
        }
        tracing::info!(
            "{}: {} — decoding through ffmpeg",
            path.display(),
            probe.why_not_native().unwrap_or("ffmpeg requested")
        );
        probed = Some(probe.info);
    }
    let ffmpeg = find_ffmpeg(store, options.ffmpeg.as_deref())?;
    let source = FfmpegSource::open(path, &ffmpeg)?;
    Ok(Box::new(match probed {
        Some(info) => source.with_probe(info),
        None => source,
    }))
}
