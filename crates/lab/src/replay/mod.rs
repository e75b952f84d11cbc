//! Trace-driven replay of decision policies: a discrete-event simulation calibrated on the
//! profile (device compute, bytes per frame, server time, accuracy against staleness), with the
//! network carried by the link emulator's own timing model (`deepoffload_net::link::Direction`),
//! the code the real relay runs — so the network part is not a second model of the link — and
//! the frames carried by the device pipeline itself (`deepoffload_pipeline`), the code the real
//! client runs — so the per-frame rules are not a second model of the client.
//!
//! - `world`: the simulated camera, device, server and link, driving the pipeline;
//! - `policies`: the baselines beyond the pipeline's fixed and adaptive policies;
//! - `oracle`: the best configuration of each window, knowing the future trace;
//! - `scoring`: what each window delivered, and the report of a run.
//!
//! The pipeline is stop-and-wait with a live camera, like the study: when a frame's result is
//! back, the newest captured frame is analysed next. Accuracy is sampled along the timeline: at
//! each instant the result on screen is scored by the candidate's staleness curve at its age.

mod oracle;
mod policies;
mod scoring;
mod world;

use deepoffload_core::Placement;
use deepoffload_decide::{
    Controller, ControllerSettings, DecisionLog, Hedge, NetState, NetworkEstimator, Optimiser,
    Requirements,
};
use deepoffload_net::link::Trace;
use deepoffload_pipeline::{Adaptive, Fixed, Policy};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a result coming back.
pub(crate) const RESULT_BYTES: usize = 300;
/// Protocol framing per frame.
pub(crate) const FRAME_OVERHEAD_BYTES: f64 = 60.0;

/// How a replay runs.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySettings {
    /// Decision and accounting window, seconds.
    pub window_s: f64,
    /// Round trip added by propagation (half each way), ms.
    pub rtt_ms: f64,
    /// Replay this many seconds (default: one period of the trace).
    pub duration_s: Option<f64>,
    /// A remote result later than this after sending is abandoned and the frame runs locally, ms.
    pub deadline_ms: f64,
    /// Hedge remote frames: the device runs its quickest detector on each one while it is in
    /// flight, and a remote result that would break the latency bound is not waited for — the
    /// stand-in's result is shown instead, on time (as `run` does under auto). Under
    /// [`Hedge::WhenUncertain`] adaptive hedges as its controller says, the oracle chooses per
    /// window, and the fixed policies, which have no such judgement, hedge every remote frame.
    pub hedge: Hedge,
    /// Ping period while no frames go remote (adaptive and bandwidth-only), seconds.
    pub ping_every_s: f64,
    /// Server time per frame beyond decode and inference, ms: the edge server waits up to
    /// `--max-wait` (2 ms) to batch frames across sessions.
    pub server_overhead_ms: f64,
    pub controller: ControllerSettings,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            window_s: 1.0,
            rtt_ms: 50.0,
            duration_s: None,
            deadline_ms: 1000.0,
            hedge: Hedge::default(),
            ping_every_s: 1.0,
            server_overhead_ms: 2.0,
            controller: ControllerSettings::default(),
        }
    }
}

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Ours: the online controller.
    Adaptive,
    /// Best fixed local configuration.
    LocalOnly,
    /// Best fixed remote configuration (chosen in hindsight over the whole trace).
    RemoteOnly,
    /// Decide once at the start (from the first window's measurement) and never again.
    Static,
    /// The remote-only configuration with the highest bit rate that fits the estimate (AWStream's knob).
    BandwidthOnly,
    /// The best configuration for each window, knowing the future trace.
    Oracle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::Adaptive,
        PolicyKind::LocalOnly,
        PolicyKind::RemoteOnly,
        PolicyKind::Static,
        PolicyKind::BandwidthOnly,
        PolicyKind::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Adaptive => "adaptive",
            PolicyKind::LocalOnly => "local-only",
            PolicyKind::RemoteOnly => "remote-only",
            PolicyKind::Static => "static",
            PolicyKind::BandwidthOnly => "bandwidth-only",
            PolicyKind::Oracle => "oracle",
        }
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PolicyKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown policy `{s}`; choose from all, {}",
                    PolicyKind::ALL.map(|p| p.name()).join(", ")
                )
            })
    }
}

/// One analysed frame of a replay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameOutcome {
    /// Candidate that produced the result (the local fallback when it fell back).
    pub candidate: usize,
    pub capture_s: f64,
    pub start_s: f64,
    pub done_s: f64,
    pub device_busy_s: f64,
    pub bytes_up: f64,
    pub bytes_down: f64,
    pub remote: bool,
    pub fallback: bool,
}

