//! The device's per-frame rules as a sans-IO state machine, the way `quinn-proto` sits under
//! `quinn`: which camera frame to take, local or remote, how many frames may be in flight,
//! the deadline and the local fallback, the hedged stand-in, late results, what becomes a
//! throughput or latency sample for the policy, and what is shown.
//!
//! A driver feeds it events — a camera frame, a local or stand-in result, a frame sent or
//! skipped by the encoder, a remote result or error, a pong, a session up or down, a timer —
//! each with the time as an argument (seconds since the run started), and carries out the
//! [`Action`]s it returns: run a detector, encode and send, cancel, show, ping. The native
//! client drives it with sockets and detectors, the trace replay with simulated time and the
//! link model, the browser with WebCodecs and ONNX Runtime Web: one implementation of the
//! rules. This crate must never read a clock, touch a socket or a file, or spawn a thread.

mod policy;

pub use policy::{Adaptive, Allowed, Fixed, Policy};

use deepoffload_core::{Detection, LatencyBreakdown, Placement};
use std::collections::VecDeque;

/// A frame's identity: its index in the source (taken frames strictly increase).
pub type FrameId = u64;

/// Slack when comparing instants: a frame at an analysis instant is on it whatever the
/// rounding of `k / fps` (s).
const INSTANT_SLACK_S: f64 = 1e-6;

/// How many frames may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One frame at a time: the next is taken when the previous result is shown (the study).
    StopAndWait,
    /// Up to `inflight` remote frames sent before the first result returns.
    Pipelined { inflight: usize },
}

/// The rules' parameters.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// A remote result later than this after sending is abandoned (s); the frame falls back.
    pub deadline_s: f64,
    /// Hedge remote frames against this latency bound after capture (s): the stand-in runs
    /// beside each one and is shown when the remote result would break the bound. `None`:
    /// never hedge.
    pub hedge_bound_s: Option<f64>,
    /// Ping period while the policy wants pings (s).
    pub ping_every_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::StopAndWait,
            deadline_s: 1.0,
            hedge_bound_s: None,
            ping_every_s: 1.0,
        }
    }
}

/// What the pipeline needs to know of one configuration the policy may choose. What the id
/// means beyond this (a resolution and bit rate, a profiled candidate) is the driver's.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub placement: Placement,
    /// Analysed frames per second (`None`: every camera frame).
    pub fps: Option<f64>,
    /// The detector a local frame runs on (driver's id).
    pub local: Option<usize>,
    /// The detector a remote frame falls back to and hedges with (the quickest one).
    pub fallback: Option<usize>,
}

/// The edge session the pipeline may send to.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// Changes with every new connection (a new decoder on the server: start with a key frame).
    pub generation: u64,
    /// The model the server runs, and its input size.
    pub model: String,
    pub input_size: u32,
}

/// A camera frame offered to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Captured {
    pub index: u64,
    /// Its timestamp in the source, s.
    pub pts_s: f64,
    /// When it became available (the start of its end-to-end latency), s.
    pub captured_s: f64,
}

/// Device-side times of a frame until it was sent or analysed, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceTimes {
    pub resize_ms: f64,
    pub encode_ms: f64,
}

/// A local detector's output (in source-frame pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalResult {
    /// The boxes, or why detection failed.
    pub detections: Result<Vec<Detection>, String>,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub postprocess_ms: f64,
}

impl LocalResult {
    fn device_ms(&self) -> f64 {
        self.preprocess_ms + self.inference_ms + self.postprocess_ms
    }
}

