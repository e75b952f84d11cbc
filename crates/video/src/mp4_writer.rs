//! Writing a video a person can look at: RGB frames at a constant rate, H.264 (openh264,
//! Constrained Baseline) in an MP4 file (the `mp4` crate's writer), which every player and this
//! crate's own reader ([`crate::open`]) play back.

use crate::h264::{split_annex_b, EncoderSettings, FrameKind, H264Encoder, RateControl};
use crate::VideoError;
use deepoffload_core::{RgbBuffer, RgbImageRef};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Ticks per second of the MP4 track.
const TIMESCALE: u32 = 90_000;

/// H.264 in MP4 at a constant frame rate. Frames must all have the size given at creation;
/// an odd width or height is cropped by one pixel (4:2:0 needs even sides).
pub struct Mp4VideoWriter {
    path: PathBuf,
    size: (u32, u32),
    fps: f64,
    encoder: H264Encoder,
    /// Started once the first frame gave the parameter sets.
    writer: Option<mp4::Mp4Writer<BufWriter<File>>>,
    file: Option<BufWriter<File>>,
    frames: u64,
    sample_ticks: u32,
    crop: Option<RgbBuffer>,
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> VideoError {
    VideoError::Usage(format!("writing {}: {e}", path.display()))
}

impl Mp4VideoWriter {
    /// Creates `path` for `width`x`height` frames at `fps`, encoded at about `bitrate_bps`.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
        bitrate_bps: u32,
    ) -> Result<Self, VideoError> {
        let size = (width & !1, height & !1);
        if size.0 == 0 || size.1 == 0 || size.0 > u16::MAX as u32 || size.1 > u16::MAX as u32 {
            return Err(VideoError::Usage(format!(
                "{}: cannot write {width}x{height} frames (each side must be 2..65535 px)",
                path.display()
            )));
        }
        if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
            return Err(VideoError::Usage(format!(
                "{}: frame rate {fps} must be positive (at most 1000)",
                path.display()
            )));
        }
        let encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: bitrate_bps.max(100_000),
            max_fps: fps as f32,
            keyframe_interval: (fps * 2.0).round().max(1.0) as u32,
            rate_control: RateControl::Bitrate,
            allow_skip: false,
            measure_psnr: false,
            perceptual_tools: false,
        })?;
        let file = File::create(path).map_err(|e| write_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            size,
            fps,
            encoder,
            writer: None,
            file: Some(BufWriter::new(file)),
            frames: 0,
            sample_ticks: (TIMESCALE as f64 / fps).round().max(1.0) as u32,
            crop: None,
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends one frame (shown for 1 / fps).
    pub fn write(&mut self, frame: RgbImageRef<'_>) -> Result<(), VideoError> {
        let (w, h) = (frame.width(), frame.height());
        if (w & !1, h & !1) != self.size {
            return Err(VideoError::Usage(format!(
                "{}: frame is {w}x{h} but the video is {}x{}",
                self.path.display(),
                self.size.0,
                self.size.1
            )));
        }
        let pts = Duration::from_secs_f64(self.frames as f64 / self.fps);
        let mut encoded = if (w, h) == self.size {
            self.encoder.encode(frame, pts)?
        } else {
            if self.crop.is_none() {
                let buffer = RgbBuffer::new(self.size.0, self.size.1)
                    .map_err(|e| write_error(&self.path, e))?;
                self.crop = Some(buffer);
            }
            let crop = self.crop.as_mut().expect("just made");
            let row = self.size.0 as usize * 3;
            for y in 0..self.size.1 as usize {
                let from = &frame.row(y)[..row];
                crop.data_mut()[y * row..(y + 1) * row].copy_from_slice(from);
            }
            self.encoder.encode(crop.view(), pts)?
        };
        if encoded.kind == FrameKind::Skipped {
            // Skipping is off; should the encoder skip anyway, a key frame is never skipped.
            self.encoder.force_keyframe();
            encoded = match &self.crop {
                Some(crop) if (w, h) != self.size => self.encoder.encode(crop.view(), pts)?,
                _ => self.encoder.encode(frame, pts)?,
            };
        }
        let mut sample = Vec::with_capacity(encoded.data.len() + 16);
        let (mut sps, mut pps, mut sync) = (None, None, false);
        for nal in split_annex_b(&encoded.data) {
            match nal.first().map(|b| b & 0x1f) {
                Some(7) => sps = Some(nal.to_vec()),
                Some(8) => pps = Some(nal.to_vec()),
                // Filler data and empty units carry no picture.
                Some(12) | None => {}
                Some(t) => {
                    sync |= t == 5;
                    sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    sample.extend_from_slice(nal);
                }
            }
        }
        if self.writer.is_none() {
            let (Some(sps), Some(pps)) = (sps, pps) else {
                return Err(write_error(
                    &self.path,
                    "the encoder's first frame has no parameter sets",
                ));
            };
            let file = self.file.take().expect("file until the writer starts");
            let config = mp4::Mp4Config {
                major_brand: str::parse("isom").expect("fourcc"),
                minor_version: 512,
                compatible_brands: ["isom", "iso2", "avc1", "mp41"]
                    .iter()
                    .map(|b| str::parse(b).expect("fourcc"))
                    .collect(),
                timescale: TIMESCALE,
            };
            let mut writer = mp4::Mp4Writer::write_start(file, &config)
                .map_err(|e| write_error(&self.path, e))?;
            writer
                .add_track(&mp4::TrackConfig {
                    track_type: mp4::TrackType::Video,
                    timescale: TIMESCALE,
                    language: "und".into(),
                    media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                        width: self.size.0 as u16,
                        height: self.size.1 as u16,
                        seq_param_set: sps,
                        pic_param_set: pps,
                    }),
                })
                .map_err(|e| write_error(&self.path, e))?;
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("just started");
        writer
            .write_sample(
                1,
                &mp4::Mp4Sample {
                    start_time: self.frames * self.sample_ticks as u64,
                    duration: self.sample_ticks,
                    rendering_offset: 0,
                    is_sync: sync,
                    bytes: mp4::Bytes::from(sample),
                },
            )
            .map_err(|e| write_error(&self.path, e))?;
        self.frames += 1;
        Ok(())
    }

    /// Writes the index and closes the file; returns the frames written. A video with no
    /// frame is an error (an MP4 needs the first frame's parameter sets).
    pub fn finish(mut self) -> Result<u64, VideoError> {
        let Some(mut writer) = self.writer.take() else {
            return Err(write_error(&self.path, "no frame was written"));
        };
        writer.write_end().map_err(|e| write_error(&self.path, e))?;
        let mut file = writer.into_writer();
        std::io::Write::flush(&mut file).map_err(|e| write_error(&self.path, e))?;
        Ok(self.frames)
    }
}
