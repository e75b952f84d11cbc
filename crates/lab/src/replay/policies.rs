//! The replay's baselines beyond the pipeline's own fixed and adaptive policies.

use deepoffload_decide::NetworkEstimator;
use deepoffload_pipeline::{Policy, Sample, SessionInfo};

/// AWStream's knob only: the fixed remote configuration, its bit rate picked every window as
/// the highest that fits the estimated uplink.
pub(super) struct BandwidthOnly {
    pub estimator: NetworkEstimator,
    /// Same configuration at each bit rate, ascending.
    pub ladder: Vec<(u64, usize)>,
    pub current: usize,
    pub next_decision: f64,
    pub window_s: f64,
    pub safety: f64,
}

impl Policy for BandwidthOnly {
    fn choose(&mut self, now: f64, _session: Option<&SessionInfo>) -> usize {
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
    fn observe(&mut self, sample: &Sample) {
        match *sample {
            Sample::Frame {
                at_s,
                bytes,
                network_ms,
                ..
            }
            | Sample::Late {
                at_s,
                bytes,
                network_ms,
                ..
            } => self.estimator.on_frame(at_s, bytes, network_ms),
            Sample::Rtt { at_s, rtt_ms } => self.estimator.on_rtt(at_s, rtt_ms),
            Sample::Shown { .. } | Sample::Probe { .. } => {}
        }
    }
}
