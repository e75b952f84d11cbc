//! `--placement auto`: the decision engine's controller inside the runtime. It sees what the
//! pipeline sees (results with their network time, pings), re-decides every window, and the
//! runtime applies its choice — placement, resolution, frame rate and bit rate — from the next
//! frame on.

use crate::record::FrameRecord;
use deepoffload_core::Placement;
use deepoffload_decide::{Candidate, Controller, DecisionLog};
use deepoffload_video::Sampler;
use std::time::Duration;

/// What the runtime needs to decide by itself.
#[derive(Debug, Clone)]
pub struct AutoOptions {
    pub controller: Controller,
    /// Ping the server this often (round-trip samples while frames run locally).
    pub ping_every: Duration,
}

/// The knobs the runtime turns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Knobs {
    pub placement: Placement,
    pub width: u32,
    pub height: u32,
    /// Analysed frames per second (`None`: every source frame).
    pub fps: Option<f64>,
    pub bitrate_bps: u32,
    /// Which of the local detectors local frames run on (index into those given to `run`).
    pub local: usize,
}

/// The controller with the state the runtime keeps for it.
pub(crate) struct Auto {
    controller: Controller,
    /// (model, input size) of each local detector, in the order `run` was given them.
    local_models: Vec<(String, u32)>,
    source: (u32, u32, f64),
    sampler: Option<(f64, Sampler)>,
    pub decisions: Vec<DecisionLog>,
    pub ping_every: Duration,
}

/// Which local detector runs `model` at `size`.
fn local_index(locals: &[(String, u32)], model: &str, size: u32) -> Option<usize> {
    locals.iter().position(|(m, s)| m == model && *s == size)
}

fn even(v: f64) -> u32 {
    ((v / 2.0).round() as u32 * 2).max(2)
}

impl Auto {
    pub fn new(
        options: &AutoOptions,
        local_models: Vec<(String, u32)>,
        source: (u32, u32, f64),
    ) -> Self {
        let mut controller = options.controller.clone();
        controller.set_camera_fps(source.2);
        Self {
            controller,
            local_models,
            source,
            sampler: None,
            decisions: Vec::new(),
            ping_every: options.ping_every,
        }
    }

    /// Decides when it is time; returns the knobs of a decision that changed them.
    /// `server` is the model the connected server runs (`None` without a session).
    pub fn poll(
        &mut self,
        now_s: f64,
        server: Option<(&str, u32)>,
        current: &Knobs,
    ) -> Option<Knobs> {
        let locals = &self.local_models;
        let allowed = |c: &Candidate| match c.key.placement {
            Placement::Local => local_index(locals, &c.key.model, c.key.input_size).is_some(),
            Placement::Remote => {
                server.is_some_and(|(m, s)| c.key.model == m && c.key.input_size == s)
            }
        };
        let log = self.controller.poll(now_s, allowed)?;
        let k = &log.chosen;
        let (w, h, source_fps) = self.source;
        let knobs = Knobs {
            placement: k.placement,
            width: even(w as f64 * k.scale),
            height: even(h as f64 * k.scale),
            fps: Some(if source_fps > 0.0 {
                k.fps.min(source_fps)
            } else {
                k.fps
            }),
            bitrate_bps: if k.placement == Placement::Remote {
                k.bitrate_bps as u32
            } else {
                current.bitrate_bps
            },
            local: match k.placement {
                Placement::Local => {
                    local_index(&self.local_models, &k.model, k.input_size).unwrap_or(current.local)
                }
                Placement::Remote => current.local,
            },
        };
        if log.previous.is_some() || self.decisions.is_empty() {
            tracing::info!(
                reason = log.reason,
                uplink_kbps = (log.estimate.uplink_bps / 1e3).round(),
                rtt_ms = log.estimate.rtt_min_ms.round(),
                predicted_latency_ms = log.predicted.latency_ms.round(),
                predicted_fps = log.predicted.fps,
                predicted_f1 = log.predicted.accuracy,
                feasible = log.feasible,
                "auto: {}{}",
                log.chosen,
                log.previous
                    .as_ref()
                    .map_or(String::new(), |p| format!(" (was {p})"))
            );
        }
        self.decisions.push(log);
        (knobs != *current).then_some(knobs)
    }

    /// Whether the frame at `pts` is analysed at the current frame rate.
    pub fn keep(&mut self, pts: Duration, fps: Option<f64>) -> bool {
        let Some(fps) = fps else { return true };
        if self.sampler.as_ref().is_none_or(|(f, _)| *f != fps) {
            self.sampler = Some((fps, Sampler::new(fps)));
        }
        self.sampler.as_mut().expect("just set").1.keep(pts)
    }

    /// Learns from an analysed frame: its latency against the prediction (the margin the
    /// controller keeps), a remote result's bytes and network time, or a fallback after the
    /// frame was sent (the network took at least that long).
    pub fn on_record(&mut self, now_s: f64, record: &FrameRecord) {
        if record.skipped || record.stand_in_ms.is_some() {
            // Nothing was analysed: the previous result is shown again. Or the hedge's
            // stand-in was shown: the remote result, when it comes, is what measures.
            return;
        }
        self.controller.on_latency(now_s, record.latency.total_ms);
        if record.placement == Placement::Remote {
            self.controller.on_server_time(record.latency.server_ms());
        }
        if record.bytes_up > 0 {
            self.controller
                .on_frame(now_s, record.bytes_up, record.latency.network_ms);
        }
    }

    /// A hedged frame's remote result came after the stand-in's was shown (or the deadline
    /// passed): its network time is a throughput sample like any other, and its latency is
    /// the remote path's.
    pub fn on_late_result(&mut self, now_s: f64, bytes: u64, network_ms: f64, latency_ms: f64) {
        self.controller.on_latency(now_s, latency_ms);
        self.controller.on_frame(now_s, bytes, network_ms);
    }

    /// Whether the next remote frame gets a stand-in (see `Controller::hedge_now`).
    pub fn hedge_now(&self) -> bool {
        self.controller.hedge_now()
    }

    /// Padding for a probe behind the next ping (0: none needed).
    pub fn probe_bytes(&mut self, now_s: f64) -> usize {
        self.controller.probe_bytes(now_s)
    }

    pub fn on_probe(&mut self, now_s: f64, bytes: usize, rtt: Duration) {
        self.controller
            .on_probe(now_s, bytes, rtt.as_secs_f64() * 1e3);
    }

    pub fn on_ping(&mut self, now_s: f64, rtt: Duration) {
        self.controller.on_rtt(now_s, rtt.as_secs_f64() * 1e3);
    }
}
