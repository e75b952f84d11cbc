//! Native MP4/H.264: `mp4` demuxes, openh264 decodes, all in process.

use super::{Frame, VideoInfo, VideoSource};
use crate::h264::H264Decoder;
use crate::VideoError;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// H.264 profile_idc of Baseline (and Constrained Baseline): the only one we decode natively,
/// because openh264's decoder handles neither B-frames nor every High-profile tool.
const PROFILE_BASELINE: u8 = 66;

/// What the container says about its first video track.
#[derive(Debug, Clone)]
pub struct Mp4Probe {
    pub info: VideoInfo,
    pub track_id: u32,
    pub timescale: u32,
    /// `avc1` (H.264) or another sample entry.
    pub codec_fourcc: String,
    pub profile_idc: u8,
    /// Bytes of each NAL length prefix (1, 2 or 4).
    pub nal_length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl Mp4Probe {
    /// Why openh264 cannot decode this track in process, if it cannot.
    pub fn why_not_native(&self) -> Option<&'static str> {
        if self.codec_fourcc != "avc1" {
            Some("not H.264 (avc1)")
        } else if self.info.reordered {
            Some("H.264 with B-frames (reordered frames)")
        } else if self.profile_idc != PROFILE_BASELINE {
            Some("H.264 above Baseline profile")
        } else if self.sps.is_empty() || self.pps.is_empty() {
            Some("no SPS/PPS in the avcC box")
        } else {
            None
        }
    }

    pub fn native_ok(&self) -> bool {
        self.why_not_native().is_none()
    }
}

fn format_error(path: &Path, message: impl std::fmt::Display) -> VideoError {
    VideoError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn profile_name(idc: u8, constrained: bool) -> &'static str {
    match idc {
        66 if constrained => "Constrained Baseline",
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High 10",
        122 => "High 4:2:2",
        244 => "High 4:4:4",
        _ => "unknown profile",
    }
}

fn read_header(path: &Path) -> Result<::mp4::Mp4Reader<BufReader<File>>, VideoError> {
    let (file, size) = super::open_file(path)?;
    // The `mp4` crate trusts box sizes and counts in places; a damaged file must give an
    // error, not take the process down, so a panic inside it is turned into one.
    let reader = BufReader::new(file);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ::mp4::Mp4Reader::read_header(reader, size)
    })) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format_error(path, format!("not a readable MP4 file: {e}"))),
        Err(_) => Err(format_error(
            path,
            "not a readable MP4 file: the container is damaged",
        )),
    }
}

/// Checks that every top-level box lies inside the file. The `mp4` crate only compares a box's
/// size with the whole file's, so a file cut inside its last box (often `moov`) would pass.
fn check_top_level_boxes(path: &Path) -> Result<(), VideoError> {
    use std::io::{Read, Seek, SeekFrom};
    let (mut file, len) = super::open_file(path)?;
    let mut at = 0u64;
    while at < len {
        let mut header = [0u8; 16];
        let avail = (len - at).min(16) as usize;
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut header[..avail]))
            .map_err(|source| VideoError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        if avail < 8 {
            return Err(format_error(
                path,
                format!("{avail} stray bytes at offset {at} (file cut?)"),
            ));
        }
        let kind = String::from_utf8_lossy(&header[4..8]).into_owned();
        let size = match u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) {
            0 => len - at, // extends to the end of the file
            1 if avail == 16 => u64::from_be_bytes(header[8..16].try_into().expect("8 bytes")),
            1 => {
                return Err(format_error(
                    path,
                    format!("box `{kind}` at offset {at} is cut off"),
                ))
            }
            n => n as u64,
        };
        if size < 8 || at + size > len {
            return Err(format_error(
                path,
                format!("box `{kind}` at offset {at} claims {size} bytes but the file ends {} bytes later (file cut or damaged)", len - at),
            ));
        }
        at += size;
    }
    Ok(())
}

