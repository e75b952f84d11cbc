//! The optimiser: predicts every candidate's metrics under the current network and picks the
//! one with the highest utility among those meeting every requirement.

use crate::candidates::{Candidate, Candidates};
use deepoffload_core::{Placement, Radio};
use serde::Serialize;

/// Bytes of a result coming back (header + a few detections); small next to a frame.
const RESULT_BYTES: f64 = 300.0;
/// Protocol framing added to every frame sent.
const FRAME_OVERHEAD_BYTES: f64 = 60.0;

/// What the app asks for. Utility = `w_accuracy · accuracy + w_fps · fps / fps_max`, where
/// accuracy is the F1 of what the user sees (the result on screen, aged or tracked, averaged
/// over the time it is shown): it already prices frame rate and lateness, so by default it is
/// the whole objective (`w_fps` 0). DeepDecision's trade-off, which also rewards the analysis
/// rate itself, is `w_fps` > 0; a rate the app cannot do without is `min_fps`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirements {
    pub w_accuracy: f64,
    pub w_fps: f64,
    /// Longest acceptable capture-to-result latency, ms.
    pub max_latency_ms: f64,
    /// Lowest acceptable F1 (staleness included).
    pub min_accuracy: f64,
    /// Lowest acceptable analysed frame rate.
    pub min_fps: f64,
    /// A remote bit rate may use at most this share of the estimated uplink.
    pub bitrate_safety: f64,
    /// Highest acceptable device power (compute + radio), watts.
    pub max_power_w: f64,
    /// Highest acceptable data rate (up + down), bits per second.
    pub max_data_bps: f64,
    /// Radio technology that prices transfers.
    pub radio: Radio,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            w_accuracy: 1.0,
            w_fps: 0.0,
            max_latency_ms: 200.0,
            min_accuracy: 0.5,
            min_fps: 0.0,
            bitrate_safety: 0.8,
            max_power_w: f64::INFINITY,
            max_data_bps: f64::INFINITY,
            radio: Radio::Lte,
        }
    }
}

impl Requirements {
    /// The trade-off of the measurement study's engine (DeepDecision, INFOCOM '18), which the
    /// study's experiments replicate: accuracy plus half the normalised analysis rate, an F1
    /// floor of 0.5 (with staleness), the other requirements as by default.
    pub fn deepdecision() -> Self {
        Self {
            w_fps: 0.5,
            min_accuracy: 0.5,
            ..Self::default()
        }
    }
}

/// How frames are in flight; decides how latency limits the frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    /// One frame at a time (the study): fps ≤ 1 / latency.
    StopAndWait,
    /// Frames overlap: fps ≤ 1 / (slowest stage).
    Pipelined,
}

/// The network as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NetState {
    /// Usable uplink, bits per second (0 = no network).
    pub uplink_bps: f64,
    /// Round trip without queueing, ms.
    pub rtt_ms: f64,
}

/// A candidate's predicted metrics under one network state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Prediction {
    pub latency_ms: f64,
    pub fps: f64,
    /// F1 while results are on screen (staleness included).
    pub accuracy: f64,
    pub utility: f64,
    /// Device compute + radio, watts.
    pub power_w: f64,
    pub joules_per_frame: f64,
    /// Up + down, bits per second.
    pub data_bps: f64,
}

/// Which requirement a configuration misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    Latency,
    Accuracy,
    Fps,
    Bandwidth,
    Power,
    Data,
}

/// A missed requirement and by how much (relative to the bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub relative_excess: f64,
}

/// The outcome of one decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Index into the candidate list.
    pub chosen: usize,
    pub prediction: Prediction,
    /// False when no candidate meets every requirement: `chosen` is then the least-violating.
    pub feasible: bool,
    pub violations: Vec<Violation>,
    /// The next best candidate (feasible ones first), for the log.
    pub runner_up: Option<(usize, Prediction)>,
}

/// Exhaustive search over a profile's candidates.
#[derive(Debug, Clone)]
pub struct Optimiser {
    pub candidates: Candidates,
    pub mode: Mode,
    /// The highest frame rate of any candidate (normalises the fps term).
    pub fps_max: f64,
    /// Frame rate of the camera feeding the pipeline (how stale the newest frame is).
    pub camera_fps: f64,
    /// The server's time per frame as measured against its profile (1 = as profiled): an edge
    /// server shared with other clients, or busier than when profiled, takes longer, and the
    /// controller learns by how much from the server's own reports.
    pub server_scale: f64,
    /// The stand-in a hedged pipeline runs on every remote frame while it is in flight (index
    /// of a local candidate; `None`: no hedge). It costs power on every remote frame, and it
    /// is what the app sees when a remote result would break the latency bound — so a remote
    /// candidate's lateness costs its stand-in's quality, not the whole result.
    pub hedge: Option<usize>,
    radio_coefficients: Option<[f64; 3]>,
    radio: String,
}

