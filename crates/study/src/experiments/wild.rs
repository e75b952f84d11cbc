//! Study: "In the wild, performance over LTE sometimes > public WiFi; higher frame rates over
//! LTE at the expense of data cost". Real cellular uplink traces (Mahimahi) against a public
//! WiFi network, replayed through the simulation calibrated on the profile.

use super::{profile_conditions, write_csv};
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_decide::Requirements;
use deepoffload_lab::replay::{PolicyKind, PolicyReport, Replay, ReplaySettings};
use deepoffload_net::link::{Piece, Trace};
use deepoffload_plot::{bar_chart, line_chart, BarChart, LineChart, Mark, Series};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// One network of the comparison.
struct Network {
    name: String,
    radio: &'static str,
    trace: Trace,
    generated: bool,
}

/// A seeded synthetic network: every `step_s`, a rate drawn uniformly from `range_bps`, or
/// with probability `dip` a contention dip to `dip_bps`.
fn synthetic(
    name: &str,
    seed: u64,
    seconds: f64,
    range_bps: (f64, f64),
    dip: f64,
    dip_bps: f64,
) -> Result<Trace> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let step_s = 0.5;
    let pieces: Vec<Piece<'static>> = (0..(seconds / step_s) as usize)
        .map(|_| {
            let bps = if rng.random::<f64>() < dip {
                dip_bps
            } else {
                rng.random_range(range_bps.0..range_bps.1)
            };
            Piece::Rate {
                seconds: step_s,
                bps,
            }
        })
        .collect();
    Trace::compose(name, &pieces).map_err(anyhow::Error::msg)
}

/// Public WiFi as the study met it in coffee shops: a few Mbit/s shared with other customers,
/// with contention dips. No public-WiFi uplink trace ships in `../shared`, so it is generated.
pub fn public_wifi() -> Result<Trace> {
    synthetic(
        "public WiFi (generated)",
        7,
        300.0,
        (0.8e6, 6e6),
        0.15,
        0.15e6,
    )
}

fn networks(study: &Study) -> Result<Vec<Network>> {
    let mut out = Vec::new();
    for (file, name, radio, fallback) in [
        (
            "TMobile-LTE-short.up",
            "LTE (T-Mobile)",
            "lte",
            (2e6, 20e6, 0.02),
        ),
        (
            "TMobile-UMTS-driving.up",
            "UMTS (T-Mobile, driving)",
            "3g",
            (0.2e6, 2e6, 0.06),
        ),
        (
            "Verizon-EVDO-driving.up",
            "EVDO (Verizon, driving)",
            "3g",
            (0.1e6, 1.6e6, 0.06),
        ),
    ] {
        let (trace, generated) = match study.trace(file)? {
            Some(t) => (t, false),
            None => (
                synthetic(
                    &format!("{name} (generated)"),
                    out.len() as u64 + 1,
                    300.0,
                    (fallback.0, fallback.1),
                    fallback.2,
                    0.02e6,
                )?,
                true,
            ),
        };
        out.push(Network {
            name: if generated {
                format!("{name} (generated)")
            } else {
                name.to_string()
            },
            radio,
            trace,
            generated,
        });
    }
    out.push(Network {
        name: "public WiFi (generated)".into(),
        radio: "wifi",
        trace: public_wifi()?,
        generated: true,
    });
    Ok(out)
}

#[derive(Serialize)]
struct Row {
    network: String,
    generated: bool,
    mean_capacity_bps: f64,
    policy: String,
    seconds: f64,
    fps: f64,
    accuracy_f1: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    late_windows: f64,
    data_mb: f64,
    data_mb_per_min: f64,
    energy_j_per_frame: f64,
    remote_share: f64,
}

const POLICIES: [PolicyKind; 2] = [PolicyKind::Adaptive, PolicyKind::RemoteOnly];

