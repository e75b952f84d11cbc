//! The network estimator: what the uplink carries and how long a round trip takes, from what
//! the client already observes — delivered frames (bytes over their transfer time) and pings.

use serde::Serialize;
use std::collections::VecDeque;

/// Tuning of the estimator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimatorSettings {
    /// Weight of a new throughput sample in the moving average.
    pub ewma_alpha: f64,
    /// Samples younger than this form the recent window, seconds.
    pub window_s: f64,
    /// The conservative estimate is this percentile of the recent window.
    pub percentile: f64,
    /// With at least this many samples in the recent window, its percentile alone is the
    /// estimate; with fewer, the lower of it and the moving average.
    pub min_recent_samples: usize,
    /// The minimum round trip is taken over this long, seconds (routes change).
    pub rtt_min_window_s: f64,
    /// Transfers shorter than this are too short to time (a few packets on a fast link): they
    /// count as taking this long, a lower bound on the throughput that still lets a small
    /// frame show that the link has recovered, ms.
    pub min_transfer_ms: f64,
}

impl Default for EstimatorSettings {
    fn default() -> Self {
        Self {
            ewma_alpha: 0.3,
            window_s: 0.5,
            percentile: 0.5,
            min_recent_samples: 3,
            rtt_min_window_s: 10.0,
            min_transfer_ms: 2.0,
        }
    }
}

/// The estimator's view of the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct NetEstimate {
    /// What decisions should assume, bits per second: the lower of the moving average and the
    /// recent window's percentile (its last value while it is empty), so a drop shows within
    /// one window and stays until newer samples say otherwise.
    pub uplink_bps: f64,
    pub ewma_bps: f64,
    /// Percentile of the recent window (0 when it holds no sample).
    pub recent_bps: f64,
    pub rtt_min_ms: f64,
    /// Smoothed round trip of pings (0 before the first).
    pub srtt_ms: f64,
    /// Throughput samples in the recent window.
    pub recent_samples: usize,
    /// Seconds since the last throughput sample (infinite before the first).
    pub age_s: f64,
}

/// Uplink throughput and round-trip estimator. Time is passed in (seconds on any monotonic
/// clock), so the real client and the trace replay share it.
#[derive(Debug, Clone)]
pub struct NetworkEstimator {
    settings: EstimatorSettings,
    ewma_bps: Option<f64>,
    samples: VecDeque<(f64, f64)>,
    rtts: VecDeque<(f64, f64)>,
    srtt_ms: Option<f64>,
    last_sample_s: Option<f64>,
    /// The recent window's percentile as of the newest sample (what the estimate falls back
    /// to once the window has emptied).
    last_recent_bps: Option<f64>,
}

impl NetworkEstimator {
    pub fn new(settings: EstimatorSettings) -> Self {
        Self {
            settings,
            ewma_bps: None,
            samples: VecDeque::new(),
            rtts: VecDeque::new(),
            srtt_ms: None,
            last_sample_s: None,
            last_recent_bps: None,
        }
    }

    /// A round trip of a message too small to measure throughput (a ping), ms.
    pub fn on_rtt(&mut self, now_s: f64, rtt_ms: f64) {
        if !(rtt_ms.is_finite() && rtt_ms >= 0.0) {
            return;
        }
        self.bound_rtt(now_s, rtt_ms);
        self.srtt_ms = Some(match self.srtt_ms {
            Some(s) => 0.875 * s + 0.125 * rtt_ms,
            None => rtt_ms,
        });
    }

    /// Records that a round trip took at most `rtt_ms` (for the windowed minimum only).
    fn bound_rtt(&mut self, now_s: f64, rtt_ms: f64) {
        while self
            .rtts
            .front()
            .is_some_and(|&(t, _)| now_s - t > self.settings.rtt_min_window_s)
        {
            self.rtts.pop_front();
        }
        // Keep a monotone deque: the front is the window's minimum.
        while self.rtts.back().is_some_and(|&(_, r)| r >= rtt_ms) {
            self.rtts.pop_back();
        }
        self.rtts.push_back((now_s, rtt_ms));
    }

    /// A frame of `bytes` went up and its result came back after `network_ms` of network time
    /// (round trip minus the server's own time).
    pub fn on_frame(&mut self, now_s: f64, bytes: u64, network_ms: f64) {
        // Transfer included: an upper bound on the round trip, not a sample of it.
        if network_ms.is_finite() && network_ms >= 0.0 {
            self.bound_rtt(now_s, network_ms);
        }
        let rtt_min = self.rtt_min_ms().unwrap_or(0.0);
        if bytes < 1500 {
            // One packet: its time is all round trip.
            return;
        }
        let transfer_ms = (network_ms - rtt_min).max(self.settings.min_transfer_ms);
        let bps = bytes as f64 * 8e3 / transfer_ms;
        let a = self.settings.ewma_alpha;
        self.ewma_bps = Some(match self.ewma_bps {
            Some(e) => (1.0 - a) * e + a * bps,
            None => bps,
        });
        self.samples.push_back((now_s, bps));
        self.last_sample_s = Some(now_s);
        self.expire(now_s);
        self.last_recent_bps = self.recent_percentile();
    }

