//! The device runtime: analyses a video frame by frame, locally or on an edge server, and
//! reports every frame with its detections and where its time went.
//!
//! Frames come from a [`Capture`] (live or offline pace) and go through the device pipeline
//! (`deepoffload_pipeline`), which owns every per-frame rule — which frame to take, local or
//! remote, in-flight limits, the deadline and the local fallback (no analysed frame is ever
//! lost), the hedged stand-in ([`RunOptions::hedge`]), late results, and what the decision
//! engine learns. This crate is its tokio driver: camera, detectors on blocking threads, the
//! H.264 encoder and the session to the edge. Latency breakdowns need no synchronised clocks:
//! network time is the round trip minus the durations the server reports.

pub mod annotate;
mod capture;
mod configs;
mod display;
mod driver;
mod record;
mod remote;

pub use capture::{Capture, Captured, Pace};
pub use configs::AutoOptions;
pub use deepoffload_pipeline::Mode;
pub use record::{
    DisplayBox, DisplayRecord, DisplaySummary, DisplayedResult, FrameRecord, RunSummary,
};
pub use remote::{Remote, Session};

use configs::{RunPolicy, Table};
use deepoffload_core::{Config, Placement, RgbImageRef, Tracking};
use deepoffload_detect::{DetectError, Detector};
use deepoffload_net::NetError;
use deepoffload_pipeline::{Fixed, Pipeline, Settings};
use deepoffload_video::{RateControl, VideoError, VideoSource};
use driver::Driver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub placement: Placement,
    /// Analysed frame rate (sampled from the source); `None` keeps every frame.
    pub fps: Option<f64>,
    /// Resolution frames are scaled to; `None` keeps the source size.
    pub resolution: Option<(u32, u32)>,
    pub bitrate_bps: u32,
    pub rate_control: RateControl,
    pub keyframe_interval: u32,
    pub mode: Mode,
    pub pace: Pace,
    /// A remote result later than this after sending is abandoned and the frame runs locally.
    pub deadline: Duration,
    /// Hedge remote frames against this latency bound (after capture): the quickest local
    /// detector analyses each remote frame while it is in flight, and a remote result that
    /// has not come by the bound is not waited for — the stand-in's result is shown, on time.
    /// Costs device time on every hedged frame; under auto the controller says which frames
    /// (its `hedge` setting). `None` waits up to `deadline`, then runs the frame locally.
    pub hedge: Option<Duration>,
    pub max_frames: Option<u64>,
    /// Stop after this much source video (a live run's length).
    pub max_duration: Option<Duration>,
    /// Label of the device local figures belong to (`this-machine`, or "NAME (emulated)").
    pub device: String,
    /// Let the decision engine choose placement, resolution, frame rate and bit rate
    /// (`placement`, `fps`, `resolution` and `bitrate_bps` are then only the start).
    pub auto: Option<AutoOptions>,
    /// Whether the device tracks the latest result's boxes onto every displayed frame
    /// (`deepoffload-track`, on the driver task), or shows them where they were found.
    pub track: Tracking,
    /// Displayed frames per second of source time (the camera frames on the grid
    /// `k / display_fps`); `None`: every camera frame (the source's rate).
    pub display_fps: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            placement: Placement::Local,
            fps: None,
            resolution: None,
            bitrate_bps: 1_000_000,
            rate_control: RateControl::Cbr,
            keyframe_interval: 0,
            mode: Mode::StopAndWait,
            pace: Pace::Live,
            deadline: Duration::from_secs(1),
            hedge: None,
            max_frames: None,
            max_duration: None,
            device: "this-machine".into(),
            auto: None,
            track: Tracking::On,
            display_fps: None,
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{0}")]
    Usage(String),
}

/// The detectors the device can run. Fixed placements use the first; under auto the controller
/// picks among them (each a model at an input size: on a slow phone a small input keeps local
/// results on time when the network fails), and a remote frame that misses its deadline falls
/// back to the one with the smallest input, the quickest.
pub struct LocalDetectors(pub Vec<Box<dyn Detector>>);

impl From<Box<dyn Detector>> for LocalDetectors {
    fn from(detector: Box<dyn Detector>) -> Self {
        Self(vec![detector])
    }
}

