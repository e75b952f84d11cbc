//! Trace-driven replay of decision policies: a discrete-event simulation calibrated on the
//! profile (device compute, bytes per frame, server time, accuracy against staleness), with the
//! network carried by the link emulator's own timing model (`deepoffload_net::link::Direction`),
//! the code the real relay runs — so the network part is not a second model of the link.
//!
//! The pipeline is stop-and-wait with a live camera, like the study: when a frame's result is
//! back, the newest captured frame is analysed next. A remote result later than the deadline
//! is abandoned and the frame runs on the device (as the real client does). Accuracy is sampled
//! along the timeline: at each instant the result on screen is scored by the candidate's
//! staleness curve at its age.

use crate::energy::{LTE_TAIL_S, LTE_TAIL_W, RADIOS};
use deepoffload_core::quantile;
use deepoffload_core::Placement;
use deepoffload_decide::{
    Controller, ControllerSettings, DecisionLog, Hedge, NetState, NetworkEstimator, Optimiser,
    Prediction, Requirements,
};
use deepoffload_net::link::{Direction, DirectionSpec, LossMode, Shaper, Trace, MTU};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a result coming back.
const RESULT_BYTES: usize = 300;
/// Protocol framing per frame.
const FRAME_OVERHEAD_BYTES: f64 = 60.0;
/// Accuracy samples per window.
const ACCURACY_SAMPLES: usize = 20;

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
struct FrameOutcome {
    /// Candidate that produced the result (the local fallback when it fell back).
    candidate: usize,
    capture_s: f64,
    start_s: f64,
    done_s: f64,
    device_busy_s: f64,
    bytes_up: f64,
    bytes_down: f64,
    remote: bool,
    fallback: bool,
    /// Shown from the hedge's stand-in: its latency says nothing of the remote path's.
    stand_in: bool,
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

/// The simulated world: the link and the pipeline's clock.
#[derive(Clone)]
struct Sim<'a> {
    optimiser: &'a Optimiser,
    settings: &'a ReplaySettings,
    up: Direction,
    down: Direction,
    /// When the pipeline can take the next frame.
    t: f64,
    last_capture: f64,
    /// When the previous remote frame's result came back (late, for a hedged frame).
    last_back: f64,
    /// Local candidate a remote candidate falls back to.
    fallback: &'a [Option<usize>],
    /// Latency bound after capture a hedged remote result is awaited until, s.
    bound_s: f64,
}

/// What a policy learns from a frame.
enum Observation {
    Frame {
        at: f64,
        bytes: u64,
        network_ms: f64,
        /// What the server reported (none for a frame abandoned at the deadline).
        server_ms: Option<f64>,
    },
    Rtt {
        at: f64,
        rtt_ms: f64,
    },
    /// A hedged frame's remote result, after the stand-in's was shown (or the deadline, when
    /// it did not come by then).
    Late {
        at: f64,
        bytes: u64,
        network_ms: f64,
        /// Capture to this result.
        latency_ms: f64,
    },
    /// A padded ping: its transfer measures the uplink.
    Probe {
        at: f64,
        bytes: usize,
        rtt_ms: f64,
    },
}

impl Observation {
    /// When the policy learns it.
    fn at(&self) -> f64 {
        match *self {
            Observation::Frame { at, .. }
            | Observation::Late { at, .. }
            | Observation::Rtt { at, .. }
            | Observation::Probe { at, .. } => at,
        }
    }
}

/// Bytes of a bare ping.
const PING_BYTES: f64 = 64.0;

/// Padding sent up by a probe ping, for the data and energy accounts.
#[derive(Debug, Clone, Copy)]
struct ProbeSent {
    at: f64,
    bytes: f64,
}

