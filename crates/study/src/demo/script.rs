//! The demo's scripted network: good WiFi, congestion, a stretch of a real LTE trace (or
//! generated LTE-like rates without `../shared`), an outage and recovery, as one trace with named
//! phases, and the link that plays it. It only describes the network; it must never run a
//! policy or judge one.

use super::ONE_WAY_MS;
use anyhow::Result;
use deepoffload_assets::Store;
use deepoffload_net::link::{DirectionSpec, LinkSpec, Piece, Shaper, Trace};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// One phase of the scripted network, so that results can be told phase by phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// The phase's name in tables and captions ("outage").
    pub name: &'static str,
    /// When it starts, seconds into the script.
    pub start_s: f64,
    /// How long it lasts.
    pub seconds: f64,
    /// What the link does meanwhile ("20 Mbit/s").
    pub description: String,
}

/// The real LTE uplink trace from `../shared`, where the store has it.
pub(super) fn shared_lte(store: &Store) -> Result<Option<Trace>> {
    store
        .config()
        .shared
        .as_ref()
        .map(|s| s.join("traces/mahimahi/TMobile-LTE-short.up"))
        .filter(|p| p.exists())
        .map(|p| -> Result<Trace> {
            let text = std::fs::read_to_string(&p)?;
            Trace::parse(&text, "TMobile-LTE-short.up").map_err(anyhow::Error::msg)
        })
        .transpose()
}

/// A constant rate for a while.
fn rate<'a>(seconds: f64, bps: f64) -> Piece<'a> {
    Piece::Rate { seconds, bps }
}

/// LTE-like rates for machines without the shared traces.
fn generated_lte() -> Result<Trace> {
    Trace::compose(
        "LTE (generated)",
        &[
            rate(3.0, 8e6),
            rate(3.0, 2e6),
            rate(4.0, 12e6),
            rate(4.0, 1e6),
        ],
    )
    .map_err(anyhow::Error::msg)
}

/// The scripted network and its phases, each phase's length multiplied by `scale`.
pub fn script(lte: Option<&Trace>, scale: f64) -> Result<(Trace, Vec<Phase>)> {
    let generated;
    let (lte, lte_name) = match lte {
        Some(t) => (t, "TMobile-LTE-short.up from 20 s"),
        None => {
            generated = generated_lte()?;
            (&generated, "generated LTE-like rates (no ../shared traces)")
        }
    };
    let s = |x: f64| x * scale;
    let phases = [
        ("good WiFi", s(12.0), "20 Mbit/s".to_string()),
        ("congestion", s(10.0), "0.15 Mbit/s".to_string()),
        ("LTE", s(14.0), lte_name.to_string()),
        ("outage", s(8.0), "nothing delivered".to_string()),
        ("recovery", s(12.0), "20 Mbit/s".to_string()),
    ];
    let pieces = [
        rate(phases[0].1, 20e6),
        rate(phases[1].1, 0.15e6),
        Piece::Excerpt {
            trace: lte,
            from_s: 20.0,
            seconds: phases[2].1,
        },
        Piece::Outage {
            seconds: phases[3].1,
        },
        rate(phases[4].1, 20e6),
    ];
    let trace = Trace::compose("demo script", &pieces).map_err(anyhow::Error::msg)?;
    let mut start = 0.0;
    let phases = phases
        .into_iter()
        .map(|(name, seconds, description)| {
            let p = Phase {
                name,
                start_s: start,
                seconds,
                description,
            };
            start += seconds;
            p
        })
        .collect();
    Ok((trace, phases))
}

/// The name of the phase playing at `t` seconds.
pub(super) fn phase_at(phases: &[Phase], t: f64) -> &'static str {
    phases
        .iter()
        .rev()
        .find(|p| t >= p.start_s)
        .map_or("-", |p| p.name)
}

/// The script on both directions, with a short propagation delay.
pub(super) fn link(trace: &Trace) -> LinkSpec {
    let direction = DirectionSpec {
        shaper: Shaper::trace(Arc::new(trace.clone())),
        delay: Duration::from_millis(ONE_WAY_MS),
        ..DirectionSpec::default()
    };
    LinkSpec {
        up: direction.clone(),
        down: direction,
        text: format!("demo script, {ONE_WAY_MS} ms each way"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_every_phase_in_order_and_the_outage_is_silent() {
        let (trace, phases) = script(None, 1.0).unwrap();
        let names: Vec<&str> = phases.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["good WiFi", "congestion", "LTE", "outage", "recovery"]
        );
        let total: f64 = phases.iter().map(|p| p.seconds).sum();
        assert_eq!(trace.period_ms, (total * 1e3) as u64);
        let caps = trace.capacity_series(1.0, total);
        let at = |t: f64| caps.iter().find(|c| c.0 == t).unwrap().1;
        assert!(at(2.0) > 19e6 && at(15.0) < 0.2e6, "{caps:?}");
        let outage = phases.iter().find(|p| p.name == "outage").unwrap();
        assert_eq!(at(outage.start_s + 1.0), 0.0);
        assert!(at(total - 2.0) > 19e6);
        assert_eq!(phase_at(&phases, outage.start_s + 0.5), "outage");
    }
}
