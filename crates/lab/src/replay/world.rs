//! The simulated world the replay drives the device pipeline through: a camera at the
//! profile's frame rate, device and server times from the profile, and the network carried by
//! the link emulator's own timing model. Every per-frame rule (which frame, deadlines, the
//! stand-in, late results, samples) is the pipeline's; this file only says when things happen.

use super::{FrameOutcome, ProbeSent, ReplaySettings, FRAME_OVERHEAD_BYTES, RESULT_BYTES};
use deepoffload_core::Placement;
use deepoffload_decide::Optimiser;
use deepoffload_net::link::{Direction, DirectionSpec, LossMode, Shaper, Trace, MTU};
use deepoffload_pipeline::{
    Action, Captured, Choice, DeviceTimes, FrameId, LocalResult, Origin, Pipeline, Policy,
    RemoteResult, SessionInfo, Settings,
};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a bare ping.
const PING_BYTES: usize = 64;

/// What happens at a simulated instant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Sent(FrameId),
    /// A detector (candidate) finished a frame; `stand_in`: the hedge's.
    Detected(FrameId, usize, bool),
    /// The server's result is back, with the server's time.
    Result(FrameId, f64),
    Pong(usize, f64),
}

/// A frame in the pipeline: its configuration and the device time spent on it so far.
#[derive(Debug, Clone, Copy)]
struct Busy {
    frame: FrameId,
    config: usize,
    device_s: f64,
    sent: bool,
}

/// The pipeline's table for the replay: configuration `i` is candidate `i`, sampled at the
/// rate it reaches after encoder skipping; a remote one falls back to (and hedges with)
/// `fallback[i]`.
pub(super) fn table(optimiser: &Optimiser, fallback: &[Option<usize>]) -> Vec<Choice> {
    let list = optimiser.list();
    (0..list.len())
        .map(|i| Choice {
            placement: list[i].key.placement,
            fps: Some(list[i].max_fps.max(0.1)),
            local: (list[i].key.placement == Placement::Local).then_some(i),
            fallback: fallback[i],
        })
        .collect()
}

fn dur(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The world with the pipeline in it; cloned whole by the oracle to try a choice ahead.
#[derive(Clone)]
pub(super) struct World<'a, P> {
    optimiser: &'a Optimiser,
    settings: &'a ReplaySettings,
    pub pipeline: Pipeline<P>,
    up: Direction,
    down: Direction,
    /// Pending events in the order scheduled (a handful: a linear scan beats a heap).
    events: Vec<(f64, Event)>,
    now: f64,
    /// The next camera frame to offer while the pipeline waits for one.
    camera_next: Option<u64>,
    busy: Vec<Busy>,
    /// When the pipeline last let go of a frame: it chose the next one then.
    released_at: f64,
}

impl<'a, P: Policy> World<'a, P> {
    pub fn new(
        optimiser: &'a Optimiser,
        settings: &'a ReplaySettings,
        trace: Arc<Trace>,
        table: Vec<Choice>,
        bound_s: Option<f64>,
        policy: P,
    ) -> Self {
        let delay = Duration::from_secs_f64(settings.rtt_ms / 2e3);
        let direction = |shaper, queue_bytes, seed| {
            let spec = DirectionSpec {
                delay,
                queue_bytes,
                ..DirectionSpec::default()
            };
            let spec = match shaper {
                Some(shaper) => DirectionSpec { shaper, ..spec },
                None => spec,
            };
            Direction::new(spec, seed)
        };
        let pipeline_settings = Settings {
            deadline_s: settings.deadline_ms / 1e3,
            hedge_bound_s: bound_s,
            ping_every_s: settings.ping_every_s,
            ..Settings::default()
        };
        let mut pipeline = Pipeline::new(pipeline_settings, table, policy);
        let session = SessionInfo {
            generation: 1,
            model: String::new(),
            input_size: 0,
        };
        pipeline.handle_session(0.0, Some(session));
        Self {
            optimiser,
            settings,
            pipeline,
            up: direction(Some(Shaper::trace(trace)), usize::MAX, 1),
            down: direction(None, DirectionSpec::default().queue_bytes, 2),
            events: Vec::new(),
            now: 0.0,
            camera_next: None,
            busy: Vec::new(),
            released_at: 0.0,
        }
    }