impl Optimiser {
    pub fn new(candidates: Candidates, mode: Mode) -> Self {
        let fps_max = candidates
            .list
            .iter()
            .map(|c| c.key.fps)
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let mut o = Self {
            candidates,
            mode,
            fps_max,
            camera_fps: 30.0,
            server_scale: 1.0,
            hedge: None,
            radio_coefficients: None,
            radio: String::new(),
        };
        o.set_radio("lte");
        o
    }

    /// Hedges every remote frame with the quickest local candidate (see
    /// [`Optimiser::hedge`]); no local candidate, no hedge.
    pub fn hedged(mut self) -> Self {
        self.hedge = self
            .candidates
            .list
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key.placement == Placement::Local)
            .min_by(|a, b| a.1.device_ms.total_cmp(&b.1.device_ms))
            .map(|(i, _)| i);
        self
    }

    /// The share of the device's time the tracker takes: every camera frame is displayed, and
    /// tracked (0 with tracking off).
    pub fn tracker_busy_share(&self) -> f64 {
        self.candidates.tracker_ms * self.camera_fps / 1e3
    }

    /// The hedge's stand-in.
    pub fn stand_in(&self) -> Option<&Candidate> {
        self.hedge.map(|i| &self.candidates.list[i])
    }

    fn set_radio(&mut self, radio: &str) {
        if self.radio != radio {
            self.radio = radio.to_string();
            self.radio_coefficients = self.candidates.radio.get(radio).copied();
        }
    }

    pub fn list(&self) -> &[Candidate] {
        &self.candidates.list
    }

    /// Predicts one candidate's metrics.
    pub fn predict(&self, c: &Candidate, net: &NetState, req: &Requirements) -> Prediction {
        let remote = c.key.placement == Placement::Remote;
        let (latency_ms, bottleneck_ms) = if remote {
            if net.uplink_bps <= 0.0 {
                (f64::INFINITY, f64::INFINITY)
            } else {
                let transfer = (c.bytes_per_frame + FRAME_OVERHEAD_BYTES) * 8e3 / net.uplink_bps;
                let server = c.server_ms * self.server_scale;
                let l = c.device_ms + transfer + net.rtt_ms.max(0.0) + server;
                (l, c.device_ms.max(transfer).max(server))
            }
        } else {
            (c.device_ms, c.device_ms)
        };
        let cycle_ms = match self.mode {
            Mode::StopAndWait => latency_ms,
            Mode::Pipelined => bottleneck_ms,
        };
        // A live camera: when processing outlasts the analysis interval, the pipeline takes
        // the newest camera frame, captured on average half a camera interval earlier.
        let interval_ms = 1e3 / c.max_fps.max(1e-9);
        let latency_ms = if cycle_ms >= interval_ms {
            latency_ms + 500.0 / self.camera_fps
        } else {
            latency_ms
        };
        let fps = if cycle_ms.is_finite() && cycle_ms > 0.0 {
            c.max_fps.min(1e3 / cycle_ms)
        } else if cycle_ms == 0.0 {
            c.max_fps
        } else {
            0.0
        };
        let accuracy = if fps > 0.0 && latency_ms.is_finite() {
            c.accuracy_while_shown(latency_ms / 1e3, 1.0 / fps)
        } else {
            0.0
        };
        let stand_in_ms = match self.stand_in() {
            Some(s) if remote => s.device_ms,
            _ => 0.0,
        };
        let busy = ((c.device_ms + stand_in_ms) * fps / 1e3 + self.tracker_busy_share()).min(1.0);
        let compute_w =
            self.candidates.idle_w + (self.candidates.active_w - self.candidates.idle_w) * busy;
        let (data_bps, radio_w) = if remote && fps > 0.0 {
            let up = (c.bytes_per_frame + FRAME_OVERHEAD_BYTES) * 8.0 * fps;
            let down = RESULT_BYTES * 8.0 * fps;
            let coefficients = if self.radio == req.radio.as_str() {
                self.radio_coefficients
            } else {
                self.candidates.radio.get(req.radio.as_str()).copied()
            };
            let radio_w = coefficients.map_or(0.0, |[au, ad, beta]| {
                (au * up / 1e6 + ad * down / 1e6 + beta) / 1e3
            });
            (up + down, radio_w)
        } else {
            (0.0, 0.0)
        };
        let power_w = compute_w + radio_w;
        Prediction {
            latency_ms,
            fps,
            accuracy,
            utility: req.w_accuracy * accuracy + req.w_fps * fps / self.fps_max,
            power_w,
            joules_per_frame: if fps > 0.0 {
                power_w / fps
            } else {
                f64::INFINITY
            },
            data_bps,
        }
    }

    /// The requirements a candidate misses under `net`.
    pub fn violations(
        &self,
        c: &Candidate,
        p: &Prediction,
        net: &NetState,
        req: &Requirements,
    ) -> Vec<Violation> {
        let mut v = Vec::new();
        req.each_violation(p, bandwidth_of(c, net), |kind, relative_excess| {
            v.push(Violation {
                kind,
                relative_excess,
            })
        });
        v
    }

    fn total_violation(
        &self,
        c: &Candidate,
        p: &Prediction,
        net: &NetState,
        req: &Requirements,
    ) -> f64 {
        req.violation_score(p, bandwidth_of(c, net))
    }

    /// Every allowed candidate with its prediction, best first: feasible ones by utility, then
    /// infeasible ones by total violation.
    pub fn rank(
        &self,
        net: &NetState,
        req: &Requirements,
        allowed: impl Fn(&Candidate) -> bool,
    ) -> Vec<(usize, Prediction, f64)> {
        let mut ranked: Vec<(usize, Prediction, f64)> = self
            .candidates
            .list
            .iter()
            .enumerate()
            .filter(|(_, c)| allowed(c))
            .map(|(i, c)| {
                let p = self.predict(c, net, req);
                let violation = self.total_violation(c, &p, net, req);
                (i, p, violation)
            })
            .collect();
        ranked.sort_by(|a, b| {
            a.2.total_cmp(&b.2)
                .then_with(|| b.1.utility.total_cmp(&a.1.utility))
        });
        ranked
    }

    /// The best candidate under `net`, restricted to those `allowed` (e.g. the models the
    /// server offers). `None` only when nothing is allowed.
    pub fn decide(
        &self,
        net: &NetState,
        req: &Requirements,
        allowed: impl Fn(&Candidate) -> bool,
    ) -> Option<Decision> {
        let bound = req.max_latency_ms;
        self.decide_with(net, req, allowed, 0.0, |latency| {
            if latency <= bound {
                1.0
            } else {
                0.0
            }
        })
    }

    /// A candidate's prediction, violation score and expected utility (utility × chance on
    /// time by `on_time`). Latency is judged with `margin_ms` added: the prediction error
    /// that recent frames stayed within as often as the app asks, so a candidate is on time
    /// when its latency plus that margin meets the bound, and one that is not is the worse
    /// the later it would be (a least-violating choice is then the least late one).
    pub fn judge(
        &self,
        c: &Candidate,
        net: &NetState,
        req: &Requirements,
        margin_ms: f64,
        on_time: impl Fn(f64) -> f64,
    ) -> (Prediction, f64, f64) {
        let p = self.predict(c, net, req);
        let chance = if p.latency_ms.is_finite() {
            on_time(p.latency_ms).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let hedge = self
            .stand_in()
            .filter(|_| c.key.placement == Placement::Remote && p.latency_ms.is_finite());
        let Some(stand_in) = hedge else {
            let judged = Prediction {
                latency_ms: p.latency_ms + margin_ms,
                ..p
            };
            return (
                p,
                self.total_violation(c, &judged, net, req),
                p.utility * chance,
            );
        };
        // Hedged: a result that would be late is replaced by the stand-in's at the bound, so
        // no frame is later than that (unless the device alone takes longer), and a late one
        // is worth the stand-in's result at the rate the bound allows.
        // The requirements are judged on the mix of both outcomes.
        let bound = req.max_latency_ms;
        let late_fps = c.max_fps.min(1e3 / bound.max(1e-9));
        let late_accuracy = stand_in.accuracy_while_shown(bound / 1e3, 1.0 / late_fps.max(1e-9));
        let late_utility = req.w_accuracy * late_accuracy + req.w_fps * late_fps / self.fps_max;
        let mix = |on_time: f64, late: f64| chance * on_time + (1.0 - chance) * late;
        let judged = Prediction {
            latency_ms: (p.latency_ms + margin_ms).min(bound.max(c.device_ms + stand_in.device_ms)),
            accuracy: mix(p.accuracy, late_accuracy),
            fps: mix(p.fps, late_fps),
            utility: mix(p.utility, late_utility),
            ..p
        };
        (
            p,
            self.total_violation(c, &judged, net, req),
            judged.utility,
        )
    }

    /// Like [`Optimiser::decide`], with a latency margin and the chance that a predicted
    /// latency meets the bound given by `on_time` (the controller learns both from its own
    /// prediction errors). A candidate whose latency plus `margin_ms` is over the bound misses
    /// the latency requirement; the others are ranked by expected utility, utility × chance on
    /// time — late results are worth nothing.
    pub fn decide_with(
        &self,
        net: &NetState,
        req: &Requirements,
        allowed: impl Fn(&Candidate) -> bool,
        margin_ms: f64,
        on_time: impl Fn(f64) -> f64,
    ) -> Option<Decision> {
        // One pass keeping the best two: no allocation, this runs every window.
        // Entries: (index, prediction, violation score, expected utility).
        type Entry = (usize, Prediction, f64, f64);
        let mut best: Option<Entry> = None;
        let mut second: Option<Entry> = None;
        let better = |a: &Entry, b: &Entry| a.2 < b.2 || (a.2 == b.2 && a.3 > b.3);
        for (i, c) in self.candidates.list.iter().enumerate() {
            if !allowed(c) {
                continue;
            }
            let (p, violation, expected) = self.judge(c, net, req, margin_ms, &on_time);
            let entry = (i, p, violation, expected);
            match &best {
                Some(b) if !better(&entry, b) => {
                    if second.as_ref().is_none_or(|s| better(&entry, s)) {
                        second = Some(entry);
                    }
                }
                _ => {
                    second = best.take();
                    best = Some(entry);
                }
            }
        }
        let (chosen, prediction, violation, _) = best?;
        let c = &self.candidates.list[chosen];
        let mut violations = self.violations(c, &prediction, net, req);
        if violation == 0.0 {
            // Feasible by its chance on time even if the point prediction is a little over.
            violations.clear();
        }
        Some(Decision {
            chosen,
            prediction,
            feasible: violation == 0.0,
            violations,
            runner_up: second.map(|(i, p, _, _)| (i, p)),
        })
    }
}