/// Reads an MP4's header and describes its first video track.
pub fn probe_mp4(path: &Path) -> Result<Mp4Probe, VideoError> {
    check_top_level_boxes(path)?;
    let reader = read_header(path)?;
    let track = reader
        .tracks()
        .values()
        .filter(|t| matches!(t.track_type(), Ok(::mp4::TrackType::Video)))
        .min_by_key(|t| t.track_id())
        .ok_or_else(|| format_error(path, "the file has no video track"))?;
    let stbl = &track.trak.mdia.minf.stbl;
    let avc1 = stbl.stsd.avc1.as_ref();
    let codec_fourcc = match (avc1, &stbl.stsd.hev1, &stbl.stsd.vp09) {
        (Some(_), _, _) => "avc1",
        (None, Some(_), _) => "hev1",
        (None, None, Some(_)) => "vp09",
        _ => "unknown",
    }
    .to_string();
    let reordered = stbl.ctts.as_ref().is_some_and(|c| {
        c.entries
            .iter()
            .any(|e| e.sample_offset != 0 && e.sample_count > 0)
    });
    let timescale = track.timescale();
    if timescale == 0 {
        return Err(format_error(path, "the video track's timescale is 0"));
    }
    let frames = track.sample_count() as u64;
    let duration = Duration::from_secs_f64(track.trak.mdia.mdhd.duration as f64 / timescale as f64);
    let fps = if duration > Duration::ZERO {
        frames as f64 / duration.as_secs_f64()
    } else {
        0.0
    };
    let (profile_idc, constrained, nal_length_size, sps, pps, width, height) = match avc1 {
        Some(a) => (
            a.avcc.avc_profile_indication,
            a.avcc.profile_compatibility & 0x40 != 0,
            (a.avcc.length_size_minus_one & 3) as usize + 1,
            a.avcc
                .sequence_parameter_sets
                .iter()
                .map(|n| n.bytes.clone())
                .collect(),
            a.avcc
                .picture_parameter_sets
                .iter()
                .map(|n| n.bytes.clone())
                .collect(),
            a.width as u32,
            a.height as u32,
        ),
        None => (
            0,
            false,
            4,
            Vec::new(),
            Vec::new(),
            track.width() as u32,
            track.height() as u32,
        ),
    };
    let codec = if codec_fourcc == "avc1" {
        format!("h264 ({})", profile_name(profile_idc, constrained))
    } else {
        codec_fourcc.clone()
    };
    let bytes: u64 = stbl
        .stsz
        .sample_sizes
        .iter()
        .map(|&s| s as u64)
        .sum::<u64>()
        + if stbl.stsz.sample_size > 0 {
            stbl.stsz.sample_size as u64 * frames
        } else {
            0
        };
    let bitrate_bps =
        (duration > Duration::ZERO).then(|| (bytes as f64 * 8.0 / duration.as_secs_f64()) as u64);
    let mut probe = Mp4Probe {
        info: VideoInfo {
            path: path.to_path_buf(),
            container: "mp4".into(),
            codec,
            width,
            height,
            fps,
            frames: Some(frames),
            duration: Some(duration),
            bitrate_bps,
            reordered,
            decoder: String::new(),
        },
        track_id: track.track_id(),
        timescale,
        codec_fourcc,
        profile_idc,
        nal_length_size,
        sps,
        pps,
    };
    probe.info.decoder = if probe.native_ok() {
        "openh264"
    } else {
        "ffmpeg"
    }
    .into();
    if width == 0 || height == 0 {
        return Err(format_error(
            path,
            format!("the video track is {width}x{height}"),
        ));
    }
    Ok(probe)
}

/// An MP4 file decoded in process.
pub struct Mp4Source {
    path: PathBuf,
    reader: ::mp4::Mp4Reader<BufReader<File>>,
    probe: Mp4Probe,
    decoder: H264Decoder,
    /// Next sample to read (the `mp4` crate counts from 1).
    next_sample: u32,
    /// Parameter sets in Annex B form, sent before every key frame.
    parameter_sets: Vec<u8>,
    au: Vec<u8>,
}

impl Mp4Source {
    /// Opens a file that [`probe_mp4`] found natively decodable.
    pub fn open(path: &Path, probe: Mp4Probe) -> Result<Self, VideoError> {
        if let Some(why) = probe.why_not_native() {
            return Err(format_error(
                path,
                format!("cannot decode in process: {why}; use ffmpeg"),
            ));
        }
        let mut parameter_sets = Vec::new();
        for nal in probe.sps.iter().chain(&probe.pps) {
            parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
            parameter_sets.extend_from_slice(nal);
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader: read_header(path)?,
            probe,
            decoder: H264Decoder::new()?,
            next_sample: 1,
            parameter_sets,
            au: Vec::new(),
        })
    }

    /// Rewrites one sample's length-prefixed NAL units as an Annex B access unit.
    fn annex_b_from(&mut self, data: &[u8], key: bool, sample: u32) -> Result<(), VideoError> {
        self.au.clear();
        if key || sample == 1 {
            self.au.extend_from_slice(&self.parameter_sets);
        }
        let n = self.probe.nal_length_size;
        let mut rest = data;
        while !rest.is_empty() {
            if rest.len() < n {
                return Err(format_error(
                    &self.path,
                    format!("sample {sample}: truncated NAL length"),
                ));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            rest = &rest[n..];
            if len == 0 || len > rest.len() {
                return Err(format_error(
                    &self.path,
                    format!("sample {sample}: NAL unit of {len} bytes but {} remain (file damaged or cut)", rest.len()),
                ));
            }
            self.au.extend_from_slice(&[0, 0, 0, 1]);
            self.au.extend_from_slice(&rest[..len]);
            rest = &rest[len..];
        }
        Ok(())
    }
}

impl VideoSource for Mp4Source {
    fn info(&self) -> &VideoInfo {
        &self.probe.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let total = self.probe.info.frames.unwrap_or(0) as u32;
        while self.next_sample <= total {
            let id = self.next_sample;
            self.next_sample += 1;
            let sample = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.reader.read_sample(self.probe.track_id, id)
            }))
            .map_err(|_| {
                format_error(
                    &self.path,
                    format!("sample {id}: the sample tables are damaged"),
                )
            })?
            .map_err(|e| {
                format_error(
                    &self.path,
                    format!("sample {id}: {e} (file damaged or cut)"),
                )
            })?;
            let Some(sample) = sample else {
                return Err(format_error(
                    &self.path,
                    format!("sample {id} is missing (file cut?)"),
                ));
            };
            self.annex_b_from(&sample.bytes, sample.is_sync, id)?;
            let decoded = self
                .decoder
                .decode_yuv(&self.au)
                .map_err(|e| VideoError::Format {
                    path: self.path.clone(),
                    message: format!("frame {}: {e}", id - 1),
                })?;
            let Some(yuv) = decoded else {
                tracing::warn!("{}: sample {id} produced no picture", self.path.display());
                continue;
            };
            let ticks = (sample.start_time as i64 + sample.rendering_offset as i64).max(0) as u64;
            let pts = Duration::from_nanos(
                (ticks as u128 * 1_000_000_000 / self.probe.timescale as u128) as u64,
            );
            return Ok(Some(Frame {
                index: (id - 1) as u64,
                pts,
                image: yuv.to_rgb()?,
            }));
        }
        Ok(None)
    }
}