/// The server's answer for a frame (boxes in source-frame pixels).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteResult {
    pub detections: Vec<Detection>,
    pub bytes_down: u64,
    pub decode_ms: f64,
    pub queue_ms: f64,
    pub inference_ms: f64,
    /// Receipt of the frame to sending the result, ms.
    pub total_ms: f64,
    pub batch_size: u32,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Scale the frame for configuration `config` and analyse it: on local detector
    /// `detector`, or — `detector: None` — encode it and send it (`keyframe`: force one).
    Analyse {
        frame: FrameId,
        config: usize,
        detector: Option<usize>,
        keyframe: bool,
    },
    /// Run a local detector on the frame already scaled: a fallback after the network failed.
    RunLocal { frame: FrameId, detector: usize },
    /// Run the hedge's stand-in on the frame already scaled, beside its transfer.
    RunStandIn { frame: FrameId, detector: usize },
    /// The remote result of this frame is no longer awaited.
    Cancel { frame: FrameId },
    /// Show this result now.
    Show(Box<Shown>),
    /// Nothing more is needed of this frame (its image may go).
    Release { frame: FrameId },
    /// Send a ping carrying `padding` bytes up (a probe when > 0).
    Ping { padding: usize },
}

/// Where a shown result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The edge server.
    Remote,
    /// A local detector (chosen, a fallback, or the hedge's stand-in).
    Local { detector: usize },
    /// The encoder skipped the frame: the latest server result is shown again.
    Repeated,
    /// The network failed and nothing could analyse the frame.
    Nothing,
}

/// One shown result, with everything measured about its frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub frame: FrameId,
    pub pts_s: f64,
    pub capture_s: f64,
    /// When the pipeline took the frame.
    pub start_s: f64,
    pub shown_s: f64,
    /// The configuration chosen for the frame.
    pub config: usize,
    pub origin: Origin,
    /// Why a frame meant for the server shows a local result (or none).
    pub fallback: Option<String>,
    /// The hedge's stand-in was shown; its device time, ms (it ran beside the transfer).
    pub stand_in_ms: Option<f64>,
    pub detections: Vec<Detection>,
    pub latency: LatencyBreakdown,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub server_batch: Option<u32>,
}

impl Shown {
    /// Where the frame was analysed.
    pub fn placement(&self) -> Placement {
        match self.origin {
            Origin::Local { .. } => Placement::Local,
            _ => Placement::Remote,
        }
    }
}

/// What the policy learns (see [`Policy::observe`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A remote frame's transfer: its result came (`server_ms` reported), or it was given up
    /// at the deadline or on an error (`server_ms: None`; the network took at least that).
    Frame {
        at_s: f64,
        bytes: u64,
        network_ms: f64,
        server_ms: Option<f64>,
    },
    /// A hedged frame's remote result after the stand-in's was shown (or the deadline, when it
    /// did not come by then): it still times the network, and the remote path's lateness.
    /// `bytes` is 0 when the frame was sent behind another late one (a latency sample only).
    Late {
        at_s: f64,
        bytes: u64,
        network_ms: f64,
        latency_ms: f64,
    },
    /// A result was shown this long after capture (not for stand-ins and repeated results).
    Shown {
        at_s: f64,
        latency_ms: f64,
    },
    Rtt {
        at_s: f64,
        rtt_ms: f64,
    },
    Probe {
        at_s: f64,
        bytes: usize,
        rtt_ms: f64,
    },
}

/// A frame's state between being taken and being shown.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// On a local detector (`reason`: a fallback after `spent_s` on the network).
    Local {
        detector: usize,
        reason: Option<String>,
        spent_s: f64,
    },
    /// Being scaled and encoded.
    Encoding,
    /// Sent; its result awaited until `cutoff_s` (the bound when hedged, else the deadline).
    Awaiting { cutoff_s: f64 },
    /// Its result (or what replaces it) is ready.
    Ready(Ready),
    /// Shown; kept only while its stand-in still runs (the device is busy with it).
    Shown,
}

