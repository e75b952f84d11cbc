//! Choosing which source frames are analysed at a target frame rate.
//!
//! **The rule.** Analysis instants lie on a grid `t0, t0 + 1/f, t0 + 2/f, …` where `t0` is the
//! first frame's timestamp and `f` the target rate. A frame is analysed when it is the first
//! frame whose timestamp has reached the next pending instant (1 µs tolerance for rounded
//! timestamps); instants passed without a frame are dropped, never made up with duplicates.
//! So a 25 fps source at 10 fps keeps frames 0, 3, 5, 8, 10, … (on average every 2.5th), a 10 fps
//! source at 10 fps keeps every frame, and at or above the source rate every frame is kept.
//! Because instants are anchored to the grid, not to the last kept frame, the analysed rate
//! over a clip equals the target (when the source is faster) without drift.

use std::time::Duration;

const TOLERANCE_NS: u128 = 1_000;

/// Decides frame by frame whether to analyse it; feed timestamps in order.
#[derive(Debug, Clone)]
pub struct Sampler {
    interval_ns: f64,
    start_ns: Option<u128>,
    /// Index of the next pending analysis instant.
    next: u64,
}

impl Sampler {
    /// `fps` is the target analysed frame rate (> 0).
    pub fn new(fps: f64) -> Self {
        assert!(
            fps > 0.0 && fps.is_finite(),
            "target frame rate must be positive"
        );
        Self {
            interval_ns: 1e9 / fps,
            start_ns: None,
            next: 0,
        }
    }

    fn instant(&self, k: u64) -> u128 {
        self.start_ns.unwrap_or(0) + (k as f64 * self.interval_ns).round() as u128
    }

    /// Whether the frame at `pts` is analysed.
    pub fn keep(&mut self, pts: Duration) -> bool {
        let t = pts.as_nanos();
        let start = *self.start_ns.get_or_insert(t);
        if t + TOLERANCE_NS < self.instant(self.next) || t < start {
            return false;
        }
        // Move to the first instant after this frame.
        while self.instant(self.next) <= t + TOLERANCE_NS {
            self.next += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(source_fps: f64, target: f64, frames: u64) -> Vec<u64> {
        let mut s = Sampler::new(target);
        (0..frames)
            .filter(|&i| s.keep(Duration::from_secs_f64(i as f64 / source_fps)))
            .collect()
    }

    #[test]
    fn documented_examples() {
        assert_eq!(kept(25.0, 10.0, 11), vec![0, 3, 5, 8, 10]);
        assert_eq!(kept(10.0, 10.0, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(kept(10.0, 30.0, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(kept(30.0, 1.0, 91), vec![0, 30, 60, 90]);
    }

    #[test]
    fn long_clips_do_not_drift() {
        // 25 fps for 100 s sampled at 10 fps: exactly 1000 frames.
        assert_eq!(kept(25.0, 10.0, 2500).len(), 1000);
        // 29.97 fps sampled at 5 fps over 60 s: 300 frames.
        assert_eq!(kept(30000.0 / 1001.0, 5.0, 1798).len(), 300);
    }

    #[test]
    fn timestamps_need_not_start_at_zero() {
        let mut s = Sampler::new(2.0);
        let keep: Vec<bool> = [10.0, 10.25, 10.5, 10.75, 11.0]
            .iter()
            .map(|&t| s.keep(Duration::from_secs_f64(t)))
            .collect();
        assert_eq!(keep, vec![true, false, true, false, true]);
    }
}
