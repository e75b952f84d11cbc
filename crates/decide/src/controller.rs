//! The online controller: re-decides every window or when the network changes a lot, keeps the
//! current configuration unless another is clearly better (hysteresis), probes before
//! upgrading, and logs every decision with its reasons.

use crate::candidates::{Candidate, CandidateKey};
use crate::estimator::{EstimatorSettings, NetEstimate, NetworkEstimator};
use crate::optimiser::{NetState, Optimiser, Prediction, Requirements, Violation};
use deepoffload_core::Placement;
use serde::Serialize;

/// Weight of one server report in the smoothed server-time ratio (about ten frames' memory).
const SERVER_SCALE_ALPHA: f64 = 0.1;

/// Tuning of the controller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerSettings {
    /// Seconds between regular decisions.
    pub window_s: f64,
    /// Another configuration replaces the current one only if its utility is this much higher
    /// (relative), unless the current one no longer meets the requirements.
    pub hysteresis: f64,
    /// A relative change of the uplink estimate this large triggers a decision at once.
    pub change_trigger: f64,
    /// Probe for more bandwidth at most this often, seconds.
    pub probe_every_s: f64,
    /// A probe decides as if the uplink were this many times the estimate.
    pub probe_gain: f64,
    /// Latency prediction errors (measured − predicted) younger than this give each
    /// candidate its chance of meeting the bound, seconds.
    pub error_window_s: f64,
    /// A configuration meets the latency bound when it is on time with at least this chance.
    pub min_on_time: f64,
    /// Assumed uplink before any measurement, bits per second (0 = start local).
    pub initial_uplink_bps: f64,
    /// Assumed round trip before any measurement, ms.
    pub initial_rtt_ms: f64,
    /// Bytes of padding a probe ping carries when no frame has measured the uplink for
    /// `probe_after_s` (running locally, or remote frames of one packet): without it the
    /// estimate would freeze at whatever the last frame saw, and a low one would keep the
    /// client local for good. 0 turns probe pings off.
    pub probe_bytes: usize,
    /// See `probe_bytes`, seconds.
    pub probe_after_s: f64,
    /// When remote frames get a stand-in (see [`Hedge`]).
    pub hedge: Hedge,
    pub estimator: EstimatorSettings,
}

/// When the device runs its quickest detector beside a remote frame, so that a remote result
/// that would break the latency bound is replaced by the stand-in's, on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hedge {
    /// Never: a late remote result is waited for (up to the deadline).
    Off,
    /// On every remote frame.
    #[default]
    Always,
    /// Unless every recent window would have been on time with the configuration in force:
    /// on a steady link the stand-in would only cost energy (on the study's phone, 0.63
    /// against 0.42 J per frame on the LTE trace), and the first late window re-enables it —
    /// after that window was late.
    #[serde(rename = "uncertain")]
    WhenUncertain,
}

impl std::str::FromStr for Hedge {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Hedge::Off),
            "always" => Ok(Hedge::Always),
            "uncertain" | "when-uncertain" => Ok(Hedge::WhenUncertain),
            _ => Err(format!(
                "unknown hedge mode `{s}`; choose off, always or uncertain"
            )),
        }
    }
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            window_s: 1.0,
            hysteresis: 0.05,
            change_trigger: 0.3,
            probe_every_s: 5.0,
            probe_gain: 1.5,
            error_window_s: 10.0,
            min_on_time: 0.85,
            initial_uplink_bps: 1e6,
            initial_rtt_ms: 50.0,
            probe_bytes: 4000,
            probe_after_s: 1.0,
            hedge: Hedge::default(),
            estimator: EstimatorSettings::default(),
        }
    }
}

/// Window means of prediction errors needed before they give a chance and a margin (fewer:
/// a step at the bound, no margin).
const MIN_ERROR_WINDOWS: usize = 5;

