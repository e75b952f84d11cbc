//! The remote pass: one decoding of a video at one resolution that feeds every (bit rate,
//! frame rate) H.264 encoder of the grid, decodes what the server would receive, and runs each
//! model on the picture the server holds at each evaluation frame (the previous one when the
//! encoder skipped), giving one cell per (model, bit rate, frame rate).
//!
//! It never runs a model on raw frames (the server only sees what was encoded), and never
//! decides whether a pass is needed (the checkpoint does, in `run_profile`).

use super::first_pass::VideoPass;
use super::{median, progress, Profiler};
use crate::energy;
use crate::grid::{Grid, ModelAt};
use crate::LabError;
use deepoffload_core::profile::{Cell, CellLatency};
use deepoffload_core::{Config, Detection, Placement, RgbBuffer};
use deepoffload_detect::Detector;
use deepoffload_video::{
    EncoderSettings, FrameKind, H264Decoder, H264Encoder, OpenOptions, Resizer, Sampler,
};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Approximate protocol bytes of a result: envelope and times, plus one detection's fields.
const RESULT_BASE_BYTES: f64 = 40.0;
const RESULT_BYTES_PER_DETECTION: f64 = 26.0;

/// The configuration of model `m` on the server, sent `width`×`height` at `fps` and `bitrate`.
pub(super) fn remote_config(
    m: &ModelAt,
    width: u32,
    height: u32,
    fps: f64,
    bitrate: u64,
) -> Config {
    Config {
        placement: Placement::Remote,
        model: m.model.clone(),
        input_size: m.size,
        width,
        height,
        fps,
        bitrate_bps: bitrate,
    }
}

/// One encoder of a remote pass and what it produced.
struct EncoderRun {
    bitrate: u64,
    fps: f64,
    sampler: Sampler,
    encoder: H264Encoder,
    decoder: H264Decoder,
    /// What the server currently holds (the last decoded picture).
    held: Option<RgbBuffer>,
    analysed: u64,
    skipped: u64,
    bytes: u64,
    encode_ms: Vec<f64>,
    decode_ms: Vec<f64>,
    /// Per model: predictions at evaluation frames.
    predictions: BTreeMap<ModelAt, BTreeMap<u64, Vec<Detection>>>,
}

impl EncoderRun {
    fn new(bitrate: u64, fps: f64, video_fps: f64, grid: &Grid) -> Result<Self, LabError> {
        Ok(Self {
            bitrate,
            fps,
            sampler: Sampler::new(fps),
            encoder: H264Encoder::new(EncoderSettings {
                bitrate_bps: bitrate as u32,
                max_fps: fps.min(video_fps) as f32,
                rate_control: grid.rate_control,
                ..EncoderSettings::default()
            })?,
            decoder: H264Decoder::new()?,
            held: None,
            analysed: 0,
            skipped: 0,
            bytes: 0,
            encode_ms: Vec::new(),
            decode_ms: Vec::new(),
            predictions: BTreeMap::new(),
        })
    }

    /// One resized source frame: kept or not by the sampler, then encoded (or skipped by the
    /// encoder) and decoded as the server would.
    fn feed(&mut self, scaled: &RgbBuffer, pts: Duration) -> Result<(), LabError> {
        if !self.sampler.keep(pts) {
            return Ok(());
        }
        self.analysed += 1;
        let out = self.encoder.encode(scaled.view(), pts)?;
        self.encode_ms.push(out.encode_time.as_secs_f64() * 1e3);
        if out.kind == FrameKind::Skipped {
            self.skipped += 1;
        } else {
            self.bytes += out.data.len() as u64;
            let t = Instant::now();
            let decoded = self.decoder.decode(&out.data)?;
            self.decode_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if decoded.is_some() {
                self.held = decoded;
            }
        }
        Ok(())
    }

