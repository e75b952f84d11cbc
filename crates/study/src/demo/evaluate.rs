//! The demo's evaluation: accuracy measured, not predicted — once per second the result each
//! policy had on screen is matched against the reference detector on the raw frame — and the
//! figures per policy (frame rate, latency, share remote, data, switches). It only computes;
//! it must never format a table or a report (that is `present`).

use super::policies::{displayed_at, on_screen, PolicyRun};
use super::present::draw_screen;
use super::script::Phase;
use super::{IOU, REFERENCE};
use crate::experiments::mean;
use crate::live::detector;
use anyhow::Result;
use deepoffload_assets::Store;
use deepoffload_client::FrameRecord;
use deepoffload_core::metrics::match_frame;
use deepoffload_core::{quantile, Config, Detection, Placement};
use deepoffload_decide::{Candidate, Optimiser};
use deepoffload_detect::Detector;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;

/// The profile's F1 for the configuration a frame ran with (fresh result, no staleness): what
/// the live line can show before the measured accuracy is computed at the end.
pub(super) fn expected_f1(
    optimiser: &Optimiser,
    config: &Config,
    source_width: u32,
) -> Option<f64> {
    let scale = config.width as f64 / source_width.max(1) as f64;
    let same = |c: &&Candidate| {
        c.key.placement == config.placement
            && c.key.model == config.model
            && c.key.input_size == config.input_size
            && (c.key.scale - scale).abs() < 0.02
    };
    let list = optimiser.list();
    let exact: Vec<f64> = list
        .iter()
        .filter(same)
        .filter(|c| c.key.bitrate_bps == config.bitrate_bps)
        .map(|c| c.f1)
        .collect();
    let values = if exact.is_empty() {
        list.iter().filter(same).map(|c| c.f1).collect()
    } else {
        exact
    };
    mean(values)
}

/// Placement changes between consecutive frames, (remote → local, local → remote): how often
/// the adaptive client moved the work.
pub fn placement_switches(records: &[FrameRecord]) -> (usize, usize) {
    records.windows(2).fold((0, 0), |(rl, lr), w| {
        match (w[0].placement, w[1].placement) {
            (Placement::Remote, Placement::Local) => (rl + 1, lr),
            (Placement::Local, Placement::Remote) => (rl, lr + 1),
            _ => (rl, lr),
        }
    })
}

/// F1 of each policy's on-screen result at each evaluation instant: `scores[policy][k]` (the
/// latest result as it was found) and `displayed[policy][k]` (the boxes on the displayed frame
/// at that instant, tracked).
pub(super) struct Evaluated {
    pub(super) instants: Vec<f64>,
    pub(super) scores: Vec<Vec<f64>>,
    pub(super) displayed: Vec<Vec<f64>>,
}

/// Scores every policy once per second of the script; the adaptive run's screen at those
/// instants is also drawn into `frames_dir`, with its boxes and caption.
pub(super) fn evaluate(
    store: &Store,
    video: &Path,
    runs: &[PolicyRun],
    phases: &[Phase],
    frames_dir: &Path,
    total_s: f64,
) -> Result<Evaluated> {
    let mut reference = detector(store, REFERENCE.0, REFERENCE.1, 2)?;
    let mut source = deepoffload_video::open(video, store, &Default::default())?;
    let shown: Vec<Vec<(f64, &FrameRecord)>> = runs.iter().map(|r| r.shown()).collect();
    let mut instants = Vec::new();
    let mut scores = vec![Vec::new(); runs.len()];
    let mut displayed = vec![Vec::new(); runs.len()];
    let mut next_t = 1.0;
    let mut first_pts = None;
    let bar = ProgressBar::new(total_s as u64).with_style(
        ProgressStyle::with_template("{prefix:>11} [{bar:24}] {pos}/{len} s scored")
            .expect("template"),
    );
    bar.set_prefix("accuracy");
    while let Some(frame) = source.next_frame()? {
        let first = *first_pts.get_or_insert(frame.pts);
        let t = frame.pts.saturating_sub(first).as_secs_f64();
        if t > total_s {
            break;
        }
        if t + 1e-6 < next_t {
            continue;
        }
        next_t += 1.0;
        let truth: Vec<Detection> = reference.detect(frame.image.view())?.detections;
        instants.push(t);
        for (k, shown) in shown.iter().enumerate() {
            let on = on_screen(shown, t);
            let predicted: &[Detection] = on.map_or(&[], |r| r.detections.as_slice());
            scores[k].push(match_frame(predicted, &truth, IOU).f1());
            let seen: Vec<Detection> = displayed_at(&runs[k].displayed, t)
                .map(|d| d.boxes.iter().map(|b| b.detection.clone()).collect())
                .unwrap_or_default();
            displayed[k].push(match_frame(&seen, &truth, IOU).f1());
            if k == 0 {
                draw_screen(&frame.image, predicted, on, t, phases, frames_dir)?;
            }
        }
        bar.set_position(t as u64);
    }
    bar.finish_and_clear();
    Ok(Evaluated {
        instants,
        scores,
        displayed,
    })
}

/// One policy's figures over the whole script (a row of `summary.json` and of the table).
#[derive(Serialize)]
pub(super) struct PolicyRow {
    pub(super) policy: String,
    pub(super) frames: usize,
    pub(super) fps: f64,
    pub(super) remote_share: f64,
    pub(super) latency_p50_ms: f64,
    pub(super) latency_p95_ms: f64,
    pub(super) late_share: f64,
    pub(super) f1: f64,
    /// F1 of the boxes on the displayed frame (tracked) at the same instants.
    pub(super) displayed_f1: f64,
    pub(super) data_mb: f64,
}

/// Each policy's figures, late meaning over `bound_ms`.
pub(super) fn summarise(
    runs: &[PolicyRun],
    evaluated: &Evaluated,
    bound_ms: f64,
) -> Vec<PolicyRow> {
    runs.iter()
        .enumerate()
        .map(|(k, r)| {
            let lat: Vec<f64> = r.records.iter().map(|x| x.latency.total_ms).collect();
            let n = r.records.len().max(1) as f64;
            PolicyRow {
                policy: r.name.into(),
                frames: r.records.len(),
                fps: r.records.len() as f64 / r.wall_s.max(1e-9),
                remote_share: r
                    .records
                    .iter()
                    .filter(|x| x.placement == Placement::Remote)
                    .count() as f64
                    / n,
                latency_p50_ms: quantile(&lat, 0.5).unwrap_or(f64::NAN),
                latency_p95_ms: quantile(&lat, 0.95).unwrap_or(f64::NAN),
                late_share: lat.iter().filter(|&&l| l > bound_ms).count() as f64 / n,
                f1: mean(evaluated.scores[k].iter().copied()).unwrap_or(0.0),
                displayed_f1: mean(evaluated.displayed[k].iter().copied()).unwrap_or(0.0),
                data_mb: r
                    .records
                    .iter()
                    .map(|x| (x.bytes_up + x.bytes_down) as f64)
                    .sum::<f64>()
                    / 1e6,
            }
        })
        .collect()
}