    fn device_s(&self, candidate: usize) -> f64 {
        self.optimiser.list()[candidate].device_ms / 1e3
    }

    fn busy(&mut self, frame: FrameId) -> &mut Busy {
        let i = self.busy.iter().position(|b| b.frame == frame);
        &mut self.busy[i.expect("a frame in the pipeline")]
    }

    /// Sends `bytes` up at `at` in packets; when the last one arrives.
    fn send_up(&mut self, at: f64, bytes: f64) -> f64 {
        let (mut left, mut arrival) = (bytes.ceil().max(1.0) as usize, at);
        while left > 0 {
            let len = left.min(MTU);
            left -= len;
            let a = self.up.send(dur(at), len, LossMode::Retransmit);
            arrival = arrival.max(a.expect("byte streams are never dropped").as_secs_f64());
        }
        arrival
    }

    fn send_down(&mut self, at: f64, bytes: usize) -> f64 {
        let a = self.down.send(dur(at), bytes, LossMode::Retransmit);
        a.expect("byte streams are never dropped").as_secs_f64()
    }

    /// Runs until the pipeline is ready for a frame at or after `end` (one it became ready
    /// for before `end` is taken and carried through, whenever the camera delivers it); shown
    /// frames and probes go to the caller's lists.
    pub fn run_until(
        &mut self,
        end: f64,
        frames: &mut Vec<FrameOutcome>,
        probes: &mut Vec<ProbeSent>,
    ) {
        while self.pipeline.in_flight() > 0 || self.released_at < end {
            self.offer_camera_frames();
            self.carry_out(frames, probes);
            let camera = self.camera_next.map(|k| k as f64 / self.camera_fps());
            let event = (0..self.events.len())
                .min_by(|&a, &b| self.events[a].0.total_cmp(&self.events[b].0));
            let next = [event.map(|i| self.events[i].0), camera]
                .into_iter()
                .flatten()
                .min_by(f64::total_cmp);
            // A result at the cutoff itself is on time: events go before the timer.
            match (next, self.pipeline.poll_timeout()) {
                (Some(t), Some(timer)) if timer < t => self.timeout(timer),
                (None, Some(timer)) => self.timeout(timer),
                (None, None) => return,
                (Some(t), _) => match event.filter(|&i| self.events[i].0 <= t) {
                    Some(i) => {
                        let (at, e) = self.events.remove(i);
                        self.now = self.now.max(at);
                        self.handle(e);
                    }
                    None => self.now = self.now.max(t),
                },
            }
        }
    }

    fn timeout(&mut self, timer: f64) {
        self.now = self.now.max(timer);
        self.pipeline.handle_timeout(timer);
    }

    fn camera_fps(&self) -> f64 {
        self.optimiser.camera_fps.max(1.0)
    }

    /// A pipeline ready for a frame is offered the newest camera frame, then each later one
    /// as it comes, until it takes one.
    fn offer_camera_frames(&mut self) {
        if self.pipeline.in_flight() > 0 || !self.pipeline.wants_frame(self.now) {
            self.camera_next = None;
            return;
        }
        let camera = self.camera_fps();
        // The 1e-9 keeps 0.7 × 30 = 20.999… on frame 21.
        let newest = (self.now * camera + 1e-9).floor() as u64;
        let mut k = self.camera_next.unwrap_or(newest).max(newest);
        self.camera_next = loop {
            let pts_s = k as f64 / camera;
            if pts_s > self.now + 1e-9 {
                break Some(k);
            }
            let frame = Captured {
                index: k,
                pts_s,
                captured_s: pts_s,
            };
            if self.pipeline.handle_frame(self.now, frame) {
                break None;
            }
            k += 1;
        };
    }