    fn expire(&mut self, now_s: f64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| now_s - t > self.settings.window_s)
        {
            self.samples.pop_front();
        }
    }

    fn rtt_min_ms(&self) -> Option<f64> {
        self.rtts.front().map(|&(_, r)| r)
    }

    /// The estimate at `now_s`.
    pub fn estimate(&mut self, now_s: f64) -> NetEstimate {
        self.expire(now_s);
        let recent = self.recent_percentile();
        let ewma = self.ewma_bps.unwrap_or(0.0);
        let uplink = match recent {
            // Enough recent evidence: it alone describes the link now (a recovery shows as
            // fast as a drop).
            Some(r) if self.samples.len() >= self.settings.min_recent_samples => r,
            Some(r) => r.min(ewma),
            // No recent sample (the client went local, or a frame is still on its way): the
            // newest evidence stands until a frame or probe brings more. Falling back to the
            // average of an older, faster link sent the next frame into the drop again.
            None => self.last_recent_bps.map_or(ewma, |r| r.min(ewma)),
        };
        NetEstimate {
            uplink_bps: uplink,
            ewma_bps: ewma,
            recent_bps: recent.unwrap_or(0.0),
            rtt_min_ms: self.rtt_min_ms().unwrap_or(0.0),
            srtt_ms: self.srtt_ms.unwrap_or(0.0),
            recent_samples: self.samples.len(),
            age_s: self.last_sample_s.map_or(f64::INFINITY, |t| now_s - t),
        }
    }

    fn recent_percentile(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.samples.iter().map(|&(_, b)| b).collect();
        v.sort_by(f64::total_cmp);
        let rank = ((v.len() - 1) as f64 * self.settings.percentile).round() as usize;
        Some(v[rank])
    }

    /// Forgets throughput (not round trips): after a long silence the old samples describe
    /// another network.
    pub fn forget_throughput(&mut self) {
        self.ewma_bps = None;
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An estimator after 5 s of 12.5 kB frames at 10 Mbit/s (10 ms beyond a 40 ms round
    /// trip), and the time.
    fn after_five_seconds_at_10_mbit() -> (NetworkEstimator, f64) {
        let mut e = NetworkEstimator::new(EstimatorSettings::default());
        e.on_rtt(0.0, 40.0);
        let mut t = 0.0;
        for _ in 0..50 {
            t += 0.1;
            e.on_frame(t, 12_500, 50.0);
        }
        (e, t)
    }

    #[test]
    fn reacts_to_a_drop_within_one_window() {
        let (mut e, mut t) = after_five_seconds_at_10_mbit();
        let before = e.estimate(t).uplink_bps;
        assert!((before - 10e6).abs() < 0.5e6, "{before}");
        // Drop to 1 Mbit/s: 100 ms transfers. After one window of such frames the estimate
        // must have followed.
        for _ in 0..10 {
            t += 0.1;
            e.on_frame(t, 12_500, 140.0);
        }
        let after = e.estimate(t).uplink_bps;
        assert!(after < 1.5e6, "estimate {after} did not follow the drop");
    }

    #[test]
    fn a_drop_stands_until_newer_samples() {
        let (mut e, mut t) = after_five_seconds_at_10_mbit();
        // One frame at 100 kbit/s, then silence (the client went local): the average of the
        // fast link must not come back when the recent window empties.
        t += 1.0;
        e.on_frame(t, 12_500, 1040.0);
        assert!(e.estimate(t).uplink_bps < 150e3);
        assert!(e.estimate(t + 5.0).uplink_bps < 150e3);
        // A probe that finds the link fast again lifts it.
        e.on_frame(t + 6.0, 4000, 43.2);
        assert!(e.estimate(t + 6.0).uplink_bps > 5e6);
    }

    #[test]
    fn round_trip_minimum_and_smoothing() {
        let mut e = NetworkEstimator::new(EstimatorSettings::default());
        for (i, r) in [60.0, 45.0, 50.0, 80.0].into_iter().enumerate() {
            e.on_rtt(i as f64, r);
        }
        let est = e.estimate(4.0);
        assert_eq!(est.rtt_min_ms, 45.0);
        assert!(est.srtt_ms > 45.0 && est.srtt_ms < 80.0);
        // The minimum expires after its window.
        e.on_rtt(20.0, 70.0);
        assert_eq!(e.estimate(20.0).rtt_min_ms, 70.0);
    }

    #[test]
    fn short_transfers_give_a_lower_bound() {
        let mut e = NetworkEstimator::new(EstimatorSettings::default());
        e.on_rtt(0.0, 40.0);
        // One packet: no throughput information.
        e.on_frame(0.1, 1000, 40.5);
        assert_eq!(e.estimate(0.1).recent_samples, 0);
        // 5 kB in 0.5 ms is untimeable: counted as 2 ms, i.e. at least 20 Mbit/s.
        e.on_frame(0.2, 5000, 40.5);
        assert_eq!(e.estimate(0.2).uplink_bps, 20e6);
    }
}
