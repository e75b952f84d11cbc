//! YUV4MPEG2 (`.y4m`): raw 8-bit 4:2:0 frames with a text header.

use super::{Frame, VideoInfo, VideoSource};
use crate::pixels::Yuv420;
use crate::VideoError;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts the bytes the decoder has consumed, to tell a clean end from a cut-off frame
/// (the `y4m` crate reports both as end of file).
struct Counting<R> {
    inner: R,
    pos: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A `.y4m` file.
pub struct Y4mSource {
    path: PathBuf,
    decoder: y4m::Decoder<Counting<BufReader<File>>>,
    info: VideoInfo,
    pos: Arc<AtomicU64>,
    file_len: u64,
    next_index: u64,
}

fn format_error(path: &Path, message: impl std::fmt::Display) -> VideoError {
    VideoError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl Y4mSource {
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let (file, file_len) = super::open_file(path)?;
        let pos = Arc::new(AtomicU64::new(0));
        let reader = Counting {
            inner: BufReader::new(file),
            pos: pos.clone(),
        };
        let decoder = y4m::Decoder::new(reader)
            .map_err(|e| format_error(path, format!("not a readable Y4M file: {e:?}")))?;
        let colorspace = decoder.get_colorspace();
        use y4m::Colorspace::*;
        if !matches!(colorspace, C420 | C420jpeg | C420paldv | C420mpeg2) {
            return Err(format_error(
                path,
                format!("Y4M colorspace {colorspace:?} is not supported (8-bit 4:2:0 only); convert it with ffmpeg -pix_fmt yuv420p"),
            ));
        }
        let rate = decoder.get_framerate();
        let fps = if rate.den > 0 {
            rate.num as f64 / rate.den as f64
        } else {
            0.0
        };
        if fps <= 0.0 || !fps.is_finite() {
            return Err(format_error(
                path,
                format!("frame rate {}:{} is not positive", rate.num, rate.den),
            ));
        }
        let (width, height) = (decoder.get_width() as u32, decoder.get_height() as u32);
        if width == 0 || height == 0 {
            return Err(format_error(
                path,
                format!("the header says {width}x{height}"),
            ));
        }
        let info = VideoInfo {
            path: path.to_path_buf(),
            container: "y4m".into(),
            codec: "rawvideo (yuv420p)".into(),
            width,
            height,
            fps,
            frames: None,
            duration: None,
            bitrate_bps: None,
            reordered: false,
            decoder: "y4m".into(),
        };
        Ok(Self {
            path: path.to_path_buf(),
            decoder,
            info,
            pos,
            file_len,
            next_index: 0,
        })
    }
}

impl VideoSource for Y4mSource {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let before = self.pos.load(Ordering::Relaxed);
        let frame = match self.decoder.read_frame() {
            Ok(frame) => frame,
            Err(y4m::Error::EOF) if before == self.file_len => return Ok(None),
            Err(y4m::Error::EOF) => {
                return Err(format_error(
                    &self.path,
                    format!("frame {} is cut off (file truncated?)", self.next_index),
                ))
            }
            Err(e) => {
                return Err(format_error(
                    &self.path,
                    format!("frame {}: {e:?}", self.next_index),
                ))
            }
        };
        let (w, h) = (self.info.width, self.info.height);
        let (cw, _) = (w.div_ceil(2) as usize, h.div_ceil(2));
        let yuv = Yuv420::from_planes(
            w,
            h,
            [
                (frame.get_y_plane(), w as usize),
                (frame.get_u_plane(), cw),
                (frame.get_v_plane(), cw),
            ],
        )?;
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(Frame {
            index,
            pts: Duration::from_secs_f64(index as f64 / self.info.fps),
            image: yuv.to_rgb()?,
        }))
    }
}