/// Runs a video through the runtime, handing every frame's record to `sink` in frame order.
pub async fn run(
    source: Box<dyn VideoSource>,
    local: impl Into<LocalDetectors>,
    remote: Option<&Remote>,
    options: &RunOptions,
    sink: impl FnMut(&FrameRecord) + Send,
) -> Result<RunSummary, ClientError> {
    run_displayed(source, local, remote, options, sink, |_, _| {}).await
}

/// [`run`], also handing every displayed frame to `display`: its record and the camera frame
/// (source size) it was shown on. Called on the driver task: keep it quick (hand the frame to
/// another thread to draw or encode it).
pub async fn run_displayed(
    source: Box<dyn VideoSource>,
    local: impl Into<LocalDetectors>,
    remote: Option<&Remote>,
    options: &RunOptions,
    mut sink: impl FnMut(&FrameRecord) + Send,
    mut display: impl FnMut(&DisplayRecord, RgbImageRef<'_>) + Send,
) -> Result<RunSummary, ClientError> {
    if let Some(f) = options.display_fps {
        if !(f.is_finite() && f > 0.0) {
            return Err(ClientError::Usage(format!(
                "display rate {f}: give a positive frame rate (--display-fps 30)"
            )));
        }
    }
    if options.placement == Placement::Remote && remote.is_none() && options.auto.is_none() {
        return Err(ClientError::Usage(
            "remote placement needs a server (--server ADDR)".into(),
        ));
    }
    let info = source.info().clone();
    let (width, height) = options
        .resolution
        .unwrap_or((info.width & !1, info.height & !1));
    if width % 2 != 0 || height % 2 != 0 || width == 0 || height == 0 {
        return Err(ClientError::Usage(format!(
            "resolution {width}x{height}: H.264 needs positive even numbers"
        )));
    }
    let locals: Vec<_> = local
        .into()
        .0
        .into_iter()
        .map(|d| (d.info().clone(), Arc::new(Mutex::new(d))))
        .collect();
    let infos: Vec<_> = locals.iter().map(|(i, _)| i.clone()).collect();
    if infos.is_empty() {
        return Err(ClientError::Usage("no local detector given".into()));
    }
    let fps = options
        .fps
        .map(|f| if info.fps > 0.0 { f.min(info.fps) } else { f });
    let (table, policy) = match &options.auto {
        Some(auto) => (
            Table::candidates(
                &auto.controller,
                &infos,
                (info.width, info.height, info.fps),
            ),
            RunPolicy::auto(auto, &infos, info.fps),
        ),
        None => {
            let config = Config {
                placement: options.placement,
                model: infos[0].model.clone(),
                input_size: infos[0].input_width as u32,
                width,
                height,
                fps: fps.unwrap_or(0.0),
                bitrate_bps: options.bitrate_bps as u64,
            };
            (Table::fixed(config, &infos), RunPolicy::Fixed(Fixed(0)))
        }
    };
    let settings = Settings {
        mode: options.mode,
        deadline_s: options.deadline.as_secs_f64(),
        hedge_bound_s: options.hedge.map(|h| h.as_secs_f64()),
        ping_every_s: options
            .auto
            .as_ref()
            .map_or(1.0, |a| a.ping_every.as_secs_f64()),
    };
    let pipeline = Pipeline::new(settings, table.choices.clone(), policy);
    let mut capture = Capture::start(source, options.pace, options.max_duration);
    let mut driver = Driver::new(pipeline, table, locals, remote, options, info.fps);
    driver.run(&mut capture, &mut sink, &mut display).await?;
    let wall = match (driver.first_capture, driver.records.last()) {
        (Some(first), Some(_)) => (Instant::now() - first).as_secs_f64(),
        _ => 0.0,
    };
    let reconnects = remote.map_or(0, Remote::reconnects);
    let mut summary = RunSummary::from_records(&driver.records, wall, reconnects);
    summary.missed_frames = driver.pipeline.missed();
    summary.display = driver.display.summary();
    if summary.missed_frames > 0 {
        tracing::info!(
            "{} analysis instants passed while the pipeline was busy",
            summary.missed_frames
        );
    }
    if let RunPolicy::Auto(a) = driver.pipeline.into_policy() {
        summary.decisions = a.decisions;
    }
    Ok(summary)
}