/// What one window delivered.
#[derive(Debug, Clone, Serialize)]
pub struct WindowStats {
    pub start_s: f64,
    /// What the trace could carry in this window (the truth the policies do not see).
    pub capacity_bps: f64,
    /// The configuration of the window's first frame.
    pub config: String,
    pub results: usize,
    pub fps: f64,
    pub accuracy: f64,
    /// Mean latency of the results delivered; with none, how late the frame in flight
    /// already is at the window's end.
    pub latency_ms: Option<f64>,
    /// `w_accuracy · F1 + w_fps · fps / fps_max`, or 0 when the window broke the latency
    /// bound: results that come too late are of no use to the app.
    pub utility: f64,
    /// The same without the deadline.
    pub raw_utility: f64,
    /// Mean latency (as above) over the bound.
    pub latency_violation: bool,
    /// Any requirement missed (latency, accuracy, fps, power, data).
    pub violation: bool,
    /// How badly, weighted as the optimiser weighs predictions (hard misses first).
    pub violation_score: f64,
    pub energy_j: f64,
    pub bytes: f64,
    pub remote_frames: usize,
    pub fallbacks: usize,
}

/// One policy on one trace.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub trace: String,
    pub duration_s: f64,
    /// Mean of the windows' utilities (0 for a window that broke the latency bound).
    pub utility: f64,
    /// Mean of the windows' utilities regardless of latency.
    pub raw_utility: f64,
    pub accuracy: f64,
    pub fps: f64,
    pub latency_mean_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    /// Share of windows whose latency broke the bound.
    pub latency_violation_share: f64,
    /// Share of windows missing any requirement.
    pub violation_share: f64,
    pub energy_j: f64,
    pub joules_per_frame: f64,
    pub data_mb: f64,
    pub remote_share: f64,
    pub fallbacks: usize,
    /// Configuration changes between consecutive frames.
    pub switches: usize,
    /// The fixed configuration (fixed policies) or the most used one.
    pub main_config: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowStats>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionLog>,
}

/// Padding sent up by a probe ping, for the data and energy accounts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeSent {
    pub at: f64,
    pub bytes: f64,
}

fn dur(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

use policies::BandwidthOnly;
use scoring::better_than;
use world::World;

/// The replay of every requested policy on one trace.
pub struct Replay<'a> {
    /// The caller's, hedged when the settings hedge (the stand-in's power is in every remote
    /// prediction).
    optimiser: Optimiser,
    requirements: &'a Requirements,
    settings: &'a ReplaySettings,
    trace: Arc<Trace>,
    fallback: Vec<Option<usize>>,
    duration_s: f64,
}

impl<'a> Replay<'a> {
    pub fn new(
        optimiser: &'a Optimiser,
        requirements: &'a Requirements,
        settings: &'a ReplaySettings,
        trace: Arc<Trace>,
    ) -> Result<Self, String> {
        if optimiser.list().is_empty() {
            return Err("the profile has no configurations".into());
        }
        let list = optimiser.list();
        let fallback = list
            .iter()
            .map(|c| {
                list.iter()
                    .enumerate()
                    .filter(|(_, l)| {
                        l.key.placement == Placement::Local
                            && (l.key.scale - c.key.scale).abs() < 1e-6
                    })
                    .min_by(|a, b| a.1.device_ms.total_cmp(&b.1.device_ms))
                    .map(|(i, _)| i)
            })
            .collect();
        let duration_s = settings
            .duration_s
            .unwrap_or(trace.period_ms as f64 / 1e3)
            .max(settings.window_s);
        let optimiser = if settings.hedge != Hedge::Off {
            optimiser.clone().hedged()
        } else {
            optimiser.clone()
        };
        Ok(Self {
            optimiser,
            requirements,
            settings,
            trace,
            fallback,
            duration_s,
        })
    }

    fn windows(&self) -> usize {
        (self.duration_s / self.settings.window_s).floor().max(1.0) as usize
    }

