//! Study: "Battery drop after 30 s of continuous use: higher bandwidth → more battery; prefer to
//! run locally to save battery". Replayed on constant-rate links through the simulation
//! calibrated on the profile (device power while busy and idle, radio power by Huang et al.).

use super::{profile_conditions, write_csv};
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_decide::Requirements;
use deepoffload_lab::replay::{PolicyKind, Replay, ReplaySettings};
use deepoffload_net::link::{Piece, Trace};
use deepoffload_plot::{bar_chart, BarChart};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// Uplink bandwidths swept, bits per second.
const BANDWIDTHS: [f64; 6] = [0.25e6, 0.5e6, 1e6, 2e6, 5e6, 20e6];
const SECONDS: f64 = 30.0;
/// OnePlus 3T battery: 3400 mAh at 3.85 V.
const BATTERY_J: f64 = 3.4 * 3.85 * 3600.0;

#[derive(Serialize)]
struct Row {
    bandwidth_bps: f64,
    placement: String,
    radio: String,
    configuration: String,
    energy_j: f64,
    battery_percent: f64,
    fps: f64,
    joules_per_frame: f64,
    data_mb: f64,
}

fn radio_name(radio: &str) -> &str {
    match radio {
        "wifi" => "WiFi",
        "lte" => "LTE",
        other => other,
    }
}

