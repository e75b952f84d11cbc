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
//!
//! This module only orchestrates: it measures nothing itself (`latency`, `first_pass`,
//! `local_pass` and `remote_pass` do) and never reads or writes the partial file but through
//! `checkpoint`.

mod checkpoint;
mod first_pass;
mod latency;
mod local_pass;
mod remote_pass;

use crate::devices::DeviceClass;
use crate::energy;
use crate::grid::{Grid, ModelAt};
use crate::LabError;
use checkpoint::PartialCells;
use deepoffload_assets::Store;
use deepoffload_core::profile::{
    Cell, DeviceInfo, ModelKey, ModelLatency, PixelFit, Profile, VideoProfile, PROFILE_SCHEMA,
};
use deepoffload_core::{Config, Placement};
use deepoffload_video::Resizer;
use first_pass::{first_pass, VideoPass};
use indicatif::{ProgressBar, ProgressStyle};
use latency::{pixel_fits, Detectors, Latencies};
use local_pass::{local_config, local_pass};
use remote_pass::{remote_config, remote_pass};
use std::path::{Path, PathBuf};

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

/// A progress bar in the profiler's one style, so every pass reports alike.
fn progress(len: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{msg:42} [{bar:30}] {pos}/{len} {elapsed}/{eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// The median of `values` (sorted in place), what every timing is summarised by.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the passes of one run share: where assets are, what was asked, the loaded detectors,
/// the model latencies and the energy backend every cell names.
struct Profiler<'a> {
    store: &'a Store,
    request: &'a ProfileRequest,
    detectors: Detectors<'a>,
    latencies: Latencies,
    backend: String,
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
    let mut detectors = Detectors::new(store, request.threads);
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
    let latencies = Latencies::measure(store, request, &mut detectors, &mut meter)?;
    let models = latencies.models(&request.device, &mut detectors);
    let fits = pixel_fits(&models);
    let mut lab = Profiler {
        store,
        request,
        detectors,
        latencies,
        backend,
    };
    let mut videos = Vec::new();
    let mut cells = Vec::new();
    for path in &request.videos {
        let pass = first_pass(store, path, grid, &request.reference, &mut lab.detectors)?;
        if grid.placements.contains(&Placement::Local) {
            cells.extend(lab.local_cells(&pass, &mut partial)?);
        }
        if grid.placements.contains(&Placement::Remote) {
            cells.extend(lab.remote_cells(path, &pass, &mut partial)?);
        }
        tracing::info!(
            "{}: tracked staleness took {:.2} s of tracking",
            pass.profile.name,
            pass.tracking_time.get().as_secs_f64()
        );
        videos.push(pass.profile);
    }
    let speed_factor = lab.latencies.speed_factor;
    let mut profile = assemble(
        request,
        &lab.backend,
        speed_factor,
        videos,
        cells,
        models,
        fits,
    );
    profile.summary = crate::summary::findings(&profile);
    Ok(profile)
}

/// The cells of one pass: from the checkpoint when an earlier run finished them all, else
/// measured by `measure` and recorded there.
fn resume_or_measure(
    partial: &mut PartialCells,
    video: &str,
    configs: &[Config],
    measure: impl FnOnce() -> Result<Vec<Cell>, LabError>,
) -> Result<Vec<Cell>, LabError> {
    if let Some(done) = partial.finished(video, configs) {
        return Ok(done);
    }
    let cells = measure()?;
    partial.record(&cells)?;
    Ok(cells)
}

impl Profiler<'_> {
    /// The local cells of a video: each model (the grid's and the device-only ones) at each
    /// resolution, one pass each.
    fn local_cells(
        &mut self,
        pass: &VideoPass,
        partial: &mut PartialCells,
    ) -> Result<Vec<Cell>, LabError> {
        let grid = &self.request.grid;
        let mut resizer = Resizer::new();
        let mut cells = Vec::new();
        for m in grid.models.iter().chain(&grid.device_models) {
            for &scale in &grid.scales {
                let (w, h) = pass.scaled(scale);
                let configs: Vec<Config> = grid
                    .fps
                    .iter()
                    .map(|&fps| local_config(m, w, h, fps))
                    .collect();
                cells.extend(at_scale(
                    scale,
                    resume_or_measure(partial, &pass.profile.name, &configs, || {
                        local_pass(self, pass, &mut resizer, m, (w, h), &configs)
                    })?,
                ));
            }
        }
        Ok(cells)
    }

    /// The remote cells of a video: one pass per resolution, each giving every model at every
    /// (bit rate, frame rate).
    fn remote_cells(
        &mut self,
        path: &Path,
        pass: &VideoPass,
        partial: &mut PartialCells,
    ) -> Result<Vec<Cell>, LabError> {
        let grid = &self.request.grid;
        let mut cells = Vec::new();
        for &scale in &grid.scales {
            let (w, h) = pass.scaled(scale);
            let configs: Vec<Config> = grid
                .models
                .iter()
                .flat_map(|m| {
                    grid.bitrates.iter().flat_map(move |&b| {
                        grid.fps.iter().map(move |&f| remote_config(m, w, h, f, b))
                    })
                })
                .collect();
            cells.extend(at_scale(
                scale,
                resume_or_measure(partial, &pass.profile.name, &configs, || {
                    remote_pass(self, path, pass, (w, h))
                })?,
            ));
        }
        Ok(cells)
    }
}

/// Cells measured at the grid's `scale` say so (cells resumed from an older checkpoint too).
fn at_scale(scale: f64, mut cells: Vec<Cell>) -> Vec<Cell> {
    for cell in &mut cells {
        cell.scale = Some(scale);
    }
    cells
}

/// The profile of a finished run, its findings still to be written. The device's tracker time
/// is the videos' mean, scaled like the rest of its non-model work (`speed_factor`).
fn assemble(
    request: &ProfileRequest,
    backend: &str,
    speed_factor: f64,
    videos: Vec<VideoProfile>,
    cells: Vec<Cell>,
    models: Vec<ModelLatency>,
    fits: Vec<PixelFit>,
) -> Profile {
    let measured_on = machine_description();
    let timed: Vec<f64> = videos
        .iter()
        .map(|v| v.tracker_ms)
        .filter(|&ms| ms > 0.0)
        .collect();
    let tracker_ms = timed.iter().sum::<f64>() / timed.len().max(1) as f64;
    Profile {
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
            tracker_ms: tracker_ms * speed_factor,
        },
        reference: ModelKey {
            model: request.reference.model.clone(),
            input_size: request.reference.size,
        },
        max_lag: request.grid.max_lag,
        rate_control: request.grid.rate_control.to_string(),
        videos,
        cells,
        models,
        fits,
        energy_model: energy::model_info(backend),
        summary: Vec::new(),
    }
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