fn dur(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl<'a> Sim<'a> {
    fn new(
        optimiser: &'a Optimiser,
        settings: &'a ReplaySettings,
        trace: Arc<Trace>,
        fallback: &'a [Option<usize>],
        bound_s: f64,
    ) -> Self {
        let one_way = Duration::from_secs_f64(settings.rtt_ms / 2e3);
        let up = Direction::new(
            DirectionSpec {
                shaper: Shaper::trace(trace),
                delay: one_way,
                queue_bytes: usize::MAX,
                ..DirectionSpec::default()
            },
            1,
        );
        let down = Direction::new(
            DirectionSpec {
                delay: one_way,
                ..DirectionSpec::default()
            },
            2,
        );
        Self {
            optimiser,
            settings,
            up,
            down,
            t: 0.0,
            last_capture: f64::NEG_INFINITY,
            last_back: f64::NEG_INFINITY,
            fallback,
            bound_s,
        }
    }

    /// Sends `bytes` up at `at`; when the last packet arrives.
    fn send_up(&mut self, at: f64, bytes: f64) -> f64 {
        let mut left = bytes.ceil().max(1.0) as usize;
        let mut arrival = at;
        while left > 0 {
            let len = left.min(MTU);
            left -= len;
            let a = self
                .up
                .send(dur(at), len, LossMode::Retransmit)
                .expect("byte streams are never dropped");
            arrival = arrival.max(a.as_secs_f64());
        }
        arrival
    }

    /// A ping carrying `bytes` sent now; its round trip, ms.
    fn ping(&mut self, bytes: f64) -> f64 {
        let t = self.t;
        let there = self.send_up(t, bytes);
        let back = self
            .down
            .send(dur(there), 64, LossMode::Retransmit)
            .expect("byte streams are never dropped")
            .as_secs_f64();
        (back - t) * 1e3
    }

    /// Analyses the next frame with candidate `index`; `hedge`: whether it may get a stand-in.
    fn step(&mut self, index: usize, hedge: bool) -> (FrameOutcome, [Option<Observation>; 2]) {
        let c = &self.optimiser.list()[index];
        // The camera delivers frames at `camera_fps`; analysis instants lie on a grid at the
        // configured rate. An idle pipeline waits for the first camera frame at the next
        // instant; a busy one, past it, takes the newest camera frame.
        let camera = self.optimiser.camera_fps.max(1.0);
        let period = 1.0 / c.max_fps.max(0.1);
        // The 1e-9 keeps 0.7 / 0.1 = 6.999… on instant 7.
        let due = ((self.last_capture / period + 1e-9).floor() + 1.0) * period;
        let due = if self.last_capture.is_finite() {
            due
        } else {
            0.0
        };
        let mut capture = if self.t < due {
            (due * camera - 1e-9).ceil() / camera
        } else {
            (self.t * camera + 1e-9).floor() / camera
        };
        if capture <= self.last_capture + 1e-9 {
            capture = ((self.last_capture * camera + 1e-9).floor() + 1.0) / camera;
        }
        let start = self.t.max(capture);
        self.last_capture = capture;
        let device_s = c.device_ms / 1e3;
        let mut out = FrameOutcome {
            candidate: index,
            capture_s: capture,
            start_s: start,
            done_s: start + device_s,
            device_busy_s: device_s,
            bytes_up: 0.0,
            bytes_down: 0.0,
            remote: false,
            fallback: false,
            stand_in: false,
        };
        let mut observation = None;
        let mut late = None;
        if c.key.placement == Placement::Remote {
            let sent = start + device_s;
            let bytes = c.bytes_per_frame + FRAME_OVERHEAD_BYTES;
            // Sent while an earlier frame's result was still out (a hedged frame gave up on):
            // its transfer may have waited behind that frame's bytes.
            let queued = sent < self.last_back;
            let arrived = self.send_up(sent, bytes);
            let answered = arrived + (c.server_ms + self.settings.server_overhead_ms) / 1e3;
            let back = self
                .down
                .send(dur(answered), RESULT_BYTES, LossMode::Retransmit)
                .expect("byte streams are never dropped")
                .as_secs_f64();
            self.last_back = back;
            out.bytes_up = bytes;
            out.remote = true;
            // The stand-in runs beside the transfer; the device is busy with it either way.
            let stand_in = self.fallback[index]
                .filter(|_| hedge && self.settings.hedge != Hedge::Off)
                .map(|local| {
                    let l = &self.optimiser.list()[local];
                    out.device_busy_s += l.device_ms / 1e3;
                    (local, sent + l.device_ms / 1e3)
                });
            let mut deadline = self.settings.deadline_ms / 1e3;
            if stand_in.is_some() {
                // Past the bound the remote result is of no use; the stand-in's is.
                deadline = deadline.min((capture + self.bound_s - sent).max(0.0));
            }
            if let Some((local, ready)) = stand_in.filter(|_| back - sent > deadline) {
                let given_up = sent + deadline;
                out.candidate = local;
                out.fallback = true;
                out.done_s = ready.max(given_up);
                out.stand_in = true;
                // Queued behind another frame, its transfer did not time the link alone: a
                // latency sample, not a throughput one (as the client does).
                let measured_bytes = if queued { 0 } else { bytes as u64 };
                let listened = self.settings.deadline_ms / 1e3;
                late = Some(if back - sent <= listened {
                    // The result still comes, late: it measures the network all the same, and
                    // how late the remote path is.
                    Observation::Late {
                        at: back,
                        bytes: measured_bytes,
                        network_ms: (back - sent) * 1e3
                            - c.server_ms
                            - self.settings.server_overhead_ms,
                        latency_ms: (back - capture) * 1e3,
                    }
                } else {
                    // Not even by the deadline: the network took at least that long.
                    Observation::Late {
                        at: sent + listened,
                        bytes: measured_bytes,
                        network_ms: self.settings.deadline_ms,
                        latency_ms: (sent + listened - capture) * 1e3,
                    }
                });
            } else if back - sent <= deadline {
                out.done_s = back;
                out.bytes_down = RESULT_BYTES as f64;
                observation = Some(Observation::Frame {
                    at: back,
                    bytes: bytes as u64,
                    network_ms: (back - sent) * 1e3
                        - c.server_ms
                        - self.settings.server_overhead_ms,
                    server_ms: Some(c.server_ms + self.settings.server_overhead_ms),
                });
            } else if let Some(local) = self.fallback[index] {
                // Abandoned at the deadline; the device analyses the frame itself.
                let l = &self.optimiser.list()[local];
                out.candidate = local;
                out.fallback = true;
                out.device_busy_s += l.device_ms / 1e3;
                out.done_s = sent + deadline + l.device_ms / 1e3;
                observation = Some(Observation::Frame {
                    at: sent + deadline,
                    bytes: bytes as u64,
                    network_ms: self.settings.deadline_ms,
                    server_ms: None,
                });
            } else {
                out.done_s = sent + deadline;
            }
            // The pipeline takes the next frame once the device is done with the stand-in too.
            if let Some((_, ready)) = stand_in {
                self.t = out.done_s.max(ready);
                return (out, [observation, late]);
            }
        }
        self.t = out.done_s;
        (out, [observation, late])
    }
}

/// (violation score, utility): less violation first, then more utility — the optimiser's
/// order, applied to what windows measured.
fn better_than(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

/// Decides at each frame.
trait Policy {
    fn choose(&mut self, now: f64) -> usize;
    fn observe(&mut self, _o: &Observation) {}
    /// A frame's result reached the screen.
    fn shown(&mut self, _frame: &FrameOutcome) {}
    fn wants_pings(&self) -> bool {
        false
    }
    /// Whether the next remote frame gets a stand-in (when the settings hedge at all).
    fn hedge(&self) -> bool {
        true
    }
    /// Padding for the ping about to go (0: a bare ping).
    fn probe_bytes(&mut self, _now: f64) -> usize {
        0
    }
    fn decisions(&mut self) -> Vec<DecisionLog> {
        Vec::new()
    }
}

struct Fixed(usize);
impl Policy for Fixed {
    fn choose(&mut self, _now: f64) -> usize {
        self.0
    }
}

struct Adaptive {
    controller: Controller,
    log: Vec<DecisionLog>,
}

fn feed(controller: &mut Controller, o: &Observation) {
    match *o {
        Observation::Frame {
            at,
            bytes,
            network_ms,
            server_ms,
        } => {
            if let Some(ms) = server_ms {
                controller.on_server_time(ms);
            }
            controller.on_frame(at, bytes, network_ms)
        }
        Observation::Late {
            at,
            bytes,
            network_ms,
            latency_ms,
        } => {
            controller.on_frame(at, bytes, network_ms);
            controller.on_latency(at, latency_ms);
        }
        Observation::Rtt { at, rtt_ms } => controller.on_rtt(at, rtt_ms),
        Observation::Probe { at, bytes, rtt_ms } => controller.on_probe(at, bytes, rtt_ms),
    }
}

impl Policy for Adaptive {
    fn shown(&mut self, frame: &FrameOutcome) {
        if frame.stand_in {
            // Its remote result, when it comes, tells how late the remote path was.
            return;
        }
        self.controller
            .on_latency(frame.done_s, (frame.done_s - frame.capture_s) * 1e3);
    }
    fn choose(&mut self, now: f64) -> usize {
        if let Some(d) = self.controller.poll(now, |_| true) {
            self.log.push(d);
        }
        self.controller.current().expect("a decision was made")
    }
    fn observe(&mut self, o: &Observation) {
        feed(&mut self.controller, o);
    }
    fn wants_pings(&self) -> bool {
        true
    }
    fn hedge(&self) -> bool {
        self.controller.hedge_now()
    }
    fn probe_bytes(&mut self, now: f64) -> usize {
        self.controller.probe_bytes(now)
    }
    fn decisions(&mut self) -> Vec<DecisionLog> {
        std::mem::take(&mut self.log)
    }
}

/// AWStream's knob only: the fixed remote configuration, its bit rate picked every window as
/// the highest that fits the estimated uplink.
struct BandwidthOnly {
    estimator: NetworkEstimator,
    /// Same configuration at each bit rate, ascending.
    ladder: Vec<(u64, usize)>,
    current: usize,
    next_decision: f64,
    window_s: f64,
    safety: f64,
}

impl Policy for BandwidthOnly {
    fn choose(&mut self, now: f64) -> usize {
        if now >= self.next_decision {
            let estimate = self.estimator.estimate(now);
            let budget = self.safety * estimate.uplink_bps;
            self.current = self
                .ladder
                .iter()
                .rev()
                .find(|(b, _)| (*b as f64) <= budget)
                .unwrap_or(&self.ladder[0])
                .1;
            self.next_decision = now + self.window_s;
        }
        self.current
    }
    fn observe(&mut self, o: &Observation) {
        match *o {
            Observation::Frame {
                at,
                bytes,
                network_ms,
                ..
            }
            | Observation::Late {
                at,
                bytes,
                network_ms,
                ..
            } => self.estimator.on_frame(at, bytes, network_ms),
            Observation::Rtt { at, rtt_ms } => self.estimator.on_rtt(at, rtt_ms),
            Observation::Probe { .. } => {}
        }
    }
}

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

    fn sim(&self) -> Sim<'_> {
        Sim::new(
            &self.optimiser,
            self.settings,
            self.trace.clone(),
            &self.fallback,
            self.requirements.max_latency_ms / 1e3,
        )
    }

    fn capacity_bps(&self, w: usize) -> f64 {
        let w0 = dur(w as f64 * self.settings.window_s);
        let w1 = dur((w + 1) as f64 * self.settings.window_s);
        (self.trace.capacity_bytes(w1) - self.trace.capacity_bytes(w0)) as f64 * 8.0
            / self.settings.window_s
    }

    /// Runs `policy` over the whole replay.
    fn drive(&self, policy: &mut dyn Policy) -> (Vec<FrameOutcome>, Vec<ProbeSent>) {
        let mut sim = self.sim();
        let end = self.windows() as f64 * self.settings.window_s;
        let mut frames = Vec::new();
        let mut probes = Vec::new();
        let mut next_ping = 0.0;
        // Ping answers reach the policy when they arrive, not when sent.
        let mut answers: Vec<Observation> = Vec::new();
        while sim.t < end {
            if policy.wants_pings() && sim.t >= next_ping {
                let at = sim.t;
                let rtt_ms = sim.ping(PING_BYTES);
                answers.push(Observation::Rtt {
                    at: at + rtt_ms / 1e3,
                    rtt_ms,
                });
                // A probe goes right behind the bare ping, which keeps the round trip's
                // minimum free of transfer time.
                let bytes = policy.probe_bytes(at);
                if bytes > 0 {
                    let rtt_ms = sim.ping(bytes as f64);
                    answers.push(Observation::Probe {
                        at: at + rtt_ms / 1e3,
                        bytes,
                        rtt_ms,
                    });
                    probes.push(ProbeSent {
                        at,
                        bytes: bytes as f64,
                    });
                }
                next_ping = at + self.settings.ping_every_s;
            }
            let now = sim.t;
            answers.retain(|o| {
                let arrived = o.at() <= now;
                if arrived {
                    policy.observe(o);
                }
                !arrived
            });
            let index = policy.choose(sim.t);
            let (frame, observations) = sim.step(index, policy.hedge());
            for o in observations.into_iter().flatten() {
                if o.at() > sim.t {
                    answers.push(o);
                } else {
                    policy.observe(&o);
                }
            }
            policy.shown(&frame);
            frames.push(frame);
        }
        (frames, probes)
    }

    /// The best configuration of each window, trying every candidate on the future trace —
    /// with the same choice of hedging adaptive has: none, always, or per window (where,
    /// knowing the future, it knows when the stand-in pays).
    fn oracle(&self) -> Vec<FrameOutcome> {
        let hedging: &[bool] = match self.settings.hedge {
            Hedge::Off => &[false],
            Hedge::Always => &[true],
            Hedge::WhenUncertain => &[true, false],
        };
        let window = self.settings.window_s;
        let mut sim = self.sim();
        let mut frames: Vec<FrameOutcome> = Vec::new();
        for w in 0..self.windows() {
            let (w0, w1, w2) = (
                w as f64 * window,
                (w + 1) as f64 * window,
                (w + 2) as f64 * window,
            );
            let context = frames.len().saturating_sub(64);
            let mut best: Option<((f64, f64), Sim, Vec<FrameOutcome>)> = None;
            let remote = |i: usize| self.optimiser.list()[i].key.placement == Placement::Remote;
            // A local candidate has nothing to hedge: once.
            let choices = (0..self.optimiser.list().len()).flat_map(|i| {
                let modes = if remote(i) { hedging } else { &hedging[..1] };
                modes.iter().map(move |&h| (i, h))
            });
            for (index, hedge) in choices {
                let mut trial = sim.clone();
                let mut tried = frames[context..].to_vec();
                let first_new = tried.len();
                while trial.t < w1 {
                    tried.push(trial.step(index, hedge).0);
                }
                let boundary = trial.clone();
                let kept = tried.len();
                // Judge the choice with one more window of it: a frame still in flight at the
                // boundary (a slow configuration, a queue left in the link) costs the next
                // window, and a per-window greedy choice would not see it.
                while trial.t < w2 {
                    tried.push(trial.step(index, hedge).0);
                }
                let (a, b) = (
                    self.window_stats(&tried, &[], w0, w1),
                    self.window_stats(&tried, &[], w1, w2),
                );
                let score = (a.violation_score + b.violation_score, a.utility + b.utility);
                if best.as_ref().is_none_or(|(b, _, _)| better_than(score, *b)) {
                    tried.truncate(kept);
                    best = Some((score, boundary, tried.split_off(first_new)));
                }
            }
            let (_, trial, new) = best.expect("candidates exist");
            sim = trial;
            frames.extend(new);
        }
        frames
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
                (self.drive(&mut Fixed(best)), Vec::new(), Some(best))
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
                (self.drive(&mut Fixed(index)), Vec::new(), Some(index))
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
                let mut policy = BandwidthOnly {
                    estimator: NetworkEstimator::new(self.settings.controller.estimator.clone()),
                    current: ladder[0].1,
                    ladder,
                    next_decision: 0.0,
                    window_s: self.settings.window_s,
                    safety: self.requirements.bitrate_safety,
                };
                (self.drive(&mut policy), Vec::new(), None)
            }
            PolicyKind::Adaptive => {
                let mut policy = Adaptive {
                    controller: Controller::new(
                        self.optimiser.clone(),
                        self.requirements.clone(),
                        ControllerSettings {
                            hedge: self.settings.hedge,
                            ..self.settings.controller.clone()
                        },
                    ),
                    log: Vec::new(),
                };
                let driven = self.drive(&mut policy);
                (driven, policy.decisions(), None)
            }
        };
        self.report(kind.name(), &frames, &probes, decisions, fixed)
    }

    /// Replays one fixed configuration (index into the optimiser's candidates): what the
    /// pipeline would do pinned to it, e.g. to compare with a real run of the same setting.
    pub fn run_fixed(&self, index: usize) -> PolicyReport {
        let (frames, probes) = self.drive(&mut Fixed(index));
        self.report("fixed", &frames, &probes, Vec::new(), Some(index))
    }

    /// The fixed configuration of a placement with the best mean window utility on this trace
    /// (fewest violating windows first): the strongest fixed baseline, chosen in hindsight.
    fn best_fixed(&self, placement: Placement) -> usize {
        let mut best: Option<(usize, (f64, f64))> = None;
        for (index, c) in self.optimiser.list().iter().enumerate() {
            if c.key.placement != placement {
                continue;
            }
            let (frames, probes) = self.drive(&mut Fixed(index));
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

    fn all_windows(&self, frames: &[FrameOutcome], probes: &[ProbeSent]) -> Vec<WindowStats> {
        (0..self.windows())
            .map(|w| {
                let w0 = w as f64 * self.settings.window_s;
                let mut s = self.window_stats(frames, probes, w0, w0 + self.settings.window_s);
                s.capacity_bps = self.capacity_bps(w);
                s
            })
            .collect()
    }

    /// What the frames (sorted by completion) delivered in `[w0, w1)`.
    fn window_stats(
        &self,
        frames: &[FrameOutcome],
        probes: &[ProbeSent],
        w0: f64,
        w1: f64,
    ) -> WindowStats {
        let list = self.optimiser.list();
        let req = self.requirements;
        let span = w1 - w0;
        let first_done = frames.partition_point(|f| f.done_s < w0);
        let last_done = frames.partition_point(|f| f.done_s < w1);
        let delivered = &frames[first_done..last_done];
        let latencies: Vec<f64> = delivered
            .iter()
            .map(|f| (f.done_s - f.capture_s) * 1e3)
            .collect();
        let latency_ms = if latencies.is_empty() {
            // Nothing came back: the frame in flight is at least this late already.
            frames[last_done..]
                .first()
                .map(|f| ((w1 - f.capture_s) * 1e3).max(0.0))
        } else {
            Some(latencies.iter().sum::<f64>() / latencies.len() as f64)
        };
        // Accuracy along the timeline: the result on screen, scored at its age.
        let mut accuracy = 0.0;
        for k in 0..ACCURACY_SAMPLES {
            let tau = w0 + (k as f64 + 0.5) * span / ACCURACY_SAMPLES as f64;
            let shown = frames.partition_point(|f| f.done_s <= tau);
            if shown > 0 {
                let f = &frames[shown - 1];
                accuracy += list[f.candidate].accuracy_at_age(tau - f.capture_s);
            }
        }
        accuracy /= ACCURACY_SAMPLES as f64;
        let fps = delivered.len() as f64 / span;
        // Energy and data of the frames started in the window.
        let started: Vec<&FrameOutcome> = frames
            .iter()
            .filter(|f| f.start_s >= w0 && f.start_s < w1)
            .collect();
        let busy: f64 = started
            .iter()
            .map(|f| f.device_busy_s)
            .sum::<f64>()
            .min(span);
        let c = &self.optimiser.candidates;
        let compute_j = c.idle_w * span + (c.active_w - c.idle_w) * busy;
        // Probes are in sending order: the window's are one slice.
        let first_probe = probes.partition_point(|p| p.at < w0);
        let probed = &probes[first_probe..probes.partition_point(|p| p.at < w1)];
        let up: f64 = started.iter().map(|f| f.bytes_up).sum::<f64>()
            + probed.iter().map(|p| p.bytes).sum::<f64>();
        let down: f64 = started.iter().map(|f| f.bytes_down).sum();
        let radio = RADIOS
            .iter()
            .find(|(r, _)| *r == req.radio)
            .map(|(_, k)| *k);
        let radio_j = match radio {
            Some([au, ad, beta]) if up + down > 0.0 => {
                (au * up * 8.0 / span / 1e6 + ad * down * 8.0 / span / 1e6 + beta) / 1e3 * span
            }
            _ => {
                // LTE's tail: full power for ~11.6 s after the last transfer.
                let last_frame = frames
                    .iter()
                    .rev()
                    .find(|f| f.remote && f.start_s < w0)
                    .map(|f| f.done_s);
                let last_probe = probes[..first_probe].last().map(|p| p.at);
                let last = match (last_frame, last_probe) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                match last {
                    Some(t) if req.radio == "lte" => {
                        let tail_end = t + LTE_TAIL_S;
                        (tail_end.min(w1) - w0).max(0.0) * LTE_TAIL_W
                    }
                    _ => 0.0,
                }
            }
        };
        let power_w = (compute_j + radio_j) / span;
        // A microsecond of slack: a stand-in shown at the bound is on time, whatever the
        // rounding of capture + bound − capture.
        let latency_violation = latency_ms.is_none_or(|l| l > req.max_latency_ms + 1e-3);
        let utility = req.w_accuracy * accuracy + req.w_fps * fps / self.optimiser.fps_max;
        let measured = Prediction {
            latency_ms: latency_ms.unwrap_or(f64::INFINITY),
            fps,
            accuracy,
            utility,
            power_w,
            joules_per_frame: 0.0,
            data_bps: (up + down) * 8.0 / span,
        };
        let violation_score = req.violation_score(&measured, None);
        WindowStats {
            start_s: w0,
            capacity_bps: 0.0,
            config: started
                .first()
                .copied()
                .or(delivered.first())
                .map(|f| list[f.candidate].key.to_string())
                .unwrap_or_default(),
            results: delivered.len(),
            fps,
            accuracy,
            latency_ms,
            utility: if latency_violation { 0.0 } else { utility },
            raw_utility: utility,
            latency_violation,
            violation: violation_score > 0.0,
            violation_score,
            energy_j: compute_j + radio_j,
            bytes: up + down,
            remote_frames: started.iter().filter(|f| f.remote && !f.fallback).count(),
            fallbacks: started.iter().filter(|f| f.fallback).count(),
        }
    }

    fn report(
        &self,
        name: &str,
        frames: &[FrameOutcome],
        probes: &[ProbeSent],
        decisions: Vec<DecisionLog>,
        fixed: Option<usize>,
    ) -> PolicyReport {
        let windows = self.all_windows(frames, probes);
        let n = windows.len() as f64;
        let end = windows.len() as f64 * self.settings.window_s;
        let counted: Vec<&FrameOutcome> = frames.iter().filter(|f| f.done_s < end).collect();
        let latencies: Vec<f64> = counted
            .iter()
            .map(|f| (f.done_s - f.capture_s) * 1e3)
            .collect();
        let energy: f64 = windows.iter().map(|w| w.energy_j).sum();
        let list = self.optimiser.list();
        let mut uses: Vec<(usize, usize)> = Vec::new();
        let mut switches = 0;
        let mut previous = None;
        for f in frames {
            // The configuration asked for: a fallback frame still belongs to its remote choice.
            let chosen = if f.fallback { usize::MAX } else { f.candidate };
            if chosen != usize::MAX {
                if previous.is_some_and(|p| p != chosen) {
                    switches += 1;
                }
                previous = Some(chosen);
                match uses.iter_mut().find(|(i, _)| *i == chosen) {
                    Some((_, k)) => *k += 1,
                    None => uses.push((chosen, 1)),
                }
            }
        }
        let main = fixed.or_else(|| uses.iter().max_by_key(|(_, k)| *k).map(|(i, _)| *i));
        PolicyReport {
            policy: name.into(),
            trace: self.trace.name.clone(),
            duration_s: end,
            utility: windows.iter().map(|w| w.utility).sum::<f64>() / n,
            raw_utility: windows.iter().map(|w| w.raw_utility).sum::<f64>() / n,
            accuracy: windows.iter().map(|w| w.accuracy).sum::<f64>() / n,
            fps: counted.len() as f64 / end,
            latency_mean_ms: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
            latency_p50_ms: quantile(&latencies, 0.5).unwrap_or(f64::NAN),
            latency_p95_ms: quantile(&latencies, 0.95).unwrap_or(f64::NAN),
            latency_violation_share: windows.iter().filter(|w| w.latency_violation).count() as f64
                / n,
            violation_share: windows.iter().filter(|w| w.violation).count() as f64 / n,
            energy_j: energy,
            joules_per_frame: energy / counted.len().max(1) as f64,
            data_mb: windows.iter().map(|w| w.bytes).sum::<f64>() / 1e6,
            remote_share: counted.iter().filter(|f| f.remote && !f.fallback).count() as f64
                / counted.len().max(1) as f64,
            fallbacks: counted.iter().filter(|f| f.fallback).count(),
            switches,
            main_config: main.map(|i| list[i].key.to_string()).unwrap_or_default(),
            windows,
            decisions,
        }
    }
}
