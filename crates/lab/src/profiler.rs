//! The profiler: every configuration of a grid measured on real videos through the real pipeline.
//!
//! Per video: one decoding pass computes (or loads) the reference on the raw frames and picks the
//! evaluation frames — frames analysed under every frame rate of the grid, `eval_every_s` apart.
//! Local cells run each model on the resized raw evaluation frames. Remote cells come from one
//! pass per resolution that feeds every (bit rate, frame rate) encoder, decodes what the server
//! would receive, and runs each model on the picture the server holds at each evaluation frame
//! (the previous one when the encoder skipped). Stage latencies are this machine's measurements;
//! device figures are scaled to the chosen device class and say so. Finished passes are appended
//! to a `.partial.jsonl` file, so a crash loses at most the pass under way.

use crate::devices::DeviceClass;
use crate::energy;
use crate::grid::{scaled_side, Grid, ModelAt};
use crate::reference::{self, Reference};
use crate::{fit, LabError};
use deepoffload_assets::Store;
use deepoffload_core::metrics::{
    match_frame, mean_average_precision, AccuracyAccumulator, MATCH_IOU,
};
use deepoffload_core::profile::{
    Cell, CellEnergy, CellLatency, DeviceInfo, ModelKey, ModelLatency, PixelFit, Profile,
    VideoProfile, PROFILE_SCHEMA,
};
use deepoffload_core::{Config, Detection, Placement, RgbBuffer};
use deepoffload_detect::{Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector};
use deepoffload_video::{
    EncoderSettings, FrameKind, H264Decoder, H264Encoder, OpenOptions, Resizer, Sampler,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to profile.
#[derive(Debug, Clone)]
pub struct ProfileRequest {
    pub videos: Vec<PathBuf>,
    pub grid: Grid,
    pub device: DeviceClass,
    /// The reference model (the big model on raw frames).
    pub reference: ModelAt,
    /// ONNX Runtime threads for every detector.
    pub threads: usize,
    /// Where finished cells are appended and read back after a crash.
    pub partial: Option<PathBuf>,
}

impl ProfileRequest {
    /// What a finished cell depends on besides its own configuration: cells from a partial
    /// file are reused only when this matches, so a resumed run never mixes two setups.
    fn fingerprint(&self) -> String {
        let g = &self.grid;
        serde_json::json!({
            "device": self.device.name,
            "reference": self.reference,
            "rate_control": g.rate_control,
            "eval_every_s": g.eval_every_s,
            "max_lag": g.max_lag,
            "max_seconds": g.max_seconds,
            "tool_version": env!("CARGO_PKG_VERSION"),
        })
        .to_string()
    }
}

/// Approximate protocol bytes of a result: envelope and times, plus one detection's fields.
const RESULT_BASE_BYTES: f64 = 40.0;
const RESULT_BYTES_PER_DETECTION: f64 = 26.0;

fn progress(len: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{msg:42} [{bar:30}] {pos}/{len} {elapsed}/{eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

fn video_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Detectors by model and input size, created on demand.
struct Detectors<'a> {
    store: &'a Store,
    threads: usize,
    loaded: HashMap<ModelAt, (YoloDetector, f64)>,
}

impl<'a> Detectors<'a> {
    fn get(&mut self, key: &ModelAt) -> Result<&mut YoloDetector, LabError> {
        if !self.loaded.contains_key(key) {
            let model = ImportedModel::load(
                self.store,
                &key.model,
                Some(key.size as usize),
                &ModelOverrides::default(),
            )?;
            let gflops = model.network.bflops();
            let detector = YoloDetector::new(
                &model,
                DetectorOptions {
                    threads: self.threads,
                    ..Default::default()
                },
            )?;
            self.loaded.insert(key.clone(), (detector, gflops));
        }
        Ok(&mut self.loaded.get_mut(key).expect("inserted").0)
    }

    fn gflops(&mut self, key: &ModelAt) -> Result<f64, LabError> {
        self.get(key)?;
        Ok(self.loaded[key].1)
    }
}

/// Per-video facts from the first decoding pass.
struct VideoPass {
    profile: VideoProfile,
    reference: Reference,
    /// Raw evaluation frames, by source index.
    eval_images: BTreeMap<u64, RgbBuffer>,
    /// Source frames covered (evaluation ends before the last `max_lag` reference frames).
    frames: usize,
}

/// Maps boxes found on a frame scaled to `from` back to the source size `to`.
fn to_source(mut detections: Vec<Detection>, from: (u32, u32), to: (u32, u32)) -> Vec<Detection> {
    let (sx, sy) = (to.0 as f32 / from.0 as f32, to.1 as f32 / from.1 as f32);
    for d in &mut detections {
        d.bbox = d.bbox.map(sx, sy, 0.0, 0.0);
    }
    detections
}

/// Staleness curve of predictions at evaluation frames against the reference k frames later.
fn staleness(
    predictions: &BTreeMap<u64, Vec<Detection>>,
    reference: &Reference,
    max_lag: usize,
) -> Vec<f64> {
    (0..=max_lag)
        .map(|k| {
            let mut acc = AccuracyAccumulator::default();
            for (&i, p) in predictions {
                if let Some(r) = reference.frames.get(i as usize + k) {
                    acc.add(&match_frame(p, r, MATCH_IOU));
                }
            }
            acc.accuracy().f1
        })
        .collect()
}

/// Accuracy, mAP and staleness of predictions at evaluation frames.
fn score(
    predictions: &BTreeMap<u64, Vec<Detection>>,
    reference: &Reference,
    max_lag: usize,
) -> (deepoffload_core::metrics::Accuracy, Option<f64>, Vec<f64>) {
    let mut acc = AccuracyAccumulator::default();
    let mut pairs = Vec::new();
    for (&i, p) in predictions {
        let r = &reference.frames[i as usize];
        acc.add(&match_frame(p, r, MATCH_IOU));
        pairs.push((p.as_slice(), r.as_slice()));
    }
    (
        acc.accuracy(),
        mean_average_precision(&pairs, MATCH_IOU),
        staleness(predictions, reference, max_lag),
    )
}

/// Runs the whole profile.
pub fn run_profile(store: &Store, request: &ProfileRequest) -> Result<Profile, LabError> {
    let grid = &request.grid;
    grid.validate().map_err(LabError::Usage)?;
    if request.videos.is_empty() {
        return Err(LabError::Usage(
            "no videos to profile: give --videos FILE...".into(),
        ));
    }
    let mut partial = PartialCells::open(request.partial.as_deref(), &request.fingerprint())?;
    let mut detectors = Detectors {
        store,
        threads: request.threads,
        loaded: HashMap::new(),
    };
    let mut meter = if request.device.is_this_machine() {
        energy::open_meter()
    } else {
        None
    };
    let backend = match &meter {
        Some(m) => format!("{} (compute, this machine) + model (radio)", m.name()),
        None => "model (device power × busy time; Huang et al. 2012 radio)".to_string(),
    };

    // Model latencies on this machine and on the device, at the grid's sizes and the fit sizes.
    let first = open_first_frame(store, &request.videos[0])?;
    let mut keys: Vec<ModelAt> = grid.models.clone();
    keys.extend(grid.device_models.iter().cloned());
    for m in &grid.models {
        for &size in &grid.latency_sizes {
            keys.push(ModelAt {
                model: m.model.clone(),
                size,
            });
        }
    }
    keys.sort();
    keys.dedup();
    let bar = progress(keys.len() as u64, "measuring model latency".into());
    let mut measured: BTreeMap<ModelAt, (f64, f64, Option<f64>)> = BTreeMap::new(); // ms, gflops, joules
    for key in &keys {
        let gflops = detectors.gflops(key)?;
        let det = detectors.get(key)?;
        for _ in 0..2 {
            det.detect(first.view())?;
        }
        let mut times = Vec::with_capacity(grid.latency_runs);
        let before = meter.as_mut().and_then(|m| m.joules());
        for _ in 0..grid.latency_runs {
            let t = Instant::now();
            det.detect(first.view())?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let joules = match (before, meter.as_mut().and_then(|m| m.joules())) {
            (Some(a), Some(b)) if b > a => Some((b - a) / grid.latency_runs as f64),
            _ => None,
        };
        measured.insert(key.clone(), (median(&mut times), gflops, joules));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let speed_factor = device_speed_factor(&request.device, &measured, &mut detectors)?;
    let device_ms = |key: &ModelAt, detectors: &mut Detectors| -> Result<f64, LabError> {
        let (ms, _, _) = measured[key];
        let mut gflops_of = |s: u32| {
            detectors
                .gflops(&ModelAt {
                    model: key.model.clone(),
                    size: s,
                })
                .unwrap_or(1.0)
        };
        Ok(request
            .device
            .model_ms(&key.model, key.size, ms, &mut gflops_of, speed_factor))
    };
    let mut models = Vec::new();
    for key in &keys {
        let (ms, gflops, joules) = measured[key];
        let dms = device_ms(key, &mut detectors)?;
        let device_joules = match joules {
            Some(j) if request.device.is_this_machine() => j,
            _ => dms / 1e3 * request.device.active_w,
        };
        models.push(ModelLatency {
            key: ModelKey {
                model: key.model.clone(),
                input_size: key.size,
            },
            pixels: key.size as u64 * key.size as u64,
            gflops,
            measured_ms: ms,
            device_ms: dms,
            device_joules,
        });
    }
    let fits = pixel_fits(&models);

    let mut videos = Vec::new();
    let mut cells = Vec::new();
    for path in &request.videos {
        let pass = first_pass(store, path, grid, &request.reference, &mut detectors)?;
        let name = pass.profile.name.clone();
        let w0 = pass.profile.width;
        let h0 = pass.profile.height;
        let mut resizer = Resizer::new();
        // Local cells: models on the resized raw evaluation frames.
        if grid.placements.contains(&Placement::Local) {
            for m in grid.models.iter().chain(&grid.device_models) {
                for &scale in &grid.scales {
                    let (w, h) = (scaled_side(w0, scale), scaled_side(h0, scale));
                    let wanted: Vec<Config> = grid
                        .fps
                        .iter()
                        .map(|&fps| local_config(m, w, h, fps))
                        .collect();
                    if wanted.iter().all(|c| partial.has(&name, c)) {
                        cells.extend(wanted.iter().filter_map(|c| partial.get(&name, c)));
                        continue;
                    }
                    let (mut predictions, mut resize_ms) = (BTreeMap::new(), Vec::new());
                    let det = detectors.get(m)?;
                    for (&i, image) in &pass.eval_images {
                        let t = Instant::now();
                        let scaled = resizer.resize(image.view(), w, h)?;
                        resize_ms.push(t.elapsed().as_secs_f64() * 1e3);
                        let out = det.detect(scaled.view())?;
                        predictions.insert(i, to_source(out.detections, (w, h), (w0, h0)));
                    }
                    let (accuracy, map50, stale) =
                        score(&predictions, &pass.reference, grid.max_lag);
                    let inference_dev = device_ms(m, &mut detectors)?;
                    let resize = median(&mut resize_ms);
                    let mut new_cells = Vec::new();
                    for config in wanted {
                        let device_compute = resize * speed_factor + inference_dev;
                        // A device slower than the frame rate analyses fewer frames.
                        let achieved = config.fps.min(pass.profile.fps).min(1e3 / device_compute);
                        let cell = Cell {
                            video: name.clone(),
                            frames_analysed: frames_at(&pass, achieved),
                            config,
                            accuracy,
                            map50,
                            staleness_f1: stale.clone(),
                            frames_skipped: 0,
                            achieved_fps: achieved,
                            bytes_per_frame: 0.0,
                            actual_bps: 0.0,
                            latency_ms: CellLatency {
                                resize,
                                encode: 0.0,
                                decode: 0.0,
                                inference: measured[m].0,
                                device_compute,
                            },
                            energy: cell_energy(
                                &request.device,
                                &backend,
                                device_compute,
                                achieved,
                                0.0,
                                0.0,
                            ),
                        };
                        new_cells.push(cell);
                    }
                    partial.append(&new_cells)?;
                    cells.extend(new_cells);
                }
            }
        }
        if grid.placements.contains(&Placement::Remote) {
            for &scale in &grid.scales {
                let (w, h) = (scaled_side(w0, scale), scaled_side(h0, scale));
                let wanted: Vec<(ModelAt, u64, f64)> = grid
                    .models
                    .iter()
                    .flat_map(|m| {
                        grid.bitrates
                            .iter()
                            .flat_map(move |&b| grid.fps.iter().map(move |&f| (m.clone(), b, f)))
                    })
                    .collect();
                let configs: Vec<Config> = wanted
                    .iter()
                    .map(|(m, b, f)| remote_config(m, w, h, *f, *b))
                    .collect();
                if configs.iter().all(|c| partial.has(&name, c)) {
                    cells.extend(configs.iter().filter_map(|c| partial.get(&name, c)));
                    continue;
                }
                let new_cells = remote_pass(
                    store,
                    path,
                    &pass,
                    grid,
                    (w, h),
                    &mut detectors,
                    &measured,
                    speed_factor,
                    &request.device,
                    &backend,
                )?;
                partial.append(&new_cells)?;
                cells.extend(new_cells);
            }
        }
        videos.push(pass.profile);
    }
    let measured_on = machine_description();
    let mut profile = Profile {
        schema: PROFILE_SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        device: DeviceInfo {
            name: request.device.name.clone(),
            description: request.device.description.clone(),
            emulated: !request.device.is_this_machine(),
            measured_on,
            active_w: request.device.active_w,
            idle_w: request.device.idle_w,
        },
        reference: ModelKey {
            model: request.reference.model.clone(),
            input_size: request.reference.size,
        },
        max_lag: grid.max_lag,
        rate_control: grid.rate_control.to_string(),
        videos,
        cells,
        models,
        fits,
        energy_model: energy::model_info(&backend),
        summary: Vec::new(),
    };
    profile.summary = crate::summary::findings(&profile);
    Ok(profile)
}

/// Frames analysed at `fps` over the covered part of the video.
fn frames_at(pass: &VideoPass, fps: f64) -> u64 {
    let seconds = pass.frames as f64 / pass.profile.fps.max(1e-9);
    (seconds * fps.min(pass.profile.fps)).round() as u64
}

fn local_config(m: &ModelAt, width: u32, height: u32, fps: f64) -> Config {
    Config {
        placement: Placement::Local,
        model: m.model.clone(),
        input_size: m.size,
        width,
        height,
        fps,
        bitrate_bps: 0,
    }
}

fn remote_config(m: &ModelAt, width: u32, height: u32, fps: f64, bitrate: u64) -> Config {
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

fn cell_energy(
    device: &DeviceClass,
    backend: &str,
    device_compute_ms: f64,
    achieved_fps: f64,
    up_bps: f64,
    down_bps: f64,
) -> CellEnergy {
    let busy = (device_compute_ms * achieved_fps / 1e3).min(1.0);
    let compute_w = device.idle_w + (device.active_w - device.idle_w).max(0.0) * busy;
    let mut radio_w = BTreeMap::new();
    let mut joules_per_frame = BTreeMap::new();
    for (radio, _) in energy::RADIOS {
        let w = if up_bps > 0.0 {
            energy::radio_power_w(radio, up_bps / 1e6, down_bps / 1e6).expect("known radio")
        } else {
            0.0
        };
        radio_w.insert(radio.to_string(), w);
        joules_per_frame.insert(
            radio.to_string(),
            if achieved_fps > 0.0 {
                (compute_w + w) / achieved_fps
            } else {
                0.0
            },
        );
    }
    CellEnergy {
        backend: backend.to_string(),
        compute_w,
        radio_w,
        joules_per_frame,
    }
}

/// How many times slower than this machine the device is: declared, or derived from its
/// first declared model latency, else 1.
fn device_speed_factor(
    device: &DeviceClass,
    measured: &BTreeMap<ModelAt, (f64, f64, Option<f64>)>,
    detectors: &mut Detectors,
) -> Result<f64, LabError> {
    if let Some(f) = device.speed_factor {
        return Ok(f);
    }
    for (model, declared) in &device.models {
        let key = ModelAt {
            model: model.clone(),
            size: declared.at_size,
        };
        let ms = match measured.get(&key) {
            Some(m) => m.0,
            None => {
                // Not measured at the declared size: scale the nearest measurement by FLOPs.
                let Some((k, m)) = measured.iter().find(|(k, _)| &k.model == model) else {
                    continue;
                };
                let (a, b) = (detectors.gflops(&key)?, m.1);
                let _ = k;
                m.0 * a / b
            }
        };
        return Ok(declared.latency_ms / ms);
    }
    Ok(1.0)
}

fn open_first_frame(store: &Store, path: &Path) -> Result<RgbBuffer, LabError> {
    let mut source = deepoffload_video::open(path, store, &OpenOptions::default())?;
    source
        .next_frame()?
        .map(|f| f.image)
        .ok_or_else(|| LabError::Usage(format!("{}: the video has no frames", path.display())))
}

/// The CPU model and core count of this machine, for the conditions of every measurement.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// Decoding pass: timestamps, evaluation frames (kept by every grid frame rate), the reference.
fn first_pass(
    store: &Store,
    path: &Path,
    grid: &Grid,
    reference_model: &ModelAt,
    detectors: &mut Detectors,
) -> Result<VideoPass, LabError> {
    let name = video_name(path);
    let digest = reference::video_digest(path)?;
    let mut source = deepoffload_video::open(path, store, &OpenOptions::default())?;
    let info = source.info().clone();
    let limit = grid
        .max_seconds
        .map(|s| (s * info.fps).ceil() as usize)
        .unwrap_or(usize::MAX);
    let total = info
        .frames
        .map(|f| f as usize)
        .unwrap_or(usize::MAX)
        .min(limit.saturating_add(grid.max_lag));
    let cache = reference::cache_path(
        &store.config().cache,
        &digest,
        &reference_model.model,
        reference_model.size,
    );
    let cached = info
        .frames
        .and_then(|f| reference::load_cached(&cache, &digest, total.min(f as usize)));
    let bar = progress(
        if total == usize::MAX { 0 } else { total as u64 },
        format!(
            "{name}: reference {}@{}",
            reference_model.model, reference_model.size
        ),
    );
    let mut samplers: Vec<Sampler> = grid.fps.iter().map(|&f| Sampler::new(f)).collect();
    let (mut frames, mut eval_images, mut eval_frames) = (Vec::new(), BTreeMap::new(), Vec::new());
    let mut next_eval: Option<Duration> = None;
    let mut count = 0usize;
    while count < total {
        let Some(frame) = source.next_frame()? else {
            break;
        };
        let i = count;
        count += 1;
        // Every sampler must see every frame to keep its state right.
        let kept_by_all = samplers
            .iter_mut()
            .fold(true, |all, s| s.keep(frame.pts) & all);
        let first = *next_eval.get_or_insert(frame.pts);
        if kept_by_all && i < limit && frame.pts + Duration::from_micros(1) >= first {
            eval_frames.push(i as u64);
            next_eval = Some(frame.pts + Duration::from_secs_f64(grid.eval_every_s));
            eval_images.insert(i as u64, frame.image.clone());
        }
        if cached.is_none() {
            let det = detectors.get(reference_model)?;
            frames.push(det.detect(frame.image.view())?.detections);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let reference = match cached {
        Some(mut r) => {
            r.frames.truncate(count);
            r
        }
        None => {
            let r = Reference {
                video_sha256: digest.clone(),
                model: reference_model.model.clone(),
                input_size: reference_model.size,
                frames,
            };
            if count == total || info.frames.is_some_and(|f| f as usize == count) {
                reference::store(&cache, &r)?;
            }
            r
        }
    };
    if eval_frames.is_empty() {
        return Err(LabError::Usage(format!(
            "{name}: no frame is analysed under every grid frame rate; check the grid's fps"
        )));
    }
    let reference_staleness_f1 = {
        let all: BTreeMap<u64, Vec<Detection>> = eval_frames
            .iter()
            .map(|&i| (i, reference.frames[i as usize].clone()))
            .collect();
        staleness(&all, &reference, grid.max_lag)
    };
    let covered = count.min(limit);
    let reference_objects = eval_frames
        .iter()
        .map(|&i| reference.frames[i as usize].len() as u64)
        .sum();
    Ok(VideoPass {
        profile: VideoProfile {
            name,
            path: path.display().to_string(),
            width: info.width,
            height: info.height,
            fps: info.fps,
            frames: covered as u64,
            eval_frames,
            reference_objects,
            reference_staleness_f1,
        },
        reference,
        eval_images,
        frames: covered,
    })
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

/// One pass over a video at one resolution, feeding every (bit rate, frame rate) encoder.
#[allow(clippy::too_many_arguments)]
fn remote_pass(
    store: &Store,
    path: &Path,
    pass: &VideoPass,
    grid: &Grid,
    (w, h): (u32, u32),
    detectors: &mut Detectors,
    measured: &BTreeMap<ModelAt, (f64, f64, Option<f64>)>,
    speed_factor: f64,
    device: &DeviceClass,
    backend: &str,
) -> Result<Vec<Cell>, LabError> {
    let name = &pass.profile.name;
    let mut runs = Vec::new();
    for &bitrate in &grid.bitrates {
        for &fps in &grid.fps {
            runs.push(EncoderRun {
                bitrate,
                fps,
                sampler: Sampler::new(fps),
                encoder: H264Encoder::new(EncoderSettings {
                    bitrate_bps: bitrate as u32,
                    max_fps: fps.min(pass.profile.fps) as f32,
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
            });
        }
    }
    let eval: HashSet<u64> = pass.profile.eval_frames.iter().copied().collect();
    let mut source = deepoffload_video::open(path, store, &OpenOptions::default())?;
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
            if !run.sampler.keep(frame.pts) {
                continue;
            }
            run.analysed += 1;
            let out = run.encoder.encode(scaled.view(), frame.pts)?;
            run.encode_ms.push(out.encode_time.as_secs_f64() * 1e3);
            if out.kind == FrameKind::Skipped {
                run.skipped += 1;
            } else {
                run.bytes += out.data.len() as u64;
                let t = Instant::now();
                let decoded = run.decoder.decode(&out.data)?;
                run.decode_ms.push(t.elapsed().as_secs_f64() * 1e3);
                if decoded.is_some() {
                    run.held = decoded;
                }
            }
        }
        if eval.contains(&(i as u64)) {
            for m in &grid.models {
                let det = detectors.get(m)?;
                for run in &mut runs {
                    // The server's latest picture (a skipped frame leaves the previous one).
                    let detections = match &run.held {
                        Some(image) => to_source(
                            det.detect(image.view())?.detections,
                            (w, h),
                            (pass.profile.width, pass.profile.height),
                        ),
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
    let mut cells = Vec::new();
    for mut run in runs {
        let seconds = run.analysed as f64 / run.fps.min(pass.profile.fps);
        let sent = run.analysed - run.skipped;
        let actual_bps = if seconds > 0.0 {
            run.bytes as f64 * 8.0 / seconds
        } else {
            0.0
        };
        let achieved = run.fps.min(pass.profile.fps)
            * if run.analysed > 0 {
                sent as f64 / run.analysed as f64
            } else {
                0.0
            };
        let encode = if run.encode_ms.is_empty() {
            0.0
        } else {
            median(&mut run.encode_ms)
        };
        let decode = if run.decode_ms.is_empty() {
            0.0
        } else {
            median(&mut run.decode_ms)
        };
        for m in &grid.models {
            let predictions = run.predictions.remove(m).unwrap_or_default();
            let mean_detections = predictions.values().map(Vec::len).sum::<usize>() as f64
                / predictions.len().max(1) as f64;
            let (accuracy, map50, stale) = score(&predictions, &pass.reference, grid.max_lag);
            let device_compute = (resize + encode) * speed_factor;
            let down_bps =
                achieved * (RESULT_BASE_BYTES + RESULT_BYTES_PER_DETECTION * mean_detections) * 8.0;
            cells.push(Cell {
                video: name.clone(),
                config: remote_config(m, w, h, run.fps, run.bitrate),
                accuracy,
                map50,
                staleness_f1: stale,
                frames_analysed: run.analysed,
                frames_skipped: run.skipped,
                achieved_fps: achieved,
                bytes_per_frame: if sent > 0 {
                    run.bytes as f64 / sent as f64
                } else {
                    0.0
                },
                actual_bps,
                latency_ms: CellLatency {
                    resize,
                    encode,
                    decode,
                    inference: measured[m].0,
                    device_compute,
                },
                energy: cell_energy(
                    device,
                    backend,
                    device_compute,
                    achieved,
                    actual_bps,
                    down_bps,
                ),
            });
        }
    }
    Ok(cells)
}

/// Device latency and energy of each model against pixel count: quadratic fits with R².
fn pixel_fits(models: &[ModelLatency]) -> Vec<PixelFit> {
    let mut fits = Vec::new();
    let mut names: Vec<&str> = models.iter().map(|m| m.key.model.as_str()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let of_model: Vec<&ModelLatency> = models.iter().filter(|m| m.key.model == name).collect();
        for (quantity, value) in [
            ("device latency_ms", 0),
            ("device energy_joules", 1),
            ("measured latency_ms", 2),
        ] {
            let points: Vec<(u64, f64)> = of_model
                .iter()
                .map(|m| {
                    (
                        m.pixels,
                        [m.device_ms, m.device_joules, m.measured_ms][value],
                    )
                })
                .collect();
            let xy: Vec<(f64, f64)> = points.iter().map(|&(p, v)| (p as f64, v)).collect();
            let (Some((c, r2)), Some((_, linear_r2))) =
                (fit::polyfit(&xy, 2), fit::polyfit(&xy, 1))
            else {
                continue;
            };
            fits.push(PixelFit {
                quantity: format!("{quantity} {name}"),
                coefficients: [c[0], c[1], c[2]],
                r2,
                linear_r2,
                points,
            });
        }
    }
    fits
}

/// Finished cells, appended as they complete and read back after a crash.
/// The key of a partial file's first line, which holds the request's fingerprint.
const PARTIAL_HEADER_KEY: &str = "deepoffload_partial_of";

struct PartialCells {
    file: Option<std::fs::File>,
    done: HashMap<String, Cell>,
}

fn cell_key(video: &str, c: &Config) -> String {
    format!(
        "{video}|{}|{}|{}|{}x{}|{}|{}",
        c.placement, c.model, c.input_size, c.width, c.height, c.fps, c.bitrate_bps
    )
}

impl PartialCells {
    /// Opens (or starts) the partial file at `path`. Its first line records the request's
    /// fingerprint; a file written for another setup is refused rather than silently mixed in.
    fn open(path: Option<&Path>, fingerprint: &str) -> Result<Self, LabError> {
        let Some(path) = path else {
            return Ok(Self {
                file: None,
                done: HashMap::new(),
            });
        };
        let mut done = HashMap::new();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = text.lines();
        let header = lines.next();
        if let Some(header) = header {
            let theirs = serde_json::from_str::<serde_json::Value>(header)
                .ok()
                .and_then(|v| v.get(PARTIAL_HEADER_KEY).map(|f| f.to_string()));
            if theirs.as_deref() != Some(fingerprint) {
                return Err(LabError::Usage(format!(
                    "{} holds cells from a different profile setup ({}; this run: {fingerprint}); \
                     delete it to start afresh, or pass another --partial path",
                    path.display(),
                    theirs.unwrap_or_else(|| "no header".into()),
                )));
            }
            for line in lines {
                // A line cut by a crash is simply not a finished cell.
                if let Ok(cell) = serde_json::from_str::<Cell>(line) {
                    done.insert(cell_key(&cell.video, &cell.config), cell);
                }
            }
            if !done.is_empty() {
                tracing::info!(
                    "resuming: {} finished cells in {}",
                    done.len(),
                    path.display()
                );
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| LabError::Io(format!("{}: {e}", path.display())))?;
        if header.is_none() {
            writeln!(file, "{{\"{PARTIAL_HEADER_KEY}\":{fingerprint}}}")
                .map_err(|e| LabError::Io(format!("{}: {e}", path.display())))?;
        }
        Ok(Self {
            file: Some(file),
            done,
        })
    }

    fn has(&self, video: &str, c: &Config) -> bool {
        self.done.contains_key(&cell_key(video, c))
    }

    fn get(&self, video: &str, c: &Config) -> Option<Cell> {
        self.done.get(&cell_key(video, c)).cloned()
    }

    fn append(&mut self, cells: &[Cell]) -> Result<(), LabError> {
        if let Some(file) = &mut self.file {
            let mut text = String::new();
            for c in cells {
                text.push_str(&serde_json::to_string(c).expect("serialisable"));
                text.push('\n');
            }
            file.write_all(text.as_bytes())
                .and_then(|_| file.flush())
                .map_err(|e| LabError::Io(e.to_string()))?;
        }
        Ok(())
    }
}
