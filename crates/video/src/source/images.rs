//! A directory of still images played as a video at a given frame rate.

use super::{Frame, VideoInfo, VideoSource};
use crate::VideoError;
use deepoffload_core::RgbBuffer;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// Images sorted by file name; frame `i` is at `i / fps`. All must share the first one's size.
pub struct ImageFolderSource {
    files: Vec<PathBuf>,
    info: VideoInfo,
    next_index: usize,
}

impl ImageFolderSource {
    pub fn open(dir: &Path, fps: f64) -> Result<Self, VideoError> {
        if fps <= 0.0 || !fps.is_finite() {
            return Err(VideoError::Usage(format!(
                "image folders need a positive frame rate, got {fps}"
            )));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| VideoError::Open {
                path: dir.to_path_buf(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        let Some(first) = files.first() else {
            return Err(VideoError::Format {
                path: dir.to_path_buf(),
                message: format!("the directory holds no images ({})", EXTENSIONS.join(", ")),
            });
        };
        let (width, height) = image::image_dimensions(first).map_err(|e| VideoError::Format {
            path: first.clone(),
            message: format!("not a readable image: {e}"),
        })?;
        let info = VideoInfo {
            path: dir.to_path_buf(),
            container: "images".into(),
            codec: first
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase(),
            width,
            height,
            fps,
            frames: Some(files.len() as u64),
            duration: Some(Duration::from_secs_f64(files.len() as f64 / fps)),
            bitrate_bps: None,
            reordered: false,
            decoder: "image".into(),
        };
        Ok(Self {
            files,
            info,
            next_index: 0,
        })
    }
}

impl VideoSource for ImageFolderSource {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let Some(path) = self.files.get(self.next_index) else {
            return Ok(None);
        };
        let img = image::open(path)
            .map_err(|e| VideoError::Format {
                path: path.clone(),
                message: format!("not a readable image: {e}"),
            })?
            .to_rgb8();
        if img.dimensions() != (self.info.width, self.info.height) {
            return Err(VideoError::Format {
                path: path.clone(),
                message: format!(
                    "is {}x{} but the first image is {}x{}; a video's frames share one size",
                    img.width(),
                    img.height(),
                    self.info.width,
                    self.info.height
                ),
            });
        }
        let index = self.next_index as u64;
        self.next_index += 1;
        let (w, h) = img.dimensions();
        let image = RgbBuffer::from_raw(w, h, img.into_raw()).expect("decoded image");
        Ok(Some(Frame {
            index,
            pts: Duration::from_secs_f64(index as f64 / self.info.fps),
            image,
        }))
    }
}