#[derive(Debug, Clone, PartialEq)]
enum Ready {
    Remote(RemoteResult),
    Local {
        detector: usize,
        result: LocalResult,
        reason: Option<String>,
        spent_s: f64,
    },
    /// Show the stand-in's result when it is done.
    StandIn {
        reason: String,
        waited_s: f64,
    },
    Repeated,
    Nothing {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct StandIn {
    detector: usize,
    result: Option<LocalResult>,
}

#[derive(Debug, Clone, PartialEq)]
struct InFlight {
    frame: FrameId,
    pts_s: f64,
    capture_s: f64,
    start_s: f64,
    config: usize,
    stage: Stage,
    latency: LatencyBreakdown,
    /// When it was sent, and the bytes it carried.
    sent: Option<(f64, u64)>,
    /// Sent while an earlier frame's result was still out: it may have queued behind it.
    queued: bool,
    stand_in: Option<StandIn>,
}

/// A hedged frame whose stand-in was shown: its remote result still measures the network
/// until the deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Late {
    frame: FrameId,
    capture_s: f64,
    sent_s: f64,
    bytes: u64,
    queued: bool,
}

/// The device pipeline (see the module docs). Generic over the policy so that a replay can
/// clone a whole pipeline to try a choice ahead.
#[derive(Clone)]
pub struct Pipeline<P> {
    settings: Settings,
    table: std::sync::Arc<[Choice]>,
    policy: P,
    session: Option<SessionInfo>,
    /// The generation the encoder last sent to, and whether the next frame must be a key frame.
    generation: Option<u64>,
    keyframe: bool,
    /// The configuration chosen for the next frame, once the pipeline is ready for one.
    next: Option<usize>,
    inflight: VecDeque<InFlight>,
    late: Vec<Late>,
    /// Frames sent whose results have not come, been given up or failed.
    out: Vec<FrameId>,
    /// The last frame taken (pts), and the last remote result (repeated for skipped frames).
    last_pts_s: Option<f64>,
    last_index: Option<u64>,
    last_remote: Vec<Detection>,
    next_ping_s: f64,
    missed: u64,
    actions: VecDeque<Action>,
}

impl<P: Policy> Pipeline<P> {
    /// `table[id]` describes configuration `id`, the ids `policy` chooses.
    pub fn new(settings: Settings, table: Vec<Choice>, policy: P) -> Self {
        Self {
            settings,
            table: table.into(),
            policy,
            session: None,
            generation: None,
            keyframe: true,
            next: None,
            inflight: VecDeque::new(),
            late: Vec::new(),
            out: Vec::new(),
            last_pts_s: None,
            last_index: None,
            last_remote: Vec::new(),
            next_ping_s: 0.0,
            missed: 0,
            actions: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    pub fn into_policy(self) -> P {
        self.policy
    }

    /// Analysis instants the pipeline was too busy to take a frame for.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Frames taken and not yet done with (shown, and their stand-in finished).
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Whether late results are still awaited (a run should not end before).
    pub fn awaiting_late(&self) -> bool {
        !self.late.is_empty()
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The session changed: a new connection (`Some`) or none.
    pub fn handle_session(&mut self, _now_s: f64, session: Option<SessionInfo>) {
        if let Some(s) = &session {
            if self.generation != Some(s.generation) {
                self.generation = Some(s.generation);
                self.keyframe = true;
            }
        }
        self.session = session;
    }

    /// Whether the pipeline would take a frame now (drivers that pull frames ask first).
    pub fn wants_frame(&mut self, now_s: f64) -> bool {
        self.ready(now_s);
        self.next.is_some()
    }

    /// Chooses the next frame's configuration once there is room for one.
    fn ready(&mut self, now_s: f64) {
        if self.next.is_some() {
            return;
        }
        let limit = |p: &Self, config: usize| match (p.table[config].placement, p.settings.mode) {
            (Placement::Remote, Mode::Pipelined { inflight }) => inflight.max(1),
            _ => 1,
        };
        // Room under the configuration in force (a stop-and-wait pipeline waits for all).
        let in_force = self.inflight.back().map(|f| f.config);
        if in_force.is_some_and(|c| self.inflight.len() >= limit(self, c)) {
            return;
        }
        self.ping(now_s);
        let config = self.policy.choose(now_s, self.session.as_ref());
        let config = config.min(self.table.len().saturating_sub(1));
        if self.inflight.len() < limit(self, config) {
            self.next = Some(config);
        }
    }

    /// Pings when it is time and the policy wants round trips measured.
    fn ping(&mut self, now_s: f64) {
        if self.session.is_none() || !self.policy.wants_pings() || now_s < self.next_ping_s {
            return;
        }
        self.next_ping_s = now_s + self.settings.ping_every_s;
        // A bare ping, and right behind it a probe when the uplink estimate needs one: the
        // bare one keeps the round trip's minimum free of transfer time.
        self.actions.push_back(Action::Ping { padding: 0 });
        let probe = self.policy.probe_bytes(now_s);
        if probe > 0 {
            self.actions.push_back(Action::Ping { padding: probe });
        }
    }

    /// A camera frame is available; returns whether it was taken. A frame is taken when the
    /// pipeline has room and the next analysis instant of the chosen rate has come (instants
    /// lie on the grid `k / fps` of source time): a pipeline that was busy past the instant
    /// takes the newest frame it is offered, and the instants it passed are missed; one that
    /// was free waits for the first frame at the instant. Drivers offer the newest frame.
    pub fn handle_frame(&mut self, now_s: f64, frame: Captured) -> bool {
        self.catch_up(now_s);
        self.ready(now_s);
        let Some(config) = self.next else {
            return false;
        };
        if self.last_index.is_some_and(|i| frame.index <= i) {
            return false;
        }
        let choice = self.table[config].clone();
        if let (Some(fps), Some(last)) = (choice.fps, self.last_pts_s) {
            // How far the source has got by now: the frame's timestamp plus the time since it
            // was captured (a frame taken the moment it is handed over, as offline, is now).
            let source_now = frame.pts_s + (now_s - frame.captured_s).max(0.0);
            let period = 1.0 / fps.max(1e-3);
            let due = ((last / period + 1e-9).floor() + 1.0) * period;
            if source_now < due - INSTANT_SLACK_S {
                return false;
            }
            self.missed += ((source_now - due) / period + 1e-9).floor().max(0.0) as u64;
        } else if choice.fps.is_none() {
            if let Some(last) = self.last_index {
                self.missed += frame.index - last - 1;
            }
        }
        self.last_pts_s = Some(frame.pts_s);
        self.last_index = Some(frame.index);
        self.next = None;
        let mut f = InFlight {
            frame: frame.index,
            pts_s: frame.pts_s,
            capture_s: frame.captured_s,
            start_s: now_s,
            config,
            stage: Stage::Encoding,
            latency: LatencyBreakdown {
                wait_ms: ((now_s - frame.captured_s) * 1e3).max(0.0),
                ..LatencyBreakdown::default()
            },
            sent: None,
            queued: false,
            stand_in: None,
        };
        let detector = match (choice.placement, &self.session) {
            (Placement::Local, _) => choice.local,
            (Placement::Remote, Some(_)) => None,
            // A remote frame without a session falls back at once.
            (Placement::Remote, None) => match choice.fallback {
                Some(d) => Some(d),
                None => {
                    f.stage = Stage::Ready(Ready::Nothing {
                        reason: "no session with the edge server".into(),
                    });
                    self.inflight.push_back(f);
                    self.flush(now_s);
                    return true;
                }
            },
        };
        let keyframe = detector.is_none() && std::mem::take(&mut self.keyframe);
        if let Some(d) = detector {
            f.stage = Stage::Local {
                detector: d,
                reason: (choice.placement == Placement::Remote)
                    .then(|| "no session with the edge server".into()),
                spent_s: 0.0,
            };
        }
        self.actions.push_back(Action::Analyse {
            frame: f.frame,
            config,
            detector,
            keyframe,
        });
        self.inflight.push_back(f);
        self.ready(now_s);
        true
    }

    /// Runs the timers that fell due before `now_s`, at their own times, so an event that a
    /// driver hands over late cannot overtake them (a result at the cutoff itself is on time).
    fn catch_up(&mut self, now_s: f64) {
        while let Some(t) = self.poll_timeout().filter(|&t| t < now_s) {
            self.handle_timeout(t);
        }
    }

    fn find(&mut self, frame: FrameId) -> Option<&mut InFlight> {
        self.inflight.iter_mut().find(|f| f.frame == frame)
    }

    /// The encoder sent the frame: `bytes` on the wire.
    pub fn handle_sent(&mut self, now_s: f64, frame: FrameId, bytes: u64, times: DeviceTimes) {
        self.catch_up(now_s);
        let deadline_s = self.settings.deadline_s;
        let hedge_bound = self.settings.hedge_bound_s.filter(|_| self.policy.hedge());
        let queued = !self.out.is_empty();
        let fallback = self
            .inflight
            .iter()
            .find(|f| f.frame == frame)
            .and_then(|f| {
                let c = &self.table[f.config];
                c.fallback
            });
        let Some(f) = self.find(frame) else { return };
        if f.stage != Stage::Encoding {
            return;
        }
        f.latency.resize_ms = times.resize_ms;
        f.latency.encode_ms = times.encode_ms;
        f.sent = Some((now_s, bytes));
        f.queued = queued;
        let mut cutoff_s = now_s + deadline_s;
        let stand_in = hedge_bound.zip(fallback).map(|(bound, detector)| {
            // Past the bound the remote result is of no use; the stand-in's is.
            cutoff_s = cutoff_s.min((f.capture_s + bound).max(now_s));
            detector
        });
        f.stage = Stage::Awaiting { cutoff_s };
        if let Some(detector) = stand_in {
            f.stand_in = Some(StandIn {
                detector,
                result: None,
            });
            self.actions
                .push_back(Action::RunStandIn { frame, detector });
        }
        self.out.push(frame);
    }

    /// The encoder skipped the frame to hold the bit rate: the latest remote result is shown
    /// again.
    pub fn handle_skipped(&mut self, now_s: f64, frame: FrameId, times: DeviceTimes) {
        self.catch_up(now_s);
        let Some(f) = self.find(frame) else { return };
        if f.stage != Stage::Encoding {
            return;
        }
        f.latency.resize_ms = times.resize_ms;
        f.latency.encode_ms = times.encode_ms;
        f.stage = Stage::Ready(Ready::Repeated);
        self.flush(now_s);
    }

    /// A local detector finished the frame (chosen, or a fallback).
    pub fn handle_local_result(
        &mut self,
        now_s: f64,
        frame: FrameId,
        resize_ms: f64,
        result: LocalResult,
    ) {
        self.catch_up(now_s);
        let Some(f) = self.find(frame) else { return };
        let Stage::Local {
            detector,
            reason,
            spent_s,
        } = &mut f.stage
        else {
            return;
        };
        if f.sent.is_none() {
            f.latency.resize_ms = resize_ms;
        }
        f.stage = Stage::Ready(Ready::Local {
            detector: *detector,
            result,
            reason: reason.take(),
            spent_s: *spent_s,
        });
        self.flush(now_s);
    }

    /// The hedge's stand-in finished.
    pub fn handle_stand_in_result(&mut self, now_s: f64, frame: FrameId, result: LocalResult) {
        self.catch_up(now_s);
        let Some(f) = self.find(frame) else { return };
        if let Some(s) = f.stand_in.as_mut() {
            s.result = Some(result);
        }
        self.flush(now_s);
    }

    /// The server's result for a frame.
    pub fn handle_remote_result(&mut self, now_s: f64, frame: FrameId, result: RemoteResult) {
        self.catch_up(now_s);
        let was_out = self.take_out(frame);
        if let Some(i) = self.late.iter().position(|l| l.frame == frame) {
            let l = self.late.swap_remove(i);
            let sample = Sample::Late {
                at_s: now_s,
                bytes: if l.queued { 0 } else { l.bytes },
                network_ms: (now_s - l.sent_s) * 1e3 - result.total_ms,
                latency_ms: (now_s - l.capture_s) * 1e3,
            };
            self.policy.observe(&sample);
            return;
        }
        if !was_out {
            return;
        }
        let Some(f) = self.find(frame) else { return };
        let (Stage::Awaiting { cutoff_s }, Some((sent_s, bytes))) = (&f.stage, f.sent) else {
            return;
        };
        if now_s > *cutoff_s {
            // Its timer is due: the driver will tell, and the result is late.
            return;
        }
        let sample = Sample::Frame {
            at_s: now_s,
            bytes,
            network_ms: (now_s - sent_s) * 1e3 - result.total_ms,
            server_ms: Some(result.total_ms),
        };
        f.stage = Stage::Ready(Ready::Remote(result));
        self.policy.observe(&sample);
        self.flush(now_s);
    }

    /// The server refused the frame, or the session failed under it (`decode_failed`: the
    /// server's decoder needs a key frame).
    pub fn handle_remote_error(
        &mut self,
        now_s: f64,
        frame: FrameId,
        reason: String,
        decode_failed: bool,
    ) {
        self.catch_up(now_s);
        if decode_failed {
            self.keyframe = true;
        }
        self.take_out(frame);
        // A late result that cannot come any more measures nothing.
        self.late.retain(|l| l.frame != frame);
        let Some(f) = self.find(frame) else { return };
        let config = f.config;
        match (&f.stage, f.sent) {
            (Stage::Awaiting { .. }, Some((sent_s, _))) => {
                self.give_up(now_s, frame, sent_s, reason, false)
            }
            // It never left (the session went between the choice and the send): it runs
            // locally at once, and says nothing of the network.
            (Stage::Encoding, None) => {
                let stage = match self.table[config].fallback {
                    Some(detector) => {
                        self.actions.push_back(Action::RunLocal { frame, detector });
                        Stage::Local {
                            detector,
                            reason: Some(reason),
                            spent_s: 0.0,
                        }
                    }
                    None => Stage::Ready(Ready::Nothing { reason }),
                };
                if let Some(f) = self.find(frame) {
                    f.stage = stage;
                }
                self.flush(now_s);
            }
            _ => {}
        }
    }

    /// The answer to a [`Action::Ping`] sent with `padding` bytes: its round trip.
    pub fn handle_pong(&mut self, now_s: f64, padding: usize, rtt_ms: f64) {
        self.catch_up(now_s);
        let sample = if padding > 0 {
            Sample::Probe {
                at_s: now_s,
                bytes: padding,
                rtt_ms,
            }
        } else {
            Sample::Rtt {
                at_s: now_s,
                rtt_ms,
            }
        };
        self.policy.observe(&sample);
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<f64> {
        let cutoffs = self.inflight.iter().filter_map(|f| match f.stage {
            Stage::Awaiting { cutoff_s } => Some(cutoff_s),
            _ => None,
        });
        let lates = self
            .late
            .iter()
            .map(|l| l.sent_s + self.settings.deadline_s);
        cutoffs.chain(lates).min_by(f64::total_cmp)
    }

    /// Gives up on remote results whose time is past.
    pub fn handle_timeout(&mut self, now_s: f64) {
        let deadline_s = self.settings.deadline_s;
        let expired: Vec<Late> = self
            .late
            .iter()
            .copied()
            .filter(|l| now_s >= l.sent_s + deadline_s)
            .collect();
        for l in expired {
            self.late.retain(|x| x.frame != l.frame);
            self.take_out(l.frame);
            // Not even by the deadline: the network took at least that long.
            self.policy.observe(&Sample::Late {
                at_s: now_s,
                bytes: if l.queued { 0 } else { l.bytes },
                network_ms: deadline_s * 1e3,
                latency_ms: (now_s - l.capture_s) * 1e3,
            });
            self.actions.push_back(Action::Cancel { frame: l.frame });
        }
        let due: Vec<(FrameId, f64)> = self
            .inflight
            .iter()
            .filter_map(|f| match (&f.stage, f.sent) {
                (Stage::Awaiting { cutoff_s }, Some((sent_s, _))) if now_s >= *cutoff_s => {
                    Some((f.frame, sent_s))
                }
                _ => None,
            })
            .collect();
        for (frame, sent_s) in due {
            let reason = match self.find(frame).map(|f| f.stand_in.is_some()) {
                Some(true) if now_s < sent_s + deadline_s - INSTANT_SLACK_S => {
                    "no result within the latency bound: the stand-in's result is shown".into()
                }
                _ => format!("no result within the {:?} deadline", secs(deadline_s)),
            };
            self.give_up(now_s, frame, sent_s, reason, true);
        }
    }

    fn take_out(&mut self, frame: FrameId) -> bool {
        let before = self.out.len();
        self.out.retain(|&f| f != frame);
        self.out.len() != before
    }

    /// The remote result of an awaited frame will not be waited for: show the stand-in's
    /// (its remote result still measures, as a late one), or fall back to a local detector.
    fn give_up(&mut self, now_s: f64, frame: FrameId, sent_s: f64, reason: String, timer: bool) {
        let Some(f) = self.inflight.iter().find(|f| f.frame == frame) else {
            return;
        };
        let (capture_s, bytes, queued) = (f.capture_s, f.sent.map_or(0, |s| s.1), f.queued);
        let hedged = f.stand_in.is_some();
        let fallback = self.table[f.config].fallback;
        let listening = timer && now_s < sent_s + self.settings.deadline_s;
        if timer && !listening {
            self.take_out(frame);
            self.actions.push_back(Action::Cancel { frame });
        }
        let stage = if hedged {
            if listening {
                self.late.push(Late {
                    frame,
                    capture_s,
                    sent_s,
                    bytes,
                    queued,
                });
            } else if timer {
                // Given up at the deadline itself: the network took at least that long.
                self.policy.observe(&Sample::Late {
                    at_s: now_s,
                    bytes: if queued { 0 } else { bytes },
                    network_ms: (now_s - sent_s) * 1e3,
                    latency_ms: (now_s - capture_s) * 1e3,
                });
            }
            Stage::Ready(Ready::StandIn {
                reason,
                waited_s: now_s - sent_s,
            })
        } else {
            if listening {
                // Not hedged: nothing listens past the cutoff.
                self.take_out(frame);
                self.actions.push_back(Action::Cancel { frame });
            }
            // The network took at least this long.
            self.policy.observe(&Sample::Frame {
                at_s: now_s,
                bytes,
                network_ms: (now_s - sent_s) * 1e3,
                server_ms: None,
            });
            match fallback {
                Some(detector) => {
                    self.actions.push_back(Action::RunLocal { frame, detector });
                    Stage::Local {
                        detector,
                        reason: Some(reason),
                        spent_s: now_s - sent_s,
                    }
                }
                None => Stage::Ready(Ready::Nothing { reason }),
            }
        };
        if let Some(f) = self.find(frame) {
            f.stage = stage;
        }
        self.flush(now_s);
    }

    /// Shows what is ready, in frame order, and lets go of frames that are done.
    fn flush(&mut self, now_s: f64) {
        while let Some(head) = self.inflight.front_mut() {
            let stand_in_done = head.stand_in.as_ref().is_none_or(|s| s.result.is_some());
            match &head.stage {
                Stage::Ready(Ready::StandIn { .. }) if !stand_in_done => break,
                Stage::Ready(_) => {
                    let shown = self.show(now_s);
                    self.actions.push_back(Action::Show(Box::new(shown)));
                }
                Stage::Shown if stand_in_done => {
                    let f = self.inflight.pop_front().expect("a head");
                    self.actions.push_back(Action::Release { frame: f.frame });
                }
                _ => break,
            }
        }
    }

    /// The record of the head frame, whose result is ready; it becomes shown.
    fn show(&mut self, now_s: f64) -> Shown {
        let f = self.inflight.front_mut().expect("a head");
        let Stage::Ready(ready) = std::mem::replace(&mut f.stage, Stage::Shown) else {
            unreachable!("show() is called on a ready frame");
        };
        let mut latency = f.latency;
        let mut shown = Shown {
            frame: f.frame,
            pts_s: f.pts_s,
            capture_s: f.capture_s,
            start_s: f.start_s,
            shown_s: now_s,
            config: f.config,
            origin: Origin::Remote,
            fallback: None,
            stand_in_ms: None,
            detections: Vec::new(),
            latency,
            bytes_up: f.sent.map_or(0, |s| s.1),
            bytes_down: 0,
            server_batch: None,
        };
        let total_ms = (now_s - f.capture_s) * 1e3;
        let mut feed_latency = true;
        match ready {
            Ready::Remote(r) => {
                latency.server_decode_ms = r.decode_ms;
                latency.server_queue_ms = r.queue_ms;
                latency.server_inference_ms = r.inference_ms;
                latency.server_other_ms =
                    (r.total_ms - r.decode_ms - r.queue_ms - r.inference_ms).max(0.0);
                shown.bytes_down = r.bytes_down;
                shown.server_batch = Some(r.batch_size);
                self.last_remote = r.detections.clone();
                shown.detections = r.detections;
            }
            Ready::Local {
                detector,
                result,
                reason,
                spent_s,
            } => {
                shown.fallback = reason;
                latency.network_ms = spent_s * 1e3;
                local(&mut latency, &mut shown, detector, result, 1.0);
            }
            Ready::StandIn { reason, waited_s } => {
                let s = f.stand_in.as_mut().expect("a stand-in");
                let result = s.result.clone().expect("the stand-in is done");
                // The breakdown follows the critical path: the wait for the network, then
                // whatever of the stand-in's work outlasted it (its parts in proportion).
                let device_ms = result.device_ms();
                let past_wait = if device_ms > 0.0 {
                    ((device_ms - waited_s * 1e3) / device_ms).max(0.0)
                } else {
                    0.0
                };
                shown.fallback = Some(reason);
                shown.stand_in_ms = Some(device_ms);
                latency.network_ms = waited_s * 1e3;
                local(&mut latency, &mut shown, s.detector, result, past_wait);
                feed_latency = false;
            }
            Ready::Repeated => {
                shown.detections = self.last_remote.clone();
                shown.origin = Origin::Repeated;
                feed_latency = false;
            }
            Ready::Nothing { reason } => {
                shown.origin = Origin::Nothing;
                shown.fallback = Some(reason);
            }
        }
        latency.total_ms = total_ms;
        // Whatever the parts miss (rounding of the server's microseconds; the client's own
        // work after the result): the network part absorbs it for a remote result.
        let gap = total_ms - latency.parts_ms();
        if shown.origin == Origin::Remote {
            latency.network_ms = (latency.network_ms + gap).max(0.0);
        } else {
            latency.post_ms = gap.max(0.0);
        }
        shown.latency = latency;
        if feed_latency {
            self.policy.observe(&Sample::Shown {
                at_s: now_s,
                latency_ms: total_ms,
            });
        }
        shown
    }
}

/// A local result into the shown record, its device parts scaled by `share` (the part on the
/// critical path).
fn local(
    latency: &mut LatencyBreakdown,
    shown: &mut Shown,
    detector: usize,
    result: LocalResult,
    share: f64,
) {
    latency.local_preprocess_ms = result.preprocess_ms * share;
    latency.local_inference_ms = result.inference_ms * share;
    latency.local_postprocess_ms = result.postprocess_ms * share;
    shown.origin = Origin::Local { detector };
    match result.detections {
        Ok(d) => shown.detections = d,
        Err(e) => shown.fallback = Some(format!("local detection failed: {e}")),
    }
}

fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
mod tests;
