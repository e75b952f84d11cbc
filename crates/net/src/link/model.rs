//! The link's timing model: pure, clock-free, deterministic for a seed.
//!
//! Each direction of a link is a FIFO bottleneck: a packet entering at time `now` leaves the
//! bottleneck when the shaper lets it (token bucket, or the next unused delivery opportunity of a
//! Mahimahi trace), then arrives after the one-way delay plus jitter. Arrivals never overtake one
//! another (a byte stream cannot reorder). Loss either drops a datagram or — for byte streams,
//! which TCP would repair — delays the packet by one retransmission time.
//! Time is a `Duration` since the link started; callers bring the clock.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;

/// Size of one trace delivery opportunity (Mahimahi's MTU).
pub const MTU: usize = 1500;

/// A Mahimahi trace: millisecond timestamps of 1500-byte delivery opportunities, repeated with
/// the last timestamp as the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub name: String,
    /// Sorted opportunity times in ms.
    pub opportunities: Vec<u64>,
    /// Repetition period in ms (the last timestamp, at least 1).
    pub period_ms: u64,
}

impl Trace {
    /// Parses trace text (one millisecond timestamp per line; blank lines ignored).
    pub fn parse(text: &str, name: &str) -> Result<Self, String> {
        let mut opportunities = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let t: u64 = line.parse().map_err(|_| {
                format!("{name}:{}: `{line}` is not a millisecond timestamp", i + 1)
            })?;
            if opportunities.last().is_some_and(|&prev| t < prev) {
                return Err(format!("{name}:{}: timestamp {t} goes back in time", i + 1));
            }
            opportunities.push(t);
        }
        let Some(&last) = opportunities.last() else {
            return Err(format!("{name}: the trace has no delivery opportunities"));
        };
        Ok(Self {
            name: name.to_string(),
            opportunities,
            period_ms: last.max(1),
        })
    }

    /// Mean capacity over one period, in bits per second.
    pub fn mean_bps(&self) -> f64 {
        self.opportunities.len() as f64 * MTU as f64 * 8.0 / (self.period_ms as f64 / 1e3)
    }

    /// Bytes the trace can deliver in `[0, until)`.
    pub fn capacity_bytes(&self, until: Duration) -> u64 {
        let until_ms = until.as_millis() as u64;
        let full = until_ms / self.period_ms;
        let rest = until_ms % self.period_ms;
        let partial = self.opportunities.partition_point(|&t| t < rest) as u64;
        (full * self.opportunities.len() as u64 + partial) * MTU as u64
    }
}

/// One piece of a composed trace (see [`Trace::compose`]).
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// A constant rate for a while.
    Rate { seconds: f64, bps: f64 },
    /// Nothing delivered for a while.
    Outage { seconds: f64 },
    /// A stretch of a recorded trace (wrapping around its period).
    Excerpt {
        trace: &'a Trace,
        from_s: f64,
        seconds: f64,
    },
}

impl Piece<'_> {
    fn seconds(&self) -> f64 {
        match *self {
            Piece::Rate { seconds, .. }
            | Piece::Outage { seconds }
            | Piece::Excerpt { seconds, .. } => seconds,
        }
    }
}

