//! The three policies the demo compares — adaptive, local-only, remote-only — run live one
//! after the other against the edge server through the scripted link, with a progress line.
//! It only runs and records; it must never score accuracy (`evaluate` does that afterwards)
//! nor write files.

use super::evaluate::expected_f1;
use super::script::{link, phase_at, Phase};
use super::{DemoOptions, LOCAL_MODEL, ONE_WAY_MS, SERVER_MODEL};
use crate::live::{device_detector, Testbed};
use anyhow::{Context, Result};
use deepoffload_client::annotate::Annotator;
use deepoffload_client::{AutoOptions, DisplayRecord, FrameRecord, Pace, RunOptions};
use deepoffload_core::profile::Profile;
use deepoffload_core::Placement;
use deepoffload_decide::{
    Candidate, CandidateKey, Candidates, Controller, ControllerSettings, DecisionLog, Mode,
    NetState, Optimiser, Requirements,
};
use deepoffload_net::link::Trace;
use deepoffload_video::VideoInfo;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A policy's run: its records, its displayed frames, its decisions and how long it ran.
pub(super) struct PolicyRun {
    pub(super) name: &'static str,
    pub(super) records: Vec<FrameRecord>,
    /// Every displayed frame (tracking on), in display order.
    pub(super) displayed: Vec<DisplayRecord>,
    pub(super) decisions: Vec<DecisionLog>,
    pub(super) wall_s: f64,
}

impl PolicyRun {
    /// (time shown, record) in the order the results reached the screen.
    pub(super) fn shown(&self) -> Vec<(f64, &FrameRecord)> {
        let mut v: Vec<(f64, &FrameRecord)> = self
            .records
            .iter()
            .map(|r| (r.capture_s + r.latency.total_ms / 1e3, r))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

/// What was on screen at `t` seconds, from [`PolicyRun::shown`].
pub(super) fn on_screen<'a>(shown: &[(f64, &'a FrameRecord)], t: f64) -> Option<&'a FrameRecord> {
    let i = shown.partition_point(|(at, _)| *at <= t);
    (i > 0).then(|| shown[i - 1].1)
}

/// Where and how a frame ran: "remote 384x288 yolov4-tiny 150k".
pub(super) fn ran(r: &FrameRecord) -> String {
    let mut s = format!(
        "{} {}x{} {}",
        r.placement, r.config.width, r.config.height, r.config.model
    );
    if r.placement == Placement::Remote {
        s.push_str(&format!(" {}k", r.config.bitrate_bps / 1000));
    }
    s
}

/// What was on screen at source time `t`: the displayed frame at or before it.
pub(super) fn displayed_at(displayed: &[DisplayRecord], t: f64) -> Option<&DisplayRecord> {
    let i = displayed.partition_point(|d| d.pts_s <= t + 1e-6);
    (i > 0).then(|| &displayed[i - 1])
}

/// What every policy runs through: the video, its size and the scripted network.
pub(super) struct Scene<'a> {
    /// Where the adaptive run's annotated video goes.
    pub(super) annotate: &'a std::path::Path,
    pub(super) options: &'a DemoOptions,
    pub(super) info: &'a VideoInfo,
    pub(super) trace: &'a Trace,
    pub(super) phases: &'a [Phase],
    pub(super) total_s: f64,
}

/// The decision engine over the profile, and the fixed configurations of the two baselines.
pub(super) struct Policies {
    optimiser: Optimiser,
    pub(super) requirements: Requirements,
    /// Local-only's configuration: the best local one on good WiFi.
    pub(super) local_key: CandidateKey,
    /// Remote-only's (and the adaptive run's first): the best remote one on good WiFi.
    pub(super) remote_key: CandidateKey,
}

impl Policies {
    /// The optimiser over `profile` and each baseline's best configuration on good WiFi.
    pub(super) fn new(profile: &Profile) -> Result<Self> {
        let optimiser = Optimiser::new(
            Candidates::from_profile(profile, deepoffload_core::Tracking::On)
                .map_err(anyhow::Error::msg)?,
            Mode::StopAndWait,
        );
        let requirements = Requirements {
            radio: deepoffload_core::Radio::Wifi,
            ..Requirements::default()
        };
        let local_key = best_on_good_wifi(&optimiser, &requirements, Placement::Local)?;
        let remote_key = best_on_good_wifi(&optimiser, &requirements, Placement::Remote)?;
        Ok(Self {
            optimiser,
            requirements,
            local_key,
            remote_key,
        })
    }