pub fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let (profile, optimiser) = study.optimiser(deepoffload_core::Tracking::Off)?;
    // The study's pipeline: offloaded frames only, no stand-in running beside them.
    let settings = ReplaySettings {
        duration_s: Some(SECONDS),
        hedge: deepoffload_decide::Hedge::Off,
        ..ReplaySettings::default()
    };
    let mut rows = Vec::new();
    let series = [
        ("local", "lte", PolicyKind::LocalOnly),
        ("remote", "wifi", PolicyKind::BandwidthOnly),
        ("remote", "lte", PolicyKind::BandwidthOnly),
    ];
    for bps in BANDWIDTHS {
        let trace = Arc::new(
            Trace::compose(
                "constant",
                &[Piece::Rate {
                    seconds: SECONDS * 2.0,
                    bps,
                }],
            )
            .map_err(anyhow::Error::msg)?,
        );
        for (placement, radio, policy) in series {
            let requirements = Requirements {
                radio: radio.parse().map_err(anyhow::Error::msg)?,
                ..Requirements::deepdecision()
            };
            let replay = Replay::new(&optimiser, &requirements, &settings, trace.clone())
                .map_err(anyhow::Error::msg)?;
            let report = tokio::task::block_in_place(|| replay.run(policy));
            rows.push(Row {
                bandwidth_bps: bps,
                placement: placement.into(),
                radio: if placement == "local" {
                    "idle".into()
                } else {
                    radio.into()
                },
                configuration: report.main_config.clone(),
                energy_j: report.energy_j,
                battery_percent: report.energy_j / BATTERY_J * 100.0,
                fps: report.fps,
                joules_per_frame: report.joules_per_frame,
                data_mb: report.data_mb,
            });
        }
    }
    write_csv(&dir.join("energy.csv"), &rows)?;
    let label = |r: &Row| {
        if r.placement == "local" {
            "local only".to_string()
        } else {
            format!("offload over {}", radio_name(&r.radio))
        }
    };
    let parts: Vec<String> = rows.iter().take(series.len()).map(label).collect();
    bar_chart(
        &dir.join("energy.png"),
        &BarChart {
            title: "Device energy after 30 s of continuous use".into(),
            x_label: "uplink bandwidth".into(),
            y_label: "energy in 30 s (J)".into(),
            parts: parts.clone(),
            bars: BANDWIDTHS
                .iter()
                .enumerate()
                .map(|(i, bps)| {
                    (
                        deepoffload_core::format_bitrate(*bps),
                        rows[i * series.len()..(i + 1) * series.len()]
                            .iter()
                            .map(|r| r.energy_j)
                            .collect(),
                    )
                })
                .collect(),
            stacked: false,
            note: Some(format!(
                "{} ({}); offloading fills the link (bit rate from the estimate); energy: {}",
                profile.device.name,
                if profile.device.emulated {
                    "emulated"
                } else {
                    "measured"
                },
                profile.energy_model.backend
            )),
        },
    )?;
    let at = |placement: &str, radio: &str, bps: f64| {
        rows.iter()
            .find(|r| r.placement == placement && r.radio == radio && r.bandwidth_bps == bps)
    };
    let lo = BANDWIDTHS[0];
    let hi = BANDWIDTHS[BANDWIDTHS.len() - 1];
    let local = at("local", "idle", lo).map_or(f64::NAN, |r| r.energy_j);
    let describe = |radio: &str| {
        let (a, b) = (at("remote", radio, lo), at("remote", radio, hi));
        match (a, b) {
            (Some(a), Some(b)) => format!(
                "offloading over {} uses {:.1} J at {} ({:.1} fps) and {:.1} J at {} ({:.1} fps, {})",
                radio_name(radio),
                a.energy_j,
                deepoffload_core::format_bitrate(lo),
                a.fps,
                b.energy_j,
                deepoffload_core::format_bitrate(hi),
                b.fps,
                b.configuration
            ),
            _ => String::new(),
        }
    };
    let lte_rises = match (at("remote", "lte", lo), at("remote", "lte", hi)) {
        (Some(a), Some(b)) => b.energy_j > a.energy_j,
        _ => false,
    };
    let local_cheapest = rows
        .iter()
        .filter(|r| r.placement == "remote")
        .all(|r| r.energy_j >= local);
    let local_fps = at("local", "idle", lo).map_or(f64::NAN, |r| r.fps);
    let per_frame_local = at("local", "idle", lo).map_or(f64::NAN, |r| r.joules_per_frame);
    let cheaper_per_frame = rows
        .iter()
        .filter(|r| r.placement == "remote")
        .all(|r| r.joules_per_frame < per_frame_local);
    Ok(Outcome {
        name: "energy".into(),
        title: "Energy after 30 s per placement and bandwidth".into(),
        claim: "Higher bandwidth → more battery; prefer to run locally to save battery".into(),
        finding: format!(
            "Local-only uses {local:.1} J in 30 s ({:.2}% of a 3400 mAh battery) at {local_fps:.2} fps; {}; {}. Offloading that fills the link (the bit rate follows the bandwidth, as the study streamed) {} with bandwidth. {} Per analysed frame offloading is {} ({per_frame_local:.2} J/frame locally).",
            local / BATTERY_J * 100.0,
            describe("wifi"),
            describe("lte"),
            if lte_rises { "costs more energy" } else { "does not cost more energy" },
            if local_cheapest {
                "Running locally is the cheapest way to spend 30 s."
            } else {
                "Running locally is not the cheapest way to spend 30 s here: keeping the phone's CPU busy on every frame costs more than the radio."
            },
            if cheaper_per_frame { "cheaper at every bandwidth" } else { "not always cheaper" }
        ),
        verdict: match (lte_rises, local_cheapest) {
            (true, true) => Verdict::Agrees,
            (false, false) => Verdict::Differs,
            _ => Verdict::Partly,
        },
        conditions: {
            let mut c = profile_conditions(&profile);
            c.push(format!("constant-rate uplinks, 50 ms round trip, {SECONDS:.0} s replayed through the calibrated simulation; local: the best local configuration; offload: the best remote configuration with its bit rate set from the bandwidth estimate every second (the bandwidth-only policy)"));
            c
        },
        figures: vec!["energy.png".into()],
        tables: vec!["energy.csv".into()],
        command: "deepoffload experiment energy".into(),
        numbers: serde_json::json!({
            "local_j": local,
            "remote_lte_rises_with_bandwidth": lte_rises,
            "local_cheapest": local_cheapest,
        }),
        seconds: 0.0,
    })
}
