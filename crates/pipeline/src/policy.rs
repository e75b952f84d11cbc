//! Who picks the configuration of the next frame: one small trait, with the fixed choice and
//! the decision engine's controller as implementations (the replay adds its baselines).

use crate::{Sample, SessionInfo};
use deepoffload_decide::{Candidate, Controller, DecisionLog};
use std::sync::Arc;

/// Chooses the configuration of the next frame and learns from what the pipeline measures.
/// Configurations are ids into the pipeline's [`crate::Choice`] table.
pub trait Policy {
    /// The configuration for the next frame, chosen when the pipeline is ready to take one.
    fn choose(&mut self, now_s: f64, session: Option<&SessionInfo>) -> usize;
    /// What the pipeline measured (results, late results, pings, shown latencies).
    fn observe(&mut self, _sample: &Sample) {}
    /// Whether the next remote frame gets a stand-in (the pipeline's settings must allow it).
    fn hedge(&self) -> bool {
        true
    }
    /// Whether the pipeline pings the server (round-trip samples while frames run locally).
    fn wants_pings(&self) -> bool {
        false
    }
    /// Padding for a probe right behind the next ping (0: a bare ping only).
    fn probe_bytes(&mut self, _now_s: f64) -> usize {
        0
    }
}

/// One configuration for the whole run (fixed placements, the replay's fixed baselines).
#[derive(Debug, Clone, Copy)]
pub struct Fixed(pub usize);

impl Policy for Fixed {
    fn choose(&mut self, _now_s: f64, _session: Option<&SessionInfo>) -> usize {
        self.0
    }
}

/// Which candidates may be chosen right now (e.g. only remote ones the connected server
/// runs, only local ones the device has loaded).
pub type Allowed = Arc<dyn Fn(&Candidate, Option<&SessionInfo>) -> bool + Send + Sync>;

/// The decision engine's controller as the pipeline's policy: configuration ids are the
/// indices of the optimiser's candidates.
#[derive(Clone)]
pub struct Adaptive {
    pub controller: Controller,
    allowed: Allowed,
    /// Every decision, with its reasons.
    pub decisions: Vec<DecisionLog>,
}

impl Adaptive {
    /// Every candidate allowed.
    pub fn new(controller: Controller) -> Self {
        Self::with_allowed(controller, Arc::new(|_, _| true))
    }

    pub fn with_allowed(controller: Controller, allowed: Allowed) -> Self {
        Self {
            controller,
            allowed,
            decisions: Vec::new(),
        }
    }
}

impl Policy for Adaptive {
    fn choose(&mut self, now_s: f64, session: Option<&SessionInfo>) -> usize {
        let allowed = &self.allowed;
        if let Some(log) = self.controller.poll(now_s, |c| allowed(c, session)) {
            self.decisions.push(log);
        }
        self.controller.current().unwrap_or(0)
    }

    fn observe(&mut self, sample: &Sample) {
        let c = &mut self.controller;
        match *sample {
            Sample::Frame {
                at_s,
                bytes,
                network_ms,
                server_ms,
            } => {
                if let Some(ms) = server_ms {
                    c.on_server_time(ms);
                }
                c.on_frame(at_s, bytes, network_ms);
            }
            Sample::Late {
                at_s,
                bytes,
                network_ms,
                latency_ms,
            } => {
                c.on_frame(at_s, bytes, network_ms);
                c.on_latency(at_s, latency_ms);
            }
            Sample::Shown { at_s, latency_ms } => c.on_latency(at_s, latency_ms),
            Sample::Rtt { at_s, rtt_ms } => c.on_rtt(at_s, rtt_ms),
            Sample::Probe {
                at_s,
                bytes,
                rtt_ms,
            } => c.on_probe(at_s, bytes, rtt_ms),
        }
    }

    fn hedge(&self) -> bool {
        self.controller.hedge_now()
    }

    fn wants_pings(&self) -> bool {
        true
    }

    fn probe_bytes(&mut self, now_s: f64) -> usize {
        self.controller.probe_bytes(now_s)
    }
}