    /// Runs adaptive, local-only and remote-only in turn on one edge server.
    pub(super) async fn run_all(&self, scene: &Scene<'_>) -> Result<Vec<PolicyRun>> {
        let store = &scene.options.store;
        let testbed = Testbed::start(store, SERVER_MODEL.0, SERVER_MODEL.1).await?;
        let mut runs = Vec::new();
        let policies: [(&'static str, Option<&CandidateKey>); 3] = [
            ("adaptive", None),
            ("local-only", Some(&self.local_key)),
            ("remote-only", Some(&self.remote_key)),
        ];
        for (name, key) in policies {
            runs.push(self.run_one(&testbed, scene, name, key).await?);
        }
        testbed.stop().await;
        Ok(runs)
    }

    /// One policy live: a fixed configuration (`key`), or the adaptive client when `None`.
    async fn run_one(
        &self,
        testbed: &Testbed,
        scene: &Scene<'_>,
        name: &'static str,
        key: Option<&CandidateKey>,
    ) -> Result<PolicyRun> {
        let options = scene.options;
        let (local, label) = device_detector(
            &options.store,
            &options.device,
            LOCAL_MODEL.0,
            LOCAL_MODEL.1,
        )?;
        let run_options = self.run_options(scene, key, label);
        let bar = ProgressBar::new((scene.total_s * 1000.0) as u64).with_style(
            ProgressStyle::with_template("{prefix:>11} [{bar:24}] {elapsed_precise} {msg}")
                .expect("template"),
        );
        bar.set_prefix(name);
        let mut records = Vec::new();
        let mut displayed = Vec::new();
        let mut annotator = match key {
            None => Some(Annotator::start(
                scene.annotate,
                scene.info.width,
                scene.info.height,
                if scene.info.fps > 0.0 {
                    scene.info.fps
                } else {
                    25.0
                },
            )?),
            Some(_) => None,
        };
        let mut window: Vec<(f64, f64)> = Vec::new();
        let summary = testbed
            .run_displayed(
                &options.store,
                &options.video,
                local,
                Some(link(scene.trace)),
                &run_options,
                |r: &FrameRecord| {
                    // A frame the encoder skipped was not analysed: it repeats the last result.
                    if r.skipped {
                        return;
                    }
                    window.push((r.capture_s, r.latency.total_ms));
                    window.retain(|w| w.0 > r.capture_s - 2.0);
                    let fps = window.len() as f64 / 2.0_f64.min(r.capture_s.max(0.5));
                    let latency = window.iter().map(|w| w.1).sum::<f64>() / window.len() as f64;
                    bar.set_position((r.capture_s * 1000.0) as u64);
                    let f1 = expected_f1(&self.optimiser, &r.config, scene.info.width)
                        .map_or("-".into(), |f| format!("{f:.2}"));
                    bar.set_message(format!(
                        "{:<10} | {:<40} | {fps:4.1} fps | {latency:4.0} ms | F1 ≈ {f1} (profile)",
                        phase_at(scene.phases, r.capture_s),
                        ran(r),
                    ));
                    records.push(r.clone());
                },
                |d: &DisplayRecord, frame| {
                    if let Some(a) = annotator.as_mut() {
                        a.push(d, frame);
                    }
                    displayed.push(d.clone());
                },
            )
            .await?;
        bar.finish_and_clear();
        if let Some(a) = annotator {
            let frames = tokio::task::block_in_place(|| a.finish())?;
            eprintln!(
                "{name}: {frames} displayed frames in {}",
                scene.annotate.display()
            );
        }
        eprintln!(
            "{name}: {} frames ({} remote, {} local), {:.2} fps",
            summary.frames, summary.remote_frames, summary.local_frames, summary.analysed_fps
        );
        Ok(PolicyRun {
            name,
            records,
            displayed,
            decisions: summary.decisions,
            wall_s: summary.wall_s,
        })
    }

    /// The client's options for a policy: live pace, the script's length, and either the fixed
    /// configuration or the controller starting from remote-only's.
    fn run_options(
        &self,
        scene: &Scene<'_>,
        key: Option<&CandidateKey>,
        device: String,
    ) -> RunOptions {
        let scaled = |scale: f64| {
            (
                deepoffload_lab::grid::scaled_side(scene.info.width, scale),
                deepoffload_lab::grid::scaled_side(scene.info.height, scale),
            )
        };
        let start = key.unwrap_or(&self.remote_key);
        let mut run_options = RunOptions {
            pace: Pace::Live,
            max_duration: Some(Duration::from_secs_f64(scene.total_s)),
            device,
            placement: start.placement,
            resolution: Some(scaled(start.scale)),
            fps: Some(start.fps),
            ..RunOptions::default()
        };
        if start.bitrate_bps > 0 {
            run_options.bitrate_bps = start.bitrate_bps as u32;
        }
        if key.is_none() {
            run_options.auto = Some(AutoOptions {
                controller: Controller::new(
                    self.optimiser.clone(),
                    self.requirements.clone(),
                    ControllerSettings::default(),
                ),
                ping_every: Duration::from_secs(1),
            });
        }
        run_options
    }
}

/// The best configuration of `placement` with the demo's model for it, on good WiFi.
fn best_on_good_wifi(
    optimiser: &Optimiser,
    requirements: &Requirements,
    placement: Placement,
) -> Result<CandidateKey> {
    let (model, size) = match placement {
        Placement::Local => LOCAL_MODEL,
        Placement::Remote => SERVER_MODEL,
    };
    let good = NetState {
        uplink_bps: 20e6,
        rtt_ms: 2.0 * ONE_WAY_MS as f64,
    };
    let allowed = |c: &Candidate| {
        c.key.placement == placement && (c.key.model.as_str(), c.key.input_size) == (model, size)
    };
    let d = optimiser
        .decide(&good, requirements, allowed)
        .with_context(|| {
            format!(
                "the profile has no {placement} configuration of {model}@{size}, the demo's {} model: leave out --profile (the demo measures its own) or profile a grid with it",
                if placement == Placement::Local { "device" } else { "server" }
            )
        })?;
    Ok(optimiser.list()[d.chosen].key.clone())
}
