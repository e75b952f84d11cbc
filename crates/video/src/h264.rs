//! H.264 encoding (as a phone does before sending) and decoding (as the edge does), on the
//! `openh264` crate (Cisco's codec, built from source; with `nasm` present its assembly is used).
//!
//! Streams are Annex B byte streams (start-code delimited NAL units), the format of a `.h264`
//! file and of our wire payloads. openh264 encodes Constrained Baseline: no B-frames, so every
//! encoded frame can be decoded as soon as it arrives.

use crate::pixels::{psnr, Yuv420};
use crate::VideoError;
use deepoffload_core::{RgbBuffer, RgbImageRef};
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
};
use openh264::formats::{YUVSlices, YUVSource};
use openh264::{OpenH264API, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How the encoder trades quality against the target bit rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateControl {
    /// Constant bit rate: hold the target from above (skipping frames if allowed) and pad with
    /// filler data when the content needs fewer bits, so the link carries exactly the target —
    /// the load a configuration puts on the network is then what it says.
    #[default]
    Cbr,
    /// Capped variable bit rate: hold the target from above but spend less when the content
    /// needs less (saves bandwidth on easy scenes; the load then depends on the content).
    Bitrate,
    /// Favour quality; the bit rate is only a guide.
    Quality,
    /// Adjust quality from the buffer state only.
    Buffer,
    /// Rate control driven by frame timestamps.
    Timestamp,
    /// Constant QP; no rate control at all.
    Off,
}

impl RateControl {
    fn to_openh264(self) -> RateControlMode {
        match self {
            RateControl::Cbr | RateControl::Bitrate => RateControlMode::Bitrate,
            RateControl::Quality => RateControlMode::Quality,
            RateControl::Buffer => RateControlMode::Bufferbased,
            RateControl::Timestamp => RateControlMode::Timestamp,
            RateControl::Off => RateControlMode::Off,
        }
    }
}

impl std::fmt::Display for RateControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RateControl::Cbr => "cbr",
            RateControl::Bitrate => "bitrate",
            RateControl::Quality => "quality",
            RateControl::Buffer => "buffer",
            RateControl::Timestamp => "timestamp",
            RateControl::Off => "off",
        })
    }
}

impl std::str::FromStr for RateControl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "cbr" => Self::Cbr,
            "bitrate" | "vbr" => Self::Bitrate,
            "quality" => Self::Quality,
            "buffer" => Self::Buffer,
            "timestamp" => Self::Timestamp,
            "off" => Self::Off,
            _ => {
                return Err(format!(
                    "unknown rate control `{s}` (cbr, bitrate, quality, buffer, timestamp, off)"
                ))
            }
        })
    }
}

/// Encoder settings: the H.264 knobs of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncoderSettings {
    /// Target bit rate in bits per second.
    pub bitrate_bps: u32,
    /// The frame rate frames are fed at (the rate controller's budget per frame is
    /// bit rate / this).
    pub max_fps: f32,
    /// A key (IDR) frame every this many frames; 0 = only the first.
    pub keyframe_interval: u32,
    pub rate_control: RateControl,
    /// Let the rate controller drop frames to hold the bit rate (what openh264 does at low
    /// rates: expect skipped frames).
    pub allow_skip: bool,
    /// Decode every encoded frame again and measure its luma PSNR against the input.
    pub measure_psnr: bool,
    /// openh264's perceptual tools (adaptive quantisation, background skipping). Off by default:
    /// detectors are not human viewers, and on static scenes these tools stop the encoder from
    /// using the bit rate it is given.
    pub perceptual_tools: bool,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            bitrate_bps: 500_000,
            max_fps: 10.0,
            keyframe_interval: 0,
            rate_control: RateControl::Bitrate,
            allow_skip: true,
            measure_psnr: false,
            perceptual_tools: false,
        }
    }
}

/// What became of one frame given to the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    Idr,
    I,
    P,
    /// Dropped by rate control; nothing is sent, the receiver keeps showing the last frame.
    Skipped,
}

/// One encoded frame.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// Annex B bytes (empty when skipped).
    pub data: Vec<u8>,
    pub kind: FrameKind,
    /// Luma PSNR of the decoded result against the input, when measured and not skipped.
    pub psnr_y: Option<f64>,
    /// Time spent converting and encoding (not the PSNR check).
    pub encode_time: Duration,
}

/// Bytes of a filler NAL unit besides its payload: start code, header, stop bit.
const FILLER_OVERHEAD: usize = 6;