    fn handle(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Sent(frame) => self.send(frame),
            Event::Detected(frame, c, stand_in) => {
                let result = LocalResult {
                    detections: Ok(Vec::new()),
                    preprocess_ms: 0.0,
                    inference_ms: self.device_s(c) * 1e3,
                    postprocess_ms: 0.0,
                };
                if stand_in {
                    self.pipeline.handle_stand_in_result(now, frame, result);
                } else {
                    self.pipeline.handle_local_result(now, frame, 0.0, result);
                }
            }
            Event::Result(frame, server_ms) => {
                let result = RemoteResult {
                    bytes_down: RESULT_BYTES as u64,
                    inference_ms: server_ms,
                    total_ms: server_ms,
                    batch_size: 1,
                    ..RemoteResult::default()
                };
                self.pipeline.handle_remote_result(now, frame, result);
            }
            Event::Pong(padding, rtt_ms) => self.pipeline.handle_pong(now, padding, rtt_ms),
        }
    }

    /// The frame leaves the encoder: its bytes go up, the server answers, the result comes
    /// down — or comes too late, which is the pipeline's to judge.
    fn send(&mut self, frame: FrameId) {
        let config = {
            let busy = self.busy(frame);
            busy.sent = true;
            busy.config
        };
        let c = &self.optimiser.list()[config];
        let bytes = c.bytes_per_frame + FRAME_OVERHEAD_BYTES;
        let server_ms = c.server_ms + self.settings.server_overhead_ms;
        let arrived = self.send_up(self.now, bytes);
        let back = self.send_down(arrived + server_ms / 1e3, RESULT_BYTES);
        self.events.push((back, Event::Result(frame, server_ms)));
        let sent = DeviceTimes::default();
        self.pipeline
            .handle_sent(self.now, frame, bytes as u64, sent);
    }

    /// Runs candidate `c` on the device for `frame`: its time is the profile's.
    fn detect(&mut self, frame: FrameId, c: usize, stand_in: bool) {
        let device_s = self.device_s(c);
        self.busy(frame).device_s += device_s;
        let at = self.now + device_s;
        self.events.push((at, Event::Detected(frame, c, stand_in)));
    }

    /// Carries out what the pipeline asks.
    fn carry_out(&mut self, frames: &mut Vec<FrameOutcome>, probes: &mut Vec<ProbeSent>) {
        while let Some(action) = self.pipeline.poll_action() {
            let now = self.now;
            match action {
                Action::Analyse {
                    frame,
                    config,
                    detector,
                    ..
                } => {
                    // A remote frame's device time is its encoding.
                    let device_s = if detector.is_none() {
                        self.device_s(config)
                    } else {
                        0.0
                    };
                    self.busy.push(Busy {
                        frame,
                        config,
                        device_s,
                        sent: false,
                    });
                    match detector {
                        None => self.events.push((now + device_s, Event::Sent(frame))),
                        Some(d) => self.detect(frame, d, false),
                    }
                }
                Action::RunLocal { frame, detector } => self.detect(frame, detector, false),
                Action::RunStandIn { frame, detector } => self.detect(frame, detector, true),
                // The link carries the result all the same; the pipeline ignores it.
                Action::Cancel { .. } => {}
                Action::Show(shown) => frames.push(self.outcome(&shown)),
                Action::Release { frame } => {
                    self.busy.retain(|b| b.frame != frame);
                    self.released_at = now;
                }
                Action::Ping { padding } => {
                    let bytes = if padding > 0 { padding } else { PING_BYTES };
                    let there = self.send_up(now, bytes as f64);
                    let back = self.send_down(there, PING_BYTES);
                    self.events
                        .push((back, Event::Pong(padding, (back - now) * 1e3)));
                    if padding > 0 {
                        probes.push(ProbeSent {
                            at: now,
                            bytes: padding as f64,
                        });
                    }
                }
            }
        }
    }

    /// What the scoring needs of a shown frame.
    fn outcome(&mut self, shown: &deepoffload_pipeline::Shown) -> FrameOutcome {
        let busy = *self.busy(shown.frame);
        let c = &self.optimiser.list()[shown.config];
        let remote = c.key.placement == Placement::Remote;
        FrameOutcome {
            candidate: match shown.origin {
                Origin::Local { detector } => detector,
                _ => shown.config,
            },
            capture_s: shown.capture_s,
            start_s: shown.start_s,
            done_s: shown.shown_s,
            device_busy_s: busy.device_s,
            bytes_up: if busy.sent {
                c.bytes_per_frame + FRAME_OVERHEAD_BYTES
            } else {
                0.0
            },
            bytes_down: if shown.origin == Origin::Remote {
                RESULT_BYTES as f64
            } else {
                0.0
            },
            remote,
            fallback: remote && matches!(shown.origin, Origin::Local { .. }),
        }
    }
}
