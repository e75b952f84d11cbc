//! Study: "When offloading, the majority of time is spent on the network" — timestamps as a
//! frame travels from the device to the server and back, on the real pipeline.

use super::write_csv;
use crate::live::Testbed;
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_client::{Pace, RunOptions, RunSummary};
use deepoffload_core::Placement;
use deepoffload_net::link::LinkSpec;
use deepoffload_plot::{bar_chart, BarChart};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

const SERVER_MODEL: (&str, u32) = ("yolov4-tiny", 416);
const LOCAL_MODEL: (&str, u32) = ("yolov3-tiny", 416);
/// The links: a nearby edge server on a good uplink, and a distant server over a slow public
/// WiFi uplink (the study's server was in another city for some trials).
const LINKS: [(&str, &str); 2] = [
    ("edge", "rate=5mbit,delay=25ms"),
    ("far", "rate=2mbit,delay=75ms"),
];
/// Offloaded configurations: (scale of the source, bit rate).
const REMOTE: [(f64, u32); 3] = [(0.25, 250_000), (0.5, 1_000_000), (1.0, 2_000_000)];
const PARTS: [&str; 7] = [
    "camera wait",
    "resize + encode",
    "network",
    "server decode",
    "server queue",
    "inference (server or device)",
    "post-processing",
];

#[derive(Serialize)]
struct Row {
    configuration: String,
    frames: u64,
    camera_wait_ms: f64,
    resize_encode_ms: f64,
    network_ms: f64,
    server_decode_ms: f64,
    server_queue_ms: f64,
    inference_ms: f64,
    post_ms: f64,
    total_ms: f64,
    network_share: f64,
}

fn parts(s: &RunSummary) -> [f64; 7] {
    let b = &s.mean_breakdown;
    [
        b.wait_ms,
        b.resize_ms + b.encode_ms,
        b.network_ms,
        b.server_decode_ms,
        b.server_queue_ms + b.server_other_ms,
        b.server_inference_ms + b.local_preprocess_ms + b.local_inference_ms,
        b.local_postprocess_ms + b.post_ms,
    ]
}