/// A stateful H.264 encoder for frames of one size.
pub struct H264Encoder {
    encoder: Encoder,
    settings: EncoderSettings,
    checker: Option<H264Decoder>,
    size: Option<(u32, u32)>,
    /// CBR: bytes the link is still owed (target so far minus bytes sent so far).
    padding_credit: f64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("settings", &self.settings)
            .finish()
    }
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, VideoError> {
        let fps_ok = settings.max_fps.is_finite() && settings.max_fps > 0.0;
        if settings.bitrate_bps == 0 || !fps_ok {
            return Err(VideoError::Usage(format!(
                "encoder needs a positive bit rate and frame rate (got {} bps, {} fps)",
                settings.bitrate_bps, settings.max_fps
            )));
        }
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(settings.max_fps))
            .rate_control_mode(settings.rate_control.to_openh264())
            .skip_frames(settings.allow_skip)
            .adaptive_quantization(settings.perceptual_tools)
            .background_detection(settings.perceptual_tools)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.keyframe_interval,
            ));
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Encode(format!("cannot create the encoder: {e}")))?;
        let checker = if settings.measure_psnr {
            Some(H264Decoder::new()?)
        } else {
            None
        };
        Ok(Self {
            encoder,
            settings,
            checker,
            size: None,
            padding_credit: 0.0,
        })
    }

    /// CBR: appends a filler-data NAL unit so the stream carries the target bit rate.
    ///
    /// Hand-written rather than openh264's own `iPaddingFlag`: openh264 writes padding into a
    /// bitstream buffer sized to one raw frame and fails (`cmMallocMemeError`) whenever the
    /// deficit is larger — e.g. 2 Mbit/s at 2 fps on a 384x288 picture (125 kB a frame).
    /// A leaky bucket: each frame adds its share of the target; bytes sent repay it; a
    /// positive balance is sent as filler (at most one frame's share carries over a skipped
    /// frame, so a skip never turns into a burst).
    fn pad_to_target(&mut self, data: &mut Vec<u8>) {
        let share = self.settings.bitrate_bps as f64 / 8.0 / f64::from(self.settings.max_fps);
        self.padding_credit += share - data.len() as f64;
        if data.is_empty() {
            self.padding_credit = self.padding_credit.min(share);
            return;
        }
        let owed = self.padding_credit.floor();
        if owed >= FILLER_OVERHEAD as f64 + 1.0 {
            let payload = owed as usize - FILLER_OVERHEAD;
            data.reserve(owed as usize);
            // Annex B start code, NAL header (nal_ref_idc 0, type 12 filler data), 0xFF bytes
            // (never a start-code emulation), then the RBSP stop bit.
            data.extend_from_slice(&[0, 0, 0, 1, 0x0C]);
            data.resize(data.len() + payload, 0xFF);
            data.push(0x80);
            self.padding_credit -= owed;
        }
    }

    pub fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Asks for the next frame to be a key frame (e.g. after a receiver lost data).
    pub fn force_keyframe(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Encodes one RGB frame captured at `pts`. Width and height must be even (4:2:0) and stay
    /// the same for the life of the encoder.
    pub fn encode(
        &mut self,
        frame: RgbImageRef<'_>,
        pts: Duration,
    ) -> Result<EncodedFrame, VideoError> {
        let (w, h) = (frame.width(), frame.height());
        if w % 2 != 0 || h % 2 != 0 {
            return Err(VideoError::Usage(format!(
                "H.264 4:2:0 needs an even width and height; got {w}x{h} (choose e.g. {}x{})",
                w & !1,
                h & !1
            )));
        }
        match self.size {
            Some(size) if size != (w, h) => {
                return Err(VideoError::Usage(format!(
                    "frame is {w}x{h} but this encoder was started at {}x{}; use one encoder per resolution",
                    size.0, size.1
                )))
            }
            _ => self.size = Some((w, h)),
        }
        let start = Instant::now();
        let yuv = Yuv420::from_rgb(frame)?;
        let (cw, _) = (w.div_ceil(2) as usize, h.div_ceil(2));
        let slices = YUVSlices::new(
            (&yuv.y, &yuv.u, &yuv.v),
            (w as usize, h as usize),
            (w as usize, cw, cw),
        );
        let stream = self
            .encoder
            .encode_at(&slices, Timestamp::from_millis(pts.as_millis() as u64))
            .map_err(|e| VideoError::Encode(format!("encoding a {w}x{h} frame: {e}")))?;
        let kind = match stream.frame_type() {
            FrameType::IDR => FrameKind::Idr,
            FrameType::I => FrameKind::I,
            FrameType::P | FrameType::IPMixed => FrameKind::P,
            FrameType::Skip => FrameKind::Skipped,
            FrameType::Invalid => {
                return Err(VideoError::Encode(
                    "the encoder returned an invalid frame".into(),
                ))
            }
        };
        let mut data = if kind == FrameKind::Skipped {
            Vec::new()
        } else {
            stream.to_vec()
        };
        if self.settings.rate_control == RateControl::Cbr {
            self.pad_to_target(&mut data);
        }
        let encode_time = start.elapsed();
        let psnr_y = match (&mut self.checker, kind) {
            (Some(checker), k) if k != FrameKind::Skipped => {
                let decoded = checker.decode_yuv(&data)?;
                decoded.map(|d| psnr(&yuv.y, &d.y))
            }
            _ => None,
        };
        Ok(EncodedFrame {
            data,
            kind,
            psnr_y,
            encode_time,
        })
    }
}