    /// A world with `policy` in it, at the start of the trace.
    fn world<P: Policy>(&self, policy: P) -> World<'_, P> {
        World::new(
            &self.optimiser,
            self.settings,
            self.trace.clone(),
            world::table(&self.optimiser, &self.fallback),
            (self.settings.hedge != Hedge::Off).then_some(self.requirements.max_latency_ms / 1e3),
            policy,
        )
    }

    fn capacity_bps(&self, w: usize) -> f64 {
        let w0 = dur(w as f64 * self.settings.window_s);
        let w1 = dur((w + 1) as f64 * self.settings.window_s);
        (self.trace.capacity_bytes(w1) - self.trace.capacity_bytes(w0)) as f64 * 8.0
            / self.settings.window_s
    }

    /// Runs `policy` over the whole replay; returns the shown frames, the probes and the
    /// policy as it ended.
    fn drive<P: Policy>(&self, policy: P) -> (Vec<FrameOutcome>, Vec<ProbeSent>, P) {
        let mut world = self.world(policy);
        let end = self.windows() as f64 * self.settings.window_s;
        let (mut frames, mut probes) = (Vec::new(), Vec::new());
        world.run_until(end, &mut frames, &mut probes);
        (frames, probes, world.pipeline.into_policy())
    }

    /// Runs one policy.
    pub fn run(&self, kind: PolicyKind) -> PolicyReport {
        let ((frames, probes), decisions, fixed) = match kind {
            PolicyKind::Oracle => ((self.oracle(), Vec::new()), Vec::new(), None),
            PolicyKind::LocalOnly | PolicyKind::RemoteOnly => {
                let placement = if kind == PolicyKind::LocalOnly {
                    Placement::Local
                } else {
                    Placement::Remote
                };
                let best = self.best_fixed(placement);
                (self.drive_fixed(best), Vec::new(), Some(best))
            }
            PolicyKind::Static => {
                // The decision a start-up measurement allows: the first window's capacity.
                let net = NetState {
                    uplink_bps: self.capacity_bps(0),
                    rtt_ms: self.settings.rtt_ms,
                };
                let index = self
                    .optimiser
                    .decide(&net, self.requirements, |_| true)
                    .expect("candidates exist")
                    .chosen;
                (self.drive_fixed(index), Vec::new(), Some(index))
            }
            PolicyKind::BandwidthOnly => {
                let base = &self.optimiser.list()[self.best_fixed(Placement::Remote)].key;
                let mut ladder: Vec<(u64, usize)> = self
                    .optimiser
                    .list()
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        let k = &c.key;
                        k.placement == Placement::Remote
                            && k.model == base.model
                            && k.input_size == base.input_size
                            && (k.scale - base.scale).abs() < 1e-6
                            && k.fps == base.fps
                    })
                    .map(|(i, c)| (c.key.bitrate_bps, i))
                    .collect();
                ladder.sort();
                let policy = BandwidthOnly {
                    estimator: NetworkEstimator::new(self.settings.controller.estimator.clone()),
                    current: ladder[0].1,
                    ladder,
                    next_decision: 0.0,
                    window_s: self.settings.window_s,
                    safety: self.requirements.bitrate_safety,
                };
                let (frames, probes, _) = self.drive(policy);
                ((frames, probes), Vec::new(), None)
            }
            PolicyKind::Adaptive => {
                let policy = Adaptive::new(Controller::new(
                    self.optimiser.clone(),
                    self.requirements.clone(),
                    ControllerSettings {
                        hedge: self.settings.hedge,
                        ..self.settings.controller.clone()
                    },
                ));
                let (frames, probes, policy) = self.drive(policy);
                ((frames, probes), policy.decisions, None)
            }
        };
        self.report(kind.name(), &frames, &probes, decisions, fixed)
    }

    /// Replays one fixed configuration (index into the optimiser's candidates): what the
    /// pipeline would do pinned to it, e.g. to compare with a real run of the same setting.
    pub fn run_fixed(&self, index: usize) -> PolicyReport {
        let (frames, probes) = self.drive_fixed(index);
        self.report("fixed", &frames, &probes, Vec::new(), Some(index))
    }

    /// Replays one fixed configuration: its frames and probes.
    fn drive_fixed(&self, index: usize) -> (Vec<FrameOutcome>, Vec<ProbeSent>) {
        let (frames, probes, _) = self.drive(Fixed(index));
        (frames, probes)
    }

    /// The fixed configuration of a placement with the best mean window utility on this trace
    /// (fewest violating windows first): the strongest fixed baseline, chosen in hindsight.
    fn best_fixed(&self, placement: Placement) -> usize {
        let mut best: Option<(usize, (f64, f64))> = None;
        for (index, c) in self.optimiser.list().iter().enumerate() {
            if c.key.placement != placement {
                continue;
            }
            let (frames, probes) = self.drive_fixed(index);
            let windows = self.all_windows(&frames, &probes);
            let n = windows.len() as f64;
            let score = (
                windows.iter().map(|w| w.violation_score).sum::<f64>() / n,
                windows.iter().map(|w| w.utility).sum::<f64>() / n,
            );
            if best.is_none_or(|(_, b)| better_than(score, b)) {
                best = Some((index, score));
            }
        }
        best.map(|(i, _)| i).unwrap_or(0)
    }
}