impl Trace {
    /// A scripted network: pieces one after another, one period long. Scripts (a demo's good
    /// WiFi → congestion → LTE → outage) and synthetic networks are built from these.
    pub fn compose(name: &str, pieces: &[Piece<'_>]) -> Result<Self, String> {
        let mut opportunities = Vec::new();
        let mut start_ms = 0u64;
        for piece in pieces {
            let seconds = piece.seconds();
            if !(seconds > 0.0 && seconds.is_finite()) {
                return Err(format!(
                    "{name}: a piece lasts {seconds} s; durations must be positive"
                ));
            }
            let len_ms = (seconds * 1e3).round() as u64;
            match *piece {
                Piece::Rate { bps, .. } => {
                    if !(bps > 0.0 && bps.is_finite()) {
                        return Err(format!(
                            "{name}: rate {bps} bit/s must be positive (use an outage for none)"
                        ));
                    }
                    let interval_ms = MTU as f64 * 8.0 * 1e3 / bps;
                    let count = (len_ms as f64 / interval_ms).floor() as u64;
                    opportunities.extend(
                        (0..count).map(|k| start_ms + (k as f64 * interval_ms).floor() as u64),
                    );
                }
                Piece::Outage { .. } => {}
                Piece::Excerpt { trace, from_s, .. } => {
                    let from_ms = (from_s * 1e3).round() as u64;
                    let period = trace.period_ms;
                    let mut k = from_ms / period;
                    'copy: loop {
                        let base = k * period;
                        for &t in &trace.opportunities {
                            let at = base + t;
                            if at < from_ms {
                                continue;
                            }
                            if at >= from_ms + len_ms {
                                break 'copy;
                            }
                            opportunities.push(start_ms + at - from_ms);
                        }
                        k += 1;
                    }
                }
            }
            start_ms += len_ms;
        }
        if opportunities.is_empty() {
            return Err(format!("{name}: the script delivers nothing at all"));
        }
        // The period is the last timestamp: one closing opportunity keeps a final outage.
        if opportunities.last() != Some(&start_ms) {
            opportunities.push(start_ms);
        }
        opportunities.sort_unstable();
        Ok(Self {
            name: name.to_string(),
            opportunities,
            period_ms: start_ms.max(1),
        })
    }

    /// The trace in Mahimahi's text format, one timestamp per line.
    pub fn to_mahimahi(&self) -> String {
        let mut text = String::with_capacity(self.opportunities.len() * 6);
        for t in &self.opportunities {
            text.push_str(&t.to_string());
            text.push('\n');
        }
        text
    }

    /// Capacity per window over the first `seconds`, as (window start s, bit/s).
    pub fn capacity_series(&self, window_s: f64, seconds: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut t = 0.0;
        while t + window_s <= seconds + 1e-9 {
            let a = self.capacity_bytes(Duration::from_secs_f64(t));
            let b = self.capacity_bytes(Duration::from_secs_f64(t + window_s));
            out.push((t, (b - a) as f64 * 8.0 / window_s));
            t += window_s;
        }
        out
    }
}

/// What limits the rate of one direction.
#[derive(Debug, Clone)]
pub enum Shaper {
    Unlimited,
    /// Token bucket: `bps` sustained, `burst_bytes` at once.
    TokenBucket {
        bps: f64,
        burst_bytes: f64,
        tokens: f64,
        updated: Duration,
        busy_until: Duration,
    },
    /// Mahimahi trace replay.
    Trace {
        trace: Arc<Trace>,
        index: usize,
        period: u64,
    },
}

impl Shaper {
    pub fn token_bucket(bps: f64, burst_bytes: usize) -> Self {
        let burst = burst_bytes.max(MTU) as f64;
        Shaper::TokenBucket {
            bps,
            burst_bytes: burst,
            tokens: burst,
            updated: Duration::ZERO,
            busy_until: Duration::ZERO,
        }
    }

    pub fn trace(trace: Arc<Trace>) -> Self {
        Shaper::Trace {
            trace,
            index: 0,
            period: 0,
        }
    }

    /// When a packet of `len` bytes entering at `now` leaves the bottleneck.
    fn depart(&mut self, now: Duration, len: usize) -> Duration {
        match self {
            Shaper::Unlimited => now,
            Shaper::TokenBucket {
                bps,
                burst_bytes,
                tokens,
                updated,
                busy_until,
            } => {
                // FIFO: a packet starts no earlier than it arrives or the previous one left.
                let start = now.max(*busy_until);
                let refill = (start.saturating_sub(*updated)).as_secs_f64() * *bps / 8.0;
                *tokens = (*tokens + refill).min(*burst_bytes);
                *updated = start;
                let need = len as f64;
                let depart = if *tokens >= need {
                    *tokens -= need;
                    start
                } else {
                    let wait = Duration::from_secs_f64((need - *tokens) * 8.0 / *bps);
                    *tokens = 0.0;
                    *updated = start + wait;
                    start + wait
                };
                *busy_until = depart;
                depart
            }
            Shaper::Trace {
                trace,
                index,
                period,
            } => {
                let opportunity = |i: usize, p: u64| {
                    Duration::from_millis(p * trace.period_ms + trace.opportunities[i])
                };
                // Opportunities that passed while nothing was queued are lost.
                while opportunity(*index, *period) < now {
                    *index += 1;
                    if *index == trace.opportunities.len() {
                        *index = 0;
                        *period += 1;
                    }
                }
                let depart = opportunity(*index, *period);
                *index += 1;
                if *index == trace.opportunities.len() {
                    *index = 0;
                    *period += 1;
                }
                depart
            }
        }
    }
}