/// One decision with everything that led to it.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionLog {
    pub time_s: f64,
    /// `start`, `window`, `network change` or `probe`.
    pub reason: &'static str,
    pub estimate: NetEstimate,
    /// The network the decision assumed (the estimate, or the probe's optimistic view).
    pub assumed: NetState,
    /// The chosen configuration's chance of meeting the latency bound, from recent
    /// prediction errors.
    pub on_time: f64,
    /// The server's measured time per frame over its profiled time (see
    /// [`Controller::on_server_time`]).
    pub server_scale: f64,
    /// The latency margin the decision kept (the `min_on_time` percentile of recent
    /// prediction errors averaged per window, ms), and how many window means it came from.
    pub margin_ms: f64,
    pub prediction_errors: usize,
    pub chosen: CandidateKey,
    pub index: usize,
    pub predicted: Prediction,
    pub feasible: bool,
    pub violations: Vec<Violation>,
    pub runner_up: Option<(CandidateKey, Prediction)>,
    /// The configuration before, when this decision changed it.
    pub previous: Option<CandidateKey>,
}

/// Decides online from the estimator's view of the network.
#[derive(Debug, Clone)]
pub struct Controller {
    optimiser: Optimiser,
    requirements: Requirements,
    settings: ControllerSettings,
    estimator: NetworkEstimator,
    current: Option<usize>,
    last_decision_s: f64,
    decided_uplink_bps: f64,
    last_probe_s: f64,
    probing: bool,
    /// (time, measured − predicted latency) of recent frames.
    errors: std::collections::VecDeque<(f64, f64)>,
    /// Predicted latency of the configuration in force, ms.
    current_predicted_ms: f64,
    /// Its chance on time, and how many window errors that rests on, when decided.
    current_on_time: (f64, usize),
}

impl Controller {
    pub fn new(
        optimiser: Optimiser,
        requirements: Requirements,
        settings: ControllerSettings,
    ) -> Self {
        Self {
            estimator: NetworkEstimator::new(settings.estimator.clone()),
            optimiser,
            requirements,
            settings,
            current: None,
            last_decision_s: f64::NEG_INFINITY,
            decided_uplink_bps: 0.0,
            last_probe_s: 0.0,
            probing: false,
            errors: std::collections::VecDeque::new(),
            current_predicted_ms: f64::NAN,
            current_on_time: (0.0, 0),
        }
    }

    pub fn optimiser(&self) -> &Optimiser {
        &self.optimiser
    }

