//! How long one decision takes: the issue asks for < 1 ms over 1,000 configurations, so the
//! controller can re-decide every window (and the replay's oracle can try every candidate).

use criterion::{criterion_group, criterion_main, Criterion};
use deepoffload_core::Placement;
use deepoffload_decide::{
    Candidate, CandidateKey, Candidates, Mode, NetState, Optimiser, Requirements,
};
use std::hint::black_box;

/// 1,000+ synthetic candidates shaped like a profile's (2 placements × 2 models × 5 scales ×
/// 10 bit rates × 5 frame rates), with a decaying staleness curve.
fn candidates() -> Candidates {
    let mut list = Vec::new();
    for placement in [Placement::Local, Placement::Remote] {
        for (model, size, ms) in [("yolov3-tiny", 416, 600.0), ("yolov4-tiny", 608, 1500.0)] {
            for scale in [1.0, 0.8, 0.6, 0.4, 0.2] {
                for b in 1..=10u64 {
                    for fps in [30.0, 15.0, 10.0, 5.0, 2.0] {
                        let f1 = 0.9 * scale * (1.0 - 0.3 / b as f64);
                        list.push(Candidate {
                            key: CandidateKey {
                                placement,
                                model: model.into(),
                                input_size: size,
                                scale,
                                fps,
                                bitrate_bps: b * 250_000,
                            },
                            accuracy_at: (0..150)
                                .map(|i| f1 * (-(i as f64) / 60.0).exp())
                                .collect(),
                            f1,
                            mean_iou: 0.8,
                            max_fps: fps,
                            bytes_per_frame: b as f64 * 250_000.0 / 8.0 / fps,
                            device_ms: if placement == Placement::Local {
                                ms * scale
                            } else {
                                20.0
                            },
                            server_ms: 40.0,
                        });
                    }
                }
            }
        }
    }
    Candidates {
        list,
        device: "bench".into(),
        active_w: 3.5,
        idle_w: 1.0,
        radio: [("lte".to_string(), [438.39, 51.97, 1288.04])]
            .into_iter()
            .collect(),
        tracking: deepoffload_core::Tracking::Off,
        tracker_ms: 0.0,
    }
}

fn bench(c: &mut Criterion) {
    let optimiser = Optimiser::new(candidates(), Mode::StopAndWait);
    let n = optimiser.list().len();
    assert!(n >= 1000, "{n} candidates");
    let req = Requirements::default();
    let net = NetState {
        uplink_bps: 5e6,
        rtt_ms: 60.0,
    };
    c.bench_function(&format!("decide over {n} configurations"), |b| {
        b.iter(|| optimiser.decide(black_box(&net), &req, |_| true))
    });
    // Hedged, remote candidates are judged on the mix of their two outcomes: more work each.
    let hedged = optimiser.clone().hedged();
    c.bench_function(&format!("decide hedged over {n} configurations"), |b| {
        b.iter(|| hedged.decide(black_box(&net), &req, |_| true))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