/// How loss shows on this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossMode {
    /// Datagrams (UDP/QUIC): a lost packet is gone.
    Drop,
    /// Byte streams (TCP): a lost packet arrives one retransmission time later.
    Retransmit,
}

/// The settings of one direction.
#[derive(Debug, Clone)]
pub struct DirectionSpec {
    pub shaper: Shaper,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Arrival times vary uniformly within ±jitter (never reordering).
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Bytes the bottleneck queue may hold before the sender is held back (streams) or packets
    /// are dropped (datagrams).
    pub queue_bytes: usize,
}

impl Default for DirectionSpec {
    fn default() -> Self {
        Self {
            shaper: Shaper::Unlimited,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            queue_bytes: 1 << 20,
        }
    }
}

/// One direction of the link, with its state.
#[derive(Debug, Clone)]
pub struct Direction {
    spec: DirectionSpec,
    rng: SmallRng,
    last_arrival: Duration,
    pub delivered_bytes: u64,
    pub lost_packets: u64,
}

impl Direction {
    pub fn new(spec: DirectionSpec, seed: u64) -> Self {
        Self {
            spec,
            rng: SmallRng::seed_from_u64(seed),
            last_arrival: Duration::ZERO,
            delivered_bytes: 0,
            lost_packets: 0,
        }
    }

    pub fn spec(&self) -> &DirectionSpec {
        &self.spec
    }

