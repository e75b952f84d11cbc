//! What a replay delivered: each window scored as the app sees it (accuracy along the
//! timeline, latency against the bound, energy and data), and the report of a run.

use super::{FrameOutcome, PolicyReport, ProbeSent, Replay, WindowStats};
use crate::energy::{LTE_TAIL_S, LTE_TAIL_W, RADIOS};
use deepoffload_core::{quantile, Radio};
use deepoffload_decide::{DecisionLog, Prediction};

/// Accuracy samples per window.
const ACCURACY_SAMPLES: usize = 20;

/// (violation score, utility): less violation first, then more utility — the optimiser's
/// order, applied to what windows measured.
pub(super) fn better_than(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl Replay<'_> {
    pub(super) fn all_windows(
        &self,
        frames: &[FrameOutcome],
        probes: &[ProbeSent],
    ) -> Vec<WindowStats> {
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
    pub(super) fn window_stats(
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
        let busy: f64 = started.iter().map(|f| f.device_busy_s).sum::<f64>();
        let busy = (busy + self.optimiser.tracker_busy_share() * span).min(span);
        let c = &self.optimiser.candidates;
        let compute_j = c.idle_w * span + (c.active_w - c.idle_w) * busy;
        // Probes are in sending order: the window's are one slice.
        let first_probe = probes.partition_point(|p| p.at < w0);
        let probed = &probes[first_probe..probes.partition_point(|p| p.at < w1)];
        let up: f64 = started.iter().map(|f| f.bytes_up).sum::<f64>()
            + probed.iter().map(|p| p.bytes).sum::<f64>();
        let down: f64 = started.iter().map(|f| f.bytes_down).sum();
        let radio_j = self.radio_j(frames, &probes[..first_probe], (w0, w1), (up, down));
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

    /// The radio's energy in `[w0, w1)` for `up` and `down` bytes sent then; with none, the
    /// LTE tail (full power for ~11.6 s) after the last transfer before the window (a frame,
    /// or one of the `earlier` probes).
    fn radio_j(
        &self,
        frames: &[FrameOutcome],
        earlier: &[ProbeSent],
        (w0, w1): (f64, f64),
        (up, down): (f64, f64),
    ) -> f64 {
        let (req, span) = (self.requirements, w1 - w0);
        let radio = RADIOS.iter().find(|(r, _)| *r == req.radio.as_str());
        if let Some((_, [au, ad, beta])) = radio.filter(|_| up + down > 0.0) {
            return (au * up * 8.0 / span / 1e6 + ad * down * 8.0 / span / 1e6 + beta) / 1e3 * span;
        }
        let last_frame = frames
            .iter()
            .rev()
            .find(|f| f.remote && f.start_s < w0)
            .map(|f| f.done_s);
        let last_probe = earlier.last().map(|p| p.at);
        let last = match (last_frame, last_probe) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match last {
            Some(t) if req.radio == Radio::Lte => {
                ((t + LTE_TAIL_S).min(w1) - w0).max(0.0) * LTE_TAIL_W
            }
            _ => 0.0,
        }
    }

    pub(super) fn report(
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