    /// The cells of this encoder, one per model of the grid; `resize` is this machine's
    /// median resize time of the pass.
    fn into_cells(
        mut self,
        lab: &Profiler,
        pass: &VideoPass,
        (w, h): (u32, u32),
        resize: f64,
    ) -> Vec<Cell> {
        let grid = &lab.request.grid;
        let seconds = self.analysed as f64 / self.fps.min(pass.profile.fps);
        let sent = self.analysed - self.skipped;
        let actual_bps = if seconds > 0.0 {
            self.bytes as f64 * 8.0 / seconds
        } else {
            0.0
        };
        let achieved = self.fps.min(pass.profile.fps)
            * if self.analysed > 0 {
                sent as f64 / self.analysed as f64
            } else {
                0.0
            };
        let encode = median_or_zero(&mut self.encode_ms);
        let decode = median_or_zero(&mut self.decode_ms);
        let mut cells = Vec::new();
        for m in &grid.models {
            let predictions = self.predictions.remove(m).unwrap_or_default();
            let mean_detections = predictions.values().map(Vec::len).sum::<usize>() as f64
                / predictions.len().max(1) as f64;
            let scores = pass.score(&predictions, grid.max_lag);
            let device_compute = (resize + encode) * lab.latencies.speed_factor;
            let down_bps =
                achieved * (RESULT_BASE_BYTES + RESULT_BYTES_PER_DETECTION * mean_detections) * 8.0;
            cells.push(Cell {
                video: pass.profile.name.clone(),
                scale: None,
                config: remote_config(m, w, h, self.fps, self.bitrate),
                accuracy: scores.accuracy,
                map50: scores.map50,
                staleness_f1: scores.staleness,
                tracked_staleness_f1: scores.tracked_staleness,
                frames_analysed: self.analysed,
                frames_skipped: self.skipped,
                achieved_fps: achieved,
                bytes_per_frame: if sent > 0 {
                    self.bytes as f64 / sent as f64
                } else {
                    0.0
                },
                actual_bps,
                latency_ms: CellLatency {
                    resize,
                    encode,
                    decode,
                    inference: lab.latencies.measured_ms(m),
                    device_compute,
                },
                energy: energy::cell_energy(
                    &lab.request.device,
                    &lab.backend,
                    device_compute,
                    achieved,
                    actual_bps,
                    down_bps,
                ),
            });
        }
        cells
    }
}

fn median_or_zero(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        median(values)
    }
}

/// One pass over the video at `path` at resolution `(w, h)`, feeding every (bit rate, frame
/// rate) encoder; the cells of every model on the server.
pub(super) fn remote_pass(
    lab: &mut Profiler,
    path: &Path,
    pass: &VideoPass,
    (w, h): (u32, u32),
) -> Result<Vec<Cell>, LabError> {
    let grid = &lab.request.grid;
    let name = &pass.profile.name;
    let mut runs = Vec::new();
    for &bitrate in &grid.bitrates {
        for &fps in &grid.fps {
            runs.push(EncoderRun::new(bitrate, fps, pass.profile.fps, grid)?);
        }
    }
    let eval: HashSet<u64> = pass.profile.eval_frames.iter().copied().collect();
    let mut source = deepoffload_video::open(path, lab.store, &OpenOptions::default())?;
    let mut resizer = Resizer::new();
    let mut resize_ms = Vec::new();
    let bar = progress(pass.frames as u64, format!("{name}: remote {w}x{h}"));
    for i in 0..pass.frames {
        let Some(frame) = source.next_frame()? else {
            break;
        };
        let t = Instant::now();
        let scaled = resizer.resize(frame.image.view(), w, h)?;
        resize_ms.push(t.elapsed().as_secs_f64() * 1e3);
        for run in &mut runs {
            run.feed(&scaled, frame.pts)?;
        }
        if eval.contains(&(i as u64)) {
            for m in &grid.models {
                let det = lab.detectors.get(m)?;
                for run in &mut runs {
                    // The server's latest picture (a skipped frame leaves the previous one).
                    let detections = match &run.held {
                        Some(image) => pass.to_source(det.detect(image.view())?.detections, (w, h)),
                        None => Vec::new(),
                    };
                    run.predictions
                        .entry(m.clone())
                        .or_default()
                        .insert(i as u64, detections);
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let resize = median(&mut resize_ms);
    let lab = &*lab;
    Ok(runs
        .into_iter()
        .flat_map(|run| run.into_cells(lab, pass, (w, h), resize))
        .collect())
}