    /// A packet of `len` (≤ [`MTU`] for trace shapers) enters at `now`: when does it arrive at
    /// the far end? `None` when it is lost (datagrams only).
    pub fn send(&mut self, now: Duration, len: usize, mode: LossMode) -> Option<Duration> {
        let depart = self.spec.shaper.depart(now, len);
        let mut arrive = depart + self.spec.delay;
        if self.spec.jitter > Duration::ZERO {
            let j = self.spec.jitter.as_secs_f64();
            let offset = self.rng.random_range(-j..=j);
            arrive =
                Duration::from_secs_f64((arrive.as_secs_f64() + offset).max(depart.as_secs_f64()));
        }
        if self.spec.loss > 0.0 && self.rng.random_bool(self.spec.loss.min(1.0)) {
            self.lost_packets += 1;
            match mode {
                LossMode::Drop => return None,
                // Fast retransmit: about one round trip later.
                LossMode::Retransmit => {
                    arrive += (self.spec.delay * 2).max(Duration::from_millis(10))
                }
            }
        }
        let arrive = arrive.max(self.last_arrival);
        self.last_arrival = arrive;
        self.delivered_bytes += len as u64;
        Some(arrive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saturate(dir: &mut Direction, seconds: u64) -> u64 {
        // Offer MTU packets back to back (always one waiting): count those arriving in time.
        let end = Duration::from_secs(seconds);
        let (mut now, mut bytes) = (Duration::ZERO, 0);
        loop {
            let arrive = dir.send(now, MTU, LossMode::Retransmit).unwrap();
            if arrive >= end {
                return bytes;
            }
            bytes += MTU as u64;
            now = arrive.saturating_sub(dir.spec().delay); // next packet enters as this one leaves
        }
    }

    #[test]
    fn token_bucket_holds_its_rate() {
        let mut dir = Direction::new(
            DirectionSpec {
                shaper: Shaper::token_bucket(5e6, MTU),
                ..Default::default()
            },
            1,
        );
        let bytes = saturate(&mut dir, 10);
        let bps = bytes as f64 * 8.0 / 10.0;
        assert!((bps / 5e6 - 1.0).abs() < 0.01, "{bps}");
    }

    #[test]
    fn delay_and_jitter_bounds() {
        let spec = DirectionSpec {
            delay: Duration::from_millis(25),
            jitter: Duration::from_millis(5),
            ..Default::default()
        };
        let mut dir = Direction::new(spec, 7);
        let mut sum = 0.0;
        for i in 0..1000u64 {
            let now = Duration::from_millis(i * 20);
            let d = dir.send(now, 100, LossMode::Drop).unwrap() - now;
            assert!(
                d >= Duration::from_millis(20) && d <= Duration::from_millis(30),
                "{d:?}"
            );
            sum += d.as_secs_f64();
        }
        assert!((sum / 1000.0 - 0.025).abs() < 0.001);
    }

    #[test]
    fn arrivals_never_reorder() {
        let spec = DirectionSpec {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(9),
            loss: 0.1,
            ..Default::default()
        };
        let mut dir = Direction::new(spec, 3);
        let mut last = Duration::ZERO;
        for i in 0..2000u64 {
            let a = dir
                .send(Duration::from_micros(i * 300), 500, LossMode::Retransmit)
                .unwrap();
            assert!(a >= last);
            last = a;
        }
        assert!(dir.lost_packets > 100);
    }

    #[test]
    fn datagram_loss_rate() {
        let mut dir = Direction::new(
            DirectionSpec {
                loss: 0.01,
                ..Default::default()
            },
            11,
        );
        let lost = (0..100_000)
            .filter(|i| {
                dir.send(Duration::from_micros(*i), 100, LossMode::Drop)
                    .is_none()
            })
            .count();
        assert!((800..1200).contains(&lost), "{lost}");
    }

    #[test]
    fn trace_replay_delivers_its_capacity_and_loops() {
        let trace = Arc::new(Trace::parse("1\n1\n3\n4\n", "t").unwrap());
        assert_eq!(trace.period_ms, 4);
        assert_eq!(
            trace.capacity_bytes(Duration::from_millis(8)),
            8 * MTU as u64
        );
        let mut dir = Direction::new(
            DirectionSpec {
                shaper: Shaper::trace(trace.clone()),
                ..Default::default()
            },
            1,
        );
        let times: Vec<u64> = (0..6)
            .map(|_| {
                dir.send(Duration::ZERO, MTU, LossMode::Drop)
                    .unwrap()
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(times, vec![1, 1, 3, 4, 5, 5]);
        // Idle opportunities are lost: a packet at 100 ms takes the first one at or after it
        // (period 25 offers 97, 97, 99, 100; period 26 starts at 101).
        assert_eq!(
            dir.send(Duration::from_millis(100), 10, LossMode::Drop),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            dir.send(Duration::from_millis(100), 10, LossMode::Drop),
            Some(Duration::from_millis(101))
        );
        assert!(Trace::parse("5\n3\n", "bad").is_err());
        assert!(Trace::parse("\n", "empty").is_err());
    }

    #[test]
    fn composed_traces_hold_their_rates_outages_and_excerpts() {
        let lte = Trace::parse("0\n0\n5\n10\n", "t").unwrap();
        let t = Trace::compose(
            "script",
            &[
                Piece::Rate {
                    seconds: 2.0,
                    bps: 12e6,
                },
                Piece::Outage { seconds: 1.0 },
                Piece::Excerpt {
                    trace: &lte,
                    from_s: 0.0,
                    seconds: 0.02,
                },
            ],
        )
        .unwrap();
        assert_eq!(t.period_ms, 3020);
        let series = t.capacity_series(1.0, 3.0);
        assert!((series[0].1 - 12e6).abs() < 0.02 * 12e6, "{series:?}");
        assert_eq!(series[2].1, 0.0, "the outage delivers nothing");
        // The excerpt: 0,0,5,10 then 10,10,15 (a period starts at the last one), plus the closing one.
        let tail = t.opportunities.iter().filter(|&&x| x >= 3000).count();
        assert_eq!(
            tail,
            8,
            "{:?}",
            &t.opportunities[t.opportunities.len() - 8..]
        );
        let back = Trace::parse(&t.to_mahimahi(), "again").unwrap();
        assert_eq!(back.opportunities, t.opportunities);
        assert!(Trace::compose("x", &[Piece::Outage { seconds: 1.0 }]).is_err());
        assert!(Trace::compose(
            "x",
            &[Piece::Rate {
                seconds: 0.0,
                bps: 1e6
            }]
        )
        .is_err());
    }
}