pub async fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let video = study.videos()?[0].clone();
    let info = deepoffload_video::open(&video, &study.store, &Default::default())?
        .info()
        .clone();
    let testbed = Testbed::start(&study.store, SERVER_MODEL.0, SERVER_MODEL.1).await?;
    let bar = ProgressBar::new((REMOTE.len() * LINKS.len()) as u64 + 1).with_style(
        ProgressStyle::with_template("breakdown [{bar:30}] {pos}/{len} {msg}").expect("template"),
    );
    let mut runs: Vec<(String, RunSummary)> = Vec::new();
    let side = |s: f64| {
        (
            deepoffload_lab::grid::scaled_side(info.width, s),
            deepoffload_lab::grid::scaled_side(info.height, s),
        )
    };
    for (link_name, link_spec) in LINKS {
        for (scale, bitrate) in REMOTE {
            let (w, h) = side(scale);
            let name = format!("{link_name} {w}x{h} {}k", bitrate / 1000);
            bar.set_message(name.clone());
            let options = RunOptions {
                placement: Placement::Remote,
                resolution: Some((w, h)),
                bitrate_bps: bitrate,
                pace: Pace::Live,
                max_duration: Some(Duration::from_secs_f64(study.live_seconds)),
                track: deepoffload_core::Tracking::Off,
                ..RunOptions::default()
            };
            let link = LinkSpec::parse(link_spec).map_err(anyhow::Error::msg)?;
            let s = testbed
                .run_on_device(
                    &study.store,
                    &video,
                    &study.device,
                    LOCAL_MODEL,
                    Some(link),
                    options,
                )
                .await?;
            runs.push((name, s));
            bar.inc(1);
        }
    }
    let (w, h) = side(0.5);
    bar.set_message(format!("local on {}", study.device.name));
    let options = RunOptions {
        placement: Placement::Local,
        resolution: Some((w, h)),
        pace: Pace::Live,
        max_duration: Some(Duration::from_secs_f64(study.live_seconds)),
        track: deepoffload_core::Tracking::Off,
        ..RunOptions::default()
    };
    let s = testbed
        .run_on_device(
            &study.store,
            &video,
            &study.device,
            LOCAL_MODEL,
            None,
            options,
        )
        .await?;
    let label = s.device.clone();
    runs.push((format!("local {w}x{h}"), s));
    bar.finish_and_clear();
    testbed.stop().await;

    let rows: Vec<Row> = runs
        .iter()
        .map(|(name, s)| {
            let p = parts(s);
            let total = s.mean_breakdown.total_ms;
            Row {
                configuration: name.clone(),
                frames: s.frames,
                camera_wait_ms: p[0],
                resize_encode_ms: p[1],
                network_ms: p[2],
                server_decode_ms: p[3],
                server_queue_ms: p[4],
                inference_ms: p[5],
                post_ms: p[6],
                total_ms: total,
                network_share: if total > 0.0 { p[2] / total } else { 0.0 },
            }
        })
        .collect();
    write_csv(&dir.join("breakdown.csv"), &rows)?;
    bar_chart(
        &dir.join("breakdown.png"),
        &BarChart {
            title: "Where the time of one frame goes".into(),
            x_label: "configuration".into(),
            y_label: "mean time per frame (ms)".into(),
            parts: PARTS.iter().map(|p| p.to_string()).collect(),
            bars: runs
                .iter()
                .map(|(name, s)| (name.clone(), parts(s).to_vec()))
                .collect(),
            stacked: true,
            note: Some(format!(
                "server {}@{}; edge: {}, far: {} (each way); local on {label}",
                SERVER_MODEL.0, SERVER_MODEL.1, LINKS[0].1, LINKS[1].1
            )),
        },
    )?;
    let remote_rows = &rows[..rows.len() - 1];
    let shares: Vec<f64> = remote_rows.iter().map(|r| r.network_share).collect();
    let largest = remote_rows
        .iter()
        .filter(|r| {
            let others = [
                r.camera_wait_ms,
                r.resize_encode_ms,
                r.server_decode_ms,
                r.server_queue_ms,
                r.inference_ms,
                r.post_ms,
            ];
            others.iter().all(|&o| r.network_ms >= o)
        })
        .count();
    let verdict = if shares.iter().all(|&s| s > 0.5) {
        Verdict::Agrees
    } else if largest > 0 || shares.iter().any(|&s| s > 0.5) {
        Verdict::Partly
    } else {
        Verdict::Differs
    };
    let each: Vec<String> = remote_rows
        .iter()
        .map(|r| {
            format!(
                "{}: network {:.0} of {:.0} ms ({:.0}%)",
                r.configuration,
                r.network_ms,
                r.total_ms,
                r.network_share * 100.0
            )
        })
        .collect();
    Ok(Outcome {
        name: "breakdown".into(),
        title: "Where offloading time goes".into(),
        claim: "When offloading, the majority of time is spent on the network".into(),
        finding: format!(
            "{}. The network is the largest part in {largest} of {} offloaded configurations; on the device, inference is nearly all of the {:.0} ms.",
            each.join("; "),
            remote_rows.len(),
            rows.last().map_or(0.0, |r| r.total_ms)
        ),
        verdict,
        conditions: vec![
            format!("edge server {}@{} on {}", SERVER_MODEL.0, SERVER_MODEL.1, crate::machine()),
            format!("links (emulated, delay each way): edge {}, far {}; live camera pace; {:.0} s of video per configuration", LINKS[0].1, LINKS[1].1, study.live_seconds),
            format!("device class {} for the local bar (yolov3-tiny@416)", study.device.name),
            "network = round trip − server's reported durations (no clock sync needed)".into(),
        ],
        figures: vec!["breakdown.png".into()],
        tables: vec!["breakdown.csv".into()],
        command: "deepoffload experiment breakdown".into(),
        numbers: serde_json::json!({ "network_share": shares }),
        seconds: 0.0,
    })
}