    /// The frame rate of the camera feeding the pipeline (the video's own rate in the client).
    pub fn set_camera_fps(&mut self, fps: f64) {
        if fps > 0.0 && fps.is_finite() {
            self.optimiser.camera_fps = fps;
        }
    }

    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }

    /// The configuration in force (index into the optimiser's candidates).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    pub fn current_candidate(&self) -> Option<&Candidate> {
        self.current.map(|i| &self.optimiser.list()[i])
    }

    /// A remote frame's result arrived: `bytes` sent, `network_ms` of network time.
    pub fn on_frame(&mut self, now_s: f64, bytes: u64, network_ms: f64) {
        self.estimator.on_frame(now_s, bytes, network_ms);
    }

    /// A frame's result was shown `latency_ms` after capture: feeds the prediction errors
    /// that give each candidate its chance of meeting the latency bound.
    pub fn on_latency(&mut self, now_s: f64, latency_ms: f64) {
        if self.current.is_none() || !latency_ms.is_finite() {
            return;
        }
        let predicted = self.current_predicted_ms;
        if predicted.is_finite() {
            self.errors.push_back((now_s, latency_ms - predicted));
        }
        while self
            .errors
            .front()
            .is_some_and(|&(t, _)| now_s - t > self.settings.error_window_s)
        {
            self.errors.pop_front();
        }
    }

    /// Recent prediction errors averaged per decision window, oldest first: the bound is on a
    /// window's mean latency (as `evaluate` scores it), so judging candidates by single frames
    /// held back configurations whose frames vary but whose windows are on time.
    fn window_errors(&self) -> Vec<f64> {
        let window = self.settings.window_s.max(1e-3);
        let mut means: Vec<f64> = Vec::new();
        let mut current: Option<(i64, f64, usize)> = None;
        for &(t, e) in &self.errors {
            let k = (t / window).floor() as i64;
            match &mut current {
                Some((at, sum, n)) if *at == k => {
                    *sum += e;
                    *n += 1;
                }
                _ => {
                    means.extend(current.map(|(_, sum, n)| sum / n as f64));
                    current = Some((k, e, 1));
                }
            }
        }
        means.extend(current.map(|(_, sum, n)| sum / n as f64));
        means
    }

    /// The server reported `server_ms` for a frame of the configuration in force (decode,
    /// batching wait and inference): predictions scale every candidate's server time by the
    /// smoothed ratio to the profile, so a shared or slower server moves the choice before
    /// its results come late.
    pub fn on_server_time(&mut self, server_ms: f64) {
        let Some(c) = self.current_candidate() else {
            return;
        };
        let measured = server_ms.is_finite() && server_ms > 0.0;
        if c.key.placement != Placement::Remote || c.server_ms <= 0.0 || !measured {
            return;
        }
        let ratio = (server_ms / c.server_ms).clamp(0.25, 10.0);
        let scale = &mut self.optimiser.server_scale;
        *scale = (1.0 - SERVER_SCALE_ALPHA) * *scale + SERVER_SCALE_ALPHA * ratio;
    }

    /// Padding for the next ping: [`ControllerSettings::probe_bytes`] when the uplink
    /// estimate has had no sample for a while, else 0 (a bare ping measures the round trip).
    pub fn probe_bytes(&mut self, now_s: f64) -> usize {
        let age = self.estimator.estimate(now_s).age_s;
        if age >= self.settings.probe_after_s {
            self.settings.probe_bytes
        } else {
            0
        }
    }

    /// A probe ping carrying `bytes` came back after `rtt_ms`: its transfer is a throughput
    /// sample like a frame's.
    pub fn on_probe(&mut self, now_s: f64, bytes: usize, rtt_ms: f64) {
        self.estimator.on_frame(now_s, bytes as u64, rtt_ms);
    }

    /// A ping's round trip, ms.
    pub fn on_rtt(&mut self, now_s: f64, rtt_ms: f64) {
        self.estimator.on_rtt(now_s, rtt_ms);
    }

    /// Whether the next remote frame gets a stand-in, by [`ControllerSettings::hedge`]. Under
    /// [`Hedge::WhenUncertain`]: unless the configuration in force would have been on time in
    /// every recent window (too few windows yet count as uncertain).
    pub fn hedge_now(&self) -> bool {
        match self.settings.hedge {
            Hedge::Off => false,
            Hedge::Always => true,
            Hedge::WhenUncertain => {
                let (chance, windows) = self.current_on_time;
                windows < MIN_ERROR_WINDOWS || chance < 1.0
            }
        }
    }

    pub fn estimate(&mut self, now_s: f64) -> NetEstimate {
        self.estimator.estimate(now_s)
    }

    /// Decides when a window has passed, the network changed a lot, or nothing is chosen yet;
    /// returns the decision taken (changed or not), `None` when it was not time.
    pub fn poll(
        &mut self,
        now_s: f64,
        allowed: impl Fn(&Candidate) -> bool,
    ) -> Option<DecisionLog> {
        let estimate = self.estimator.estimate(now_s);
        let measured = estimate.ewma_bps > 0.0;
        let uplink = if measured {
            estimate.uplink_bps
        } else {
            self.settings.initial_uplink_bps
        };
        // Propagation only: the windowed minimum. Queueing and transfer are in the uplink
        // estimate, and whatever the model misses is in the latency margin.
        let rtt = if estimate.rtt_min_ms > 0.0 {
            estimate.rtt_min_ms
        } else {
            self.settings.initial_rtt_ms
        };
        let changed = self.decided_uplink_bps > 0.0
            && ((uplink - self.decided_uplink_bps).abs() / self.decided_uplink_bps
                > self.settings.change_trigger);
        let due = now_s - self.last_decision_s >= self.settings.window_s;
        let reason = if self.current.is_none() {
            "start"
        } else if changed && !self.probing {
            "network change"
        } else if due {
            "window"
        } else {
            return None;
        };
        let req = &self.requirements;
        let errors = self.window_errors();
        let bound = req.max_latency_ms;
        // The chance a prediction is on time: the share of recent windows whose mean
        // prediction error would still have kept it within the bound (a step at the bound
        // until there are enough of them).
        let on_time = |predicted: f64| {
            if errors.len() < MIN_ERROR_WINDOWS {
                return if predicted <= bound { 1.0 } else { 0.0 };
            }
            errors.iter().filter(|&&e| predicted + e <= bound).count() as f64 / errors.len() as f64
        };
        // The error recent windows stayed within with the chance asked for: a prediction
        // this far under the bound is on time that often (none until there are enough).
        let margin = if errors.len() < MIN_ERROR_WINDOWS {
            0.0
        } else {
            let mut sorted = errors.clone();
            sorted.sort_by(f64::total_cmp);
            let k = (self.settings.min_on_time * sorted.len() as f64).ceil() as usize;
            sorted[k.clamp(1, sorted.len()) - 1]
        };
        let mut net = NetState {
            uplink_bps: uplink,
            rtt_ms: rtt,
        };
        let mut decision = self
            .optimiser
            .decide_with(&net, req, &allowed, margin, on_time)?;
        let mut reason = reason;
        self.probing = false;
        // Probe: when the bit rate is what holds the choice back (or the estimate is stale),
        // try the choice an optimistic uplink would make, for one window.
        if reason == "window" && now_s - self.last_probe_s >= self.settings.probe_every_s {
            let floor = self
                .optimiser
                .list()
                .iter()
                .filter(|c| c.key.placement == Placement::Remote && allowed(c))
                .map(|c| c.key.bitrate_bps as f64)
                .fold(f64::INFINITY, f64::min)
                / req.bitrate_safety.max(1e-9);
            let optimistic = NetState {
                uplink_bps: (uplink * self.settings.probe_gain).max(if floor.is_finite() {
                    floor
                } else {
                    0.0
                }),
                ..net
            };
            if let Some(p) = self
                .optimiser
                .decide_with(&optimistic, req, &allowed, margin, on_time)
            {
                let up = &self.optimiser.list()[p.chosen].key;
                let now = &self.optimiser.list()[decision.chosen].key;
                let more = up.placement == Placement::Remote
                    && (now.placement == Placement::Local || up.bitrate_bps > now.bitrate_bps);
                if more && p.prediction.utility > decision.prediction.utility {
                    decision = p;
                    net = optimistic;
                    reason = "probe";
                    self.probing = true;
                    self.last_probe_s = now_s;
                }
            }
        }
        // Hysteresis: keep the current configuration unless the new one is clearly better or
        // the current one stopped meeting the requirements.
        if let Some(cur) = self
            .current
            .filter(|&c| c != decision.chosen && reason != "probe")
        {
            let c = &self.optimiser.list()[cur];
            if allowed(c) {
                let (p, violation, expected) = self.optimiser.judge(c, &net, req, margin, on_time);
                let new = &self.optimiser.list()[decision.chosen];
                let (_, new_violation, new_expected) =
                    self.optimiser.judge(new, &net, req, margin, on_time);
                // Keep it when it misses no more than the newcomer and is nearly as good (this
                // also holds when a soft floor is out of everyone's reach).
                if violation <= new_violation
                    && new_expected <= expected * (1.0 + self.settings.hysteresis)
                {
                    decision.runner_up = Some((decision.chosen, decision.prediction));
                    decision.chosen = cur;
                    decision.prediction = p;
                    decision.feasible = violation == 0.0;
                    decision.violations = if decision.feasible {
                        Vec::new()
                    } else {
                        self.optimiser.violations(c, &p, &net, req)
                    };
                }
            }
        }
        let previous = self
            .current
            .filter(|&c| c != decision.chosen)
            .map(|c| self.optimiser.list()[c].key.clone());
        self.current = Some(decision.chosen);
        self.current_predicted_ms = decision.prediction.latency_ms;
        self.current_on_time = (on_time(decision.prediction.latency_ms), errors.len());
        self.last_decision_s = now_s;
        self.decided_uplink_bps = uplink;
        let list = self.optimiser.list();
        Some(DecisionLog {
            time_s: now_s,
            reason,
            estimate,
            assumed: net,
            on_time: on_time(decision.prediction.latency_ms),
            server_scale: self.optimiser.server_scale,
            margin_ms: margin,
            prediction_errors: errors.len(),
            chosen: list[decision.chosen].key.clone(),
            index: decision.chosen,
            predicted: decision.prediction,
            feasible: decision.feasible,
            violations: decision.violations,
            runner_up: decision.runner_up.map(|(i, p)| (list[i].key.clone(), p)),
            previous,
        })
    }
}