pub fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let (profile, optimiser) = study.optimiser(deepoffload_core::Tracking::Off)?;
    // The study's pipeline: a late remote result is waited for, no stand-in beside it.
    let settings = ReplaySettings {
        hedge: deepoffload_decide::Hedge::Off,
        ..ReplaySettings::default()
    };
    let nets = networks(study)?;
    let bar = indicatif::ProgressBar::new((nets.len() * POLICIES.len()) as u64).with_style(
        indicatif::ProgressStyle::with_template("wild [{bar:30}] {pos}/{len} {msg}")
            .expect("template"),
    );
    let mut rows = Vec::new();
    let mut reports: Vec<Vec<PolicyReport>> = Vec::new();
    for net in &nets {
        let requirements = Requirements {
            radio: net.radio.parse().map_err(anyhow::Error::msg)?,
            ..Requirements::deepdecision()
        };
        let trace = Arc::new(net.trace.clone());
        let replay =
            Replay::new(&optimiser, &requirements, &settings, trace).map_err(anyhow::Error::msg)?;
        let mut of_net = Vec::new();
        for policy in POLICIES {
            bar.set_message(format!("{} · {}", net.name, policy.name()));
            let r = tokio::task::block_in_place(|| replay.run(policy));
            rows.push(Row {
                network: net.name.clone(),
                generated: net.generated,
                mean_capacity_bps: net.trace.mean_bps(),
                policy: policy.name().into(),
                seconds: r.duration_s,
                fps: r.fps,
                accuracy_f1: r.accuracy,
                latency_p50_ms: r.latency_p50_ms,
                latency_p95_ms: r.latency_p95_ms,
                late_windows: r.latency_violation_share,
                data_mb: r.data_mb,
                data_mb_per_min: r.data_mb / r.duration_s * 60.0,
                energy_j_per_frame: r.joules_per_frame,
                remote_share: r.remote_share,
            });
            of_net.push(r);
            bar.inc(1);
        }
        reports.push(of_net);
    }
    bar.finish_and_clear();
    write_csv(&dir.join("wild.csv"), &rows)?;

    let parts: Vec<String> = POLICIES
        .iter()
        .map(|p| match p {
            PolicyKind::Adaptive => "adaptive (ours)".to_string(),
            other => format!("{} (best fixed, hindsight)", other.name()),
        })
        .collect();
    let generated_note = if nets.iter().any(|n| n.generated) {
        format!(
            "generated traces: {}",
            nets.iter()
                .filter(|n| n.generated)
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let note = format!(
        "{} (emulated); L_max 200 ms; 50 ms round trip; {generated_note}",
        profile.device.name
    );
    let metric_chart = |file: &str, title: &str, y: &str, pick: fn(&Row) -> f64| {
        bar_chart(
            &dir.join(file),
            &BarChart {
                title: title.into(),
                x_label: "network (uplink trace)".into(),
                y_label: y.into(),
                parts: parts.clone(),
                bars: nets
                    .iter()
                    .map(|n| {
                        (
                            n.name.clone(),
                            rows.iter()
                                .filter(|r| r.network == n.name)
                                .map(pick)
                                .collect(),
                        )
                    })
                    .collect(),
                stacked: false,
                note: Some(note.clone()),
            },
        )
    };
    metric_chart(
        "wild-fps.png",
        "Analysed frame rate in the wild",
        "analysed frames per second",
        |r| r.fps,
    )?;
    metric_chart(
        "wild-latency.png",
        "Median latency in the wild",
        "latency p50 (ms)",
        |r| r.latency_p50_ms,
    )?;
    metric_chart(
        "wild-accuracy.png",
        "Accuracy in the wild",
        "F1 while shown (staleness included)",
        |r| r.accuracy_f1,
    )?;
    metric_chart(
        "wild-data.png",
        "Data used in the wild",
        "uplink + downlink (MB per minute)",
        |r| r.data_mb_per_min,
    )?;
    line_chart(
        &dir.join("wild-capacity.png"),
        &LineChart {
            title: "Uplink capacity of each network (first 120 s)".into(),
            x_label: "time (s)".into(),
            y_label: "capacity (Mbit/s, 1 s windows)".into(),
            series: nets
                .iter()
                .enumerate()
                .map(|(k, n)| Series {
                    name: n.name.clone(),
                    points: n
                        .trace
                        .capacity_series(1.0, 120.0)
                        .into_iter()
                        .map(|(t, bps)| (t, bps / 1e6))
                        .collect(),
                    mark: Mark::Line,
                    color: k,
                })
                .collect(),
            markers: Vec::new(),
            note: Some(
                "cellular: Mahimahi traces from ../shared (read, not copied); WiFi: generated"
                    .into(),
            ),
            log_y: false,
        },
    )?;

    let adaptive = |name_prefix: &str| {
        rows.iter()
            .find(|r| r.policy == "adaptive" && r.network.starts_with(name_prefix))
    };
    let (lte, wifi) = (adaptive("LTE"), adaptive("public WiFi"));
    let (finding, verdict) = match (lte, wifi) {
        (Some(l), Some(w)) => {
            let better = l.fps > w.fps || l.accuracy_f1 > w.accuracy_f1;
            let costs_more = l.data_mb_per_min > w.data_mb_per_min;
            let others: Vec<String> = rows
                .iter()
                .filter(|r| r.policy == "adaptive")
                .map(|r| {
                    format!(
                        "{}: {:.2} fps, F1 {:.3}, p50 {:.0} ms, {:.1} MB/min",
                        r.network, r.fps, r.accuracy_f1, r.latency_p50_ms, r.data_mb_per_min
                    )
                })
                .collect();
            (
                format!(
                    "With our adaptive policy — {}. LTE {} public WiFi on frame rate or accuracy and uses {:.1}× its data. The slow 3G traces force lower bit rates and leave more windows late.",
                    others.join("; "),
                    if better { "beats" } else { "does not beat" },
                    l.data_mb_per_min / w.data_mb_per_min.max(1e-9)
                ),
                match (better, costs_more) {
                    (true, true) => Verdict::Agrees,
                    (false, false) => Verdict::Differs,
                    _ => Verdict::Partly,
                },
            )
        }
        _ => (
            "the LTE or WiFi network is missing".into(),
            Verdict::Differs,
        ),
    };
    Ok(Outcome {
        name: "wild".into(),
        title: "In the wild: cellular traces against public WiFi".into(),
        claim: "In the wild, performance over LTE is sometimes better than public WiFi; higher frame rates over LTE at the expense of data cost".into(),
        finding,
        verdict,
        conditions: {
            let mut c = profile_conditions(&profile);
            c.push(format!("each network replayed for one full period of its trace through the calibrated simulation; 50 ms propagation round trip; requirements L_max 200 ms, A_min 0.5; {generated_note}"));
            c
        },
        figures: vec![
            "wild-capacity.png".into(),
            "wild-fps.png".into(),
            "wild-latency.png".into(),
            "wild-accuracy.png".into(),
            "wild-data.png".into(),
        ],
        tables: vec!["wild.csv".into()],
        command: "deepoffload experiment wild".into(),
        numbers: serde_json::to_value(
            rows.iter()
                .map(|r| (format!("{} · {}", r.network, r.policy), r.fps))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )?,
        seconds: 0.0,
    })
}
