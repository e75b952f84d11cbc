//! Order statistics for latency samples.

use serde::Serialize;

/// The value at quantile `q` (0..=1) of `samples`, nearest-rank on a sorted copy; `None` when
/// there are no samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// Median, tail and mean of a set of samples (e.g. milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Option<Self> {
        Some(Self {
            n: samples.len(),
            median: quantile(samples, 0.5)?,
            p90: quantile(samples, 0.9)?,
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&s, 0.5), Some(5.0));
        assert_eq!(quantile(&s, 0.9), Some(9.0));
        assert_eq!(quantile(&s, 1.0), Some(10.0));
        assert_eq!(quantile(&s, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
        let sum = Summary::of(&s).unwrap();
        assert_eq!((sum.n, sum.mean), (10, 5.5));
    }
}
