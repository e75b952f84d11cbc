//! The decision engine's acceptance, shortened: a small profile of the study's phone (measured
//! here, scaled to the declared device, on a smaller grid), then each cellular uplink trace
//! replayed in full under every policy with the default requirements (latency ≤ 200 ms,
//! F1 ≥ 0.5) — the replay is fast; a short stretch of a trace says more about that stretch
//! than about the policies.
//! The grid keeps the default's small device-only detectors (yolov3-tiny@160 answers in ~95 ms
//! on the phone), without which no policy can be on time when the network fails.
//! The profile is measured anew each run, so its timings (and the policies' utilities) move a
//! little between runs: the bounds below leave room for that; the full-trace figures on the
//! default grid are in docs/decide.md.

use deepoffload_assets::{Store, StoreConfig};
use deepoffload_core::Tracking;
use deepoffload_decide::{Candidates, Mode, Optimiser, Requirements};
use deepoffload_lab::replay::{PolicyKind, PolicyReport, Replay, ReplaySettings};
use deepoffload_lab::{find_device, run_profile, Grid, ModelAt, ProfileRequest};
use deepoffload_net::link::Trace;
use std::sync::Arc;

fn phone_profile() -> deepoffload_core::profile::Profile {
    let store = Store::from_env();
    deepoffload_detect::init_runtime(&store, None).expect("ONNX Runtime");
    let shared = StoreConfig::from_env().shared.expect("../shared");
    // The default grid's models and placements, fewer cells and seconds.
    let grid = Grid {
        scales: vec![1.0, 0.25],
        bitrates: vec![250_000, 1_000_000],
        fps: vec![10.0, 5.0],
        eval_every_s: 2.0,
        max_lag: 10,
        max_seconds: Some(20.0),
        latency_sizes: vec![416, 608],
        // Server times decide which configurations meet 200 ms: measure them steadily.
        latency_runs: 10,
        ..Grid::default_grid()
    };
    let request = ProfileRequest {
        videos: vec![
            shared.join("videos/vtest.mp4"),
            shared.join("videos/bikes.mp4"),
        ],
        grid,
        device: find_device("oneplus-3t", None).unwrap(),
        reference: ModelAt {
            model: "yolov4-tiny".into(),
            size: 608,
        },
        threads: 2,
        partial: None,
    };
    run_profile(&store, &request).expect("profile")
}

#[test]
fn adaptive_against_every_policy_on_the_cellular_traces() {
    let profile = phone_profile();
    let optimiser = Optimiser::new(
        Candidates::from_profile(&profile, Tracking::Off).unwrap(),
        Mode::StopAndWait,
    );
    // The objective this acceptance was established under (issue 13): DeepDecision's trade-off,
    // untracked. Under the displayed-frame objective (the default since issue 15) adaptive
    // reaches 95 / 83 / 81% of the oracle on the full grid and trails remote-only: that gap is
    // issue 15's open acceptance line, measured in docs/decide.md, not asserted here.
    let requirements = Requirements::deepdecision();
    let settings = ReplaySettings {
        duration_s: None,
        ..ReplaySettings::default()
    };
    let dir = StoreConfig::from_env()
        .shared
        .expect("../shared")
        .join("traces/mahimahi");
    for name in [
        "TMobile-LTE-short.up",
        "TMobile-UMTS-driving.up",
        "Verizon-EVDO-driving.up",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let trace = Arc::new(Trace::parse(&text, name).unwrap());
        let replay = Replay::new(&optimiser, &requirements, &settings, trace).unwrap();
        let reports: Vec<PolicyReport> = PolicyKind::ALL.iter().map(|&k| replay.run(k)).collect();
        let by = |p: &str| reports.iter().find(|r| r.policy == p).unwrap();
        let (adaptive, oracle) = (by("adaptive"), by("oracle"));
        for r in &reports {
            eprintln!(
                "{name:28} {:15} utility {:.3} F1 {:.3} fps {:.2} p95 {:.0} ms latency-violating windows {:.1}%",
                r.policy,
                r.utility,
                r.accuracy,
                r.fps,
                r.latency_p95_ms,
                r.latency_violation_share * 100.0
            );
        }
        // The acceptance, shortened. The replay hedges remote frames (the default, as
        // `run --placement auto` does), so a late remote result costs the stand-in's quality
        // rather than the window. When written, three runs measured no late window on any
        // trace and adaptive at 99 / 97 / 92-94% of the oracle; against the other policies it
        // is checked with room for this small profile's run-to-run noise (it is measured anew
        // each run): at least 95% of each — the hindsight-best remote-only configuration came
        // within 0.5% of it on LTE and 0.7% above it on EVDO. The full-grid figures, which the
        // issue's criteria are judged on, are in docs/decide.md.
        assert!(
            adaptive.latency_violation_share <= 0.05,
            "{name}: adaptive breaks the latency bound in {:.1}% of windows (the oracle in {:.1}%)",
            adaptive.latency_violation_share * 100.0,
            oracle.latency_violation_share * 100.0
        );
        assert!(
            adaptive.utility >= 0.9 * oracle.utility,
            "{name}: adaptive {:.3} < 90% of the oracle's {:.3}",
            adaptive.utility,
            oracle.utility
        );
        for r in &reports {
            if r.policy != "oracle" && r.policy != "adaptive" {
                assert!(
                    adaptive.utility >= 0.95 * r.utility,
                    "{name}: {} beats adaptive by over 5% ({:.3} > {:.3})",
                    r.policy,
                    r.utility,
                    adaptive.utility
                );
            }
        }
        // Every decision is logged with its reasons.
        assert!(!adaptive.decisions.is_empty());
        assert!(adaptive.decisions.iter().all(|d| d.runner_up.is_some()));
    }
}
