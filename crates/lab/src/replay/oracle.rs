//! The hindsight oracle: for each window, every configuration tried on the future trace from
//! the state the previous windows left, the best kept.

use super::scoring::better_than;
use super::world::World;
use super::{FrameOutcome, Replay};
use deepoffload_core::Placement;
use deepoffload_decide::Hedge;
use deepoffload_pipeline::{Policy, SessionInfo};

type Best<'a> = ((f64, f64), World<'a, Trial>, Vec<FrameOutcome>);

/// One configuration, hedged or not, as the oracle tries it.
#[derive(Debug, Clone, Copy)]
struct Trial {
    index: usize,
    hedge: bool,
}

impl Policy for Trial {
    fn choose(&mut self, _now_s: f64, _session: Option<&SessionInfo>) -> usize {
        self.index
    }
    fn hedge(&self) -> bool {
        self.hedge
    }
}

impl Replay<'_> {
    /// The best configuration of each window, trying every candidate on the future trace —
    /// with the same choice of hedging adaptive has: none, always, or per window (where,
    /// knowing the future, it knows when the stand-in pays).
    pub(super) fn oracle(&self) -> Vec<FrameOutcome> {
        let hedging: &[bool] = match self.settings.hedge {
            Hedge::Off => &[false],
            Hedge::Always => &[true],
            Hedge::WhenUncertain => &[true, false],
        };
        let window = self.settings.window_s;
        let mut world = self.world(Trial {
            index: 0,
            hedge: false,
        });
        let mut frames: Vec<FrameOutcome> = Vec::new();
        for w in 0..self.windows() {
            let (w0, w1, w2) = (
                w as f64 * window,
                (w + 1) as f64 * window,
                (w + 2) as f64 * window,
            );
            let context = frames.len().saturating_sub(64);
            // (score, the world at the window's end, the window's frames) of the best so far.
            let mut best: Option<Best> = None;
            let remote = |i: usize| self.optimiser.list()[i].key.placement == Placement::Remote;
            // A local candidate has nothing to hedge: once.
            let choices = (0..self.optimiser.list().len()).flat_map(|i| {
                let modes = if remote(i) { hedging } else { &hedging[..1] };
                modes.iter().map(move |&h| (i, h))
            });
            for (index, hedge) in choices {
                let mut trial = world.clone();
                *trial.pipeline.policy_mut() = Trial { index, hedge };
                let mut tried = frames[context..].to_vec();
                let first_new = tried.len();
                // The oracle pings nothing: its probes are not counted.
                let mut probes = Vec::new();
                trial.run_until(w1, &mut tried, &mut probes);
                let boundary = trial.clone();
                let kept = tried.len();
                // Judge the choice with one more window of it: a frame still in flight at the
                // boundary (a slow configuration, a queue left in the link) costs the next
                // window, and a per-window greedy choice would not see it.
                trial.run_until(w2, &mut tried, &mut probes);
                let (a, b) = (
                    self.window_stats(&tried, &[], w0, w1),
                    self.window_stats(&tried, &[], w1, w2),
                );
                let score = (a.violation_score + b.violation_score, a.utility + b.utility);
                if best.as_ref().is_none_or(|(b, _, _)| better_than(score, *b)) {
                    tried.truncate(kept);
                    best = Some((score, boundary, tried.split_off(first_new)));
                }
            }
            let (_, trial, new) = best.expect("candidates exist");
            world = trial;
            frames.extend(new);
        }
        frames
    }
}