/// A stateful H.264 decoder for Annex B access units (one frame's NAL units per call).
pub struct H264Decoder {
    decoder: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H264Decoder")
    }
}

impl H264Decoder {
    pub fn new() -> Result<Self, VideoError> {
        // Error concealment stays off: corrupt input must become an error, not a smeared picture.
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Decode(format!("cannot create the decoder: {e}")))?;
        Ok(Self { decoder })
    }

    /// Decodes one access unit into I420; `None` when it completes no picture (e.g. only
    /// parameter sets).
    pub fn decode_yuv(&mut self, access_unit: &[u8]) -> Result<Option<Yuv420>, VideoError> {
        if access_unit.is_empty() {
            return Ok(None);
        }
        let decoded = self.decoder.decode(access_unit).map_err(|e| {
            VideoError::Decode(format!(
                "corrupt or unsupported H.264 data ({} bytes): {e}",
                access_unit.len()
            ))
        })?;
        let Some(picture) = decoded else {
            return Ok(None);
        };
        let (w, h) = picture.dimensions();
        let (ys, us, vs) = picture.strides();
        if w == 0 || h == 0 {
            return Err(VideoError::Decode(
                "decoder produced an empty picture".into(),
            ));
        }
        Yuv420::from_planes(
            w as u32,
            h as u32,
            [(picture.y(), ys), (picture.u(), us), (picture.v(), vs)],
        )
        .map(Some)
    }

    /// Decodes one access unit into RGB.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<RgbBuffer>, VideoError> {
        match self.decode_yuv(access_unit)? {
            Some(yuv) => yuv.to_rgb().map(Some),
            None => Ok(None),
        }
    }
}

/// Splits an Annex B stream (as in a `.h264` file) into NAL units, start codes removed.
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
            // A four-byte start code leaves one zero behind; trailing zeros are not NAL data.
            while end > s && stream[end - 1] == 0 {
                end -= 1;
            }
            &stream[s..end]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving_square(w: u32, h: u32, t: u32) -> RgbBuffer {
        let mut img = RgbBuffer::new(w, h).unwrap();
        let data = img.data_mut();
        for y in 0..h {
            for x in 0..w {
                let inside = (x + 4 * t) % w < w / 4 && y > h / 4 && y < h / 2;
                let p = ((y * w + x) * 3) as usize;
                let px = if inside {
                    [230, 40, 40]
                } else {
                    [(x % 256) as u8, (y % 256) as u8, 90]
                };
                data[p..p + 3].copy_from_slice(&px);
            }
        }
        img
    }

    #[test]
    fn encode_then_decode_round_trip() {
        let settings = EncoderSettings {
            bitrate_bps: 2_000_000,
            measure_psnr: true,
            ..Default::default()
        };
        let mut enc = H264Encoder::new(settings).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        for t in 0..10 {
            let frame = moving_square(160, 96, t);
            let out = enc
                .encode(frame.view(), Duration::from_millis(100 * t as u64))
                .unwrap();
            if t == 0 {
                assert_eq!(out.kind, FrameKind::Idr);
            }
            if out.kind == FrameKind::Skipped {
                continue;
            }
            assert!(
                out.psnr_y.unwrap() > 30.0,
                "frame {t}: PSNR {:?}",
                out.psnr_y
            );
            let back = dec.decode(&out.data).unwrap().expect("a picture per frame");
            assert_eq!((back.width(), back.height()), (160, 96));
        }
    }

    #[test]
    fn odd_sizes_and_size_changes_are_errors() {
        let mut enc = H264Encoder::new(EncoderSettings::default()).unwrap();
        let err = enc
            .encode(moving_square(161, 96, 0).view(), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("even width and height"), "{err}");
        enc.encode(moving_square(160, 96, 0).view(), Duration::ZERO)
            .unwrap();
        let err = enc
            .encode(moving_square(96, 160, 0).view(), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("one encoder per resolution"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_picture() {
        let mut dec = H264Decoder::new().unwrap();
        let mut state = 12345u32;
        for len in [1usize, 7, 100, 5000] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                    (state >> 24) as u8
                })
                .collect();
            // With a start code so the decoder really parses it.
            let mut au = vec![0, 0, 0, 1];
            au.extend(junk);
            if let Ok(Some(p)) = dec.decode(&au) {
                panic!(
                    "{len} random bytes decoded to a {}x{} picture",
                    p.width(),
                    p.height()
                );
            }
        }
    }

    #[test]
    fn annex_b_split() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals = split_annex_b(&s);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }
}