impl ViolationKind {
    /// Hard requirements keep the app usable (results on time, the link not overrun, the
    /// budgets); soft ones (accuracy and frame-rate floors) are what it would like. A
    /// least-violating choice misses soft ones before hard ones.
    pub fn is_hard(self) -> bool {
        !matches!(self, ViolationKind::Accuracy | ViolationKind::Fps)
    }
}

/// Weight of a hard requirement's relative excess: a miss of 0.1% counts as much as one soft
/// requirement missed.
pub const HARD_WEIGHT: f64 = 1000.0;

impl Requirements {
    /// Calls `f` with each requirement `p` misses and its excess relative to the bound (1e6
    /// where the bound is zero or the value infinite, e.g. no network for a remote
    /// configuration). `bandwidth` is (bit rate, uplink) for a remote configuration.
    pub fn each_violation(
        &self,
        p: &Prediction,
        bandwidth: Option<(f64, f64)>,
        mut f: impl FnMut(ViolationKind, f64),
    ) {
        let mut above = |kind, value: f64, bound: f64| {
            if value > bound {
                let excess = if bound > 0.0 && value.is_finite() {
                    (value - bound) / bound
                } else {
                    1e6
                };
                f(kind, excess);
            }
        };
        above(ViolationKind::Latency, p.latency_ms, self.max_latency_ms);
        above(ViolationKind::Power, p.power_w, self.max_power_w);
        above(ViolationKind::Data, p.data_bps, self.max_data_bps);
        if let Some((bitrate, uplink)) = bandwidth {
            above(
                ViolationKind::Bandwidth,
                bitrate,
                self.bitrate_safety * uplink,
            );
        }
        let mut below = |kind, value: f64, bound: f64| {
            if value < bound {
                f(kind, (bound - value) / bound.max(1e-9));
            }
        };
        below(ViolationKind::Accuracy, p.accuracy, self.min_accuracy);
        below(ViolationKind::Fps, p.fps, self.min_fps);
    }

    /// How badly `p` misses the requirements: 0 when it meets them all. Hard misses count by
    /// their relative excess × [`HARD_WEIGHT`]; soft ones count 1 each, however far off — so
    /// when no configuration reaches an accuracy or frame-rate floor, the choice among them
    /// is made by utility rather than by squeezing the one missed floor.
    pub fn violation_score(&self, p: &Prediction, bandwidth: Option<(f64, f64)>) -> f64 {
        let mut total = 0.0;
        self.each_violation(p, bandwidth, |kind, excess| {
            total += if kind.is_hard() {
                HARD_WEIGHT * excess
            } else {
                1.0
            }
        });
        total
    }
}

fn bandwidth_of(c: &Candidate, net: &NetState) -> Option<(f64, f64)> {
    (c.key.placement == Placement::Remote).then_some((c.key.bitrate_bps as f64, net.uplink_bps))
}
