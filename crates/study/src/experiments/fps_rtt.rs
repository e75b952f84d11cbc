//! Study: "Increased latency → lower frame rate; when latency < 100 ms, should offload"
//! (stop-and-wait). Measured on the real pipeline: our edge server, our client, H.264 over the
//! link emulator at each round trip; the local line is the device class's own local run.

use super::write_csv;
use crate::live::Testbed;
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_client::{Mode, Pace, RunOptions, RunSummary};
use deepoffload_core::Placement;
use deepoffload_net::link::LinkSpec;
use deepoffload_plot::{line_chart, LineChart, Mark, Series};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Round trips swept, ms: the study's 0–300 ms, and on to 600 ms so that a crossover beyond
/// 300 ms is measured rather than extrapolated.
pub const RTTS_MS: [f64; 10] = [
    0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 600.0,
];
/// The study's crossover round trip, ms.
const STUDY_CROSSOVER_MS: f64 = 100.0;
const SERVER_MODEL: (&str, u32) = ("yolov4-tiny", 416);
const LOCAL_MODEL: (&str, u32) = ("yolov3-tiny", 416);
const LINK_RATE: &str = "10mbit";
const SCALE: f64 = 0.5;
const BITRATE: u32 = 1_000_000;
const INFLIGHT: usize = 4;

#[derive(Serialize)]
struct Row {
    mode: String,
    rtt_ms: f64,
    analysed_fps: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    network_ms: f64,
    frames: u64,
    remote_frames: u64,
    fallbacks: u64,
}

fn row(mode: &str, rtt_ms: f64, s: &RunSummary) -> Row {
    Row {
        mode: mode.into(),
        rtt_ms,
        analysed_fps: s.analysed_fps,
        latency_p50_ms: s.latency_ms.map_or(f64::NAN, |l| l.median),
        latency_p95_ms: s.p95_ms.unwrap_or(f64::NAN),
        network_ms: s.mean_breakdown.network_ms,
        frames: s.frames,
        remote_frames: s.remote_frames,
        fallbacks: s.fallbacks,
    }
}

/// Where stop-and-wait offloading falls to the local frame rate: interpolated between measured
/// round trips, or extrapolated from a straight line through frame time against round trip
/// (each frame costs a fixed time plus one round trip) when it lies beyond the sweep.
pub fn crossover(points: &[(f64, f64)], local_fps: f64) -> Option<(f64, bool)> {
    for w in points.windows(2) {
        let ((r0, f0), (r1, f1)) = (w[0], w[1]);
        if f0 >= local_fps && f1 < local_fps {
            return Some((r0 + (f0 - local_fps) / (f0 - f1) * (r1 - r0), false));
        }
    }
    if points.first().is_some_and(|p| p.1 < local_fps) {
        return Some((0.0, false));
    }
    let frame_times: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.1 > 0.0)
        .map(|&(r, f)| (r, 1e3 / f))
        .collect();
    let (c, _) = deepoffload_lab::fit::polyfit(&frame_times, 1)?;
    (c[1] > 0.0).then(|| ((1e3 / local_fps - c[0]) / c[1], true))
}

pub async fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let video = study.videos()?[0].clone();
    let seconds = study.live_seconds;
    let testbed = Testbed::start(&study.store, SERVER_MODEL.0, SERVER_MODEL.1).await?;
    let info = deepoffload_video::open(&video, &study.store, &Default::default())?
        .info()
        .clone();
    let resolution = (
        deepoffload_lab::grid::scaled_side(info.width, SCALE),
        deepoffload_lab::grid::scaled_side(info.height, SCALE),
    );
    let runs = RTTS_MS.len() * 2 + 1;
    let bar = ProgressBar::new(runs as u64).with_style(
        ProgressStyle::with_template("fps-rtt [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .expect("template"),
    );
    let mut rows = Vec::new();
    let base = |placement: Placement, mode: Mode| RunOptions {
        placement,
        fps: None,
        resolution: Some(resolution),
        bitrate_bps: BITRATE,
        mode,
        pace: Pace::Live,
        max_duration: Some(Duration::from_secs_f64(seconds)),
        track: deepoffload_core::Tracking::Off,
        ..RunOptions::default()
    };
    for (mode_name, mode) in [
        ("stop-and-wait", Mode::StopAndWait),
        ("pipelined", Mode::Pipelined { inflight: INFLIGHT }),
    ] {
        for rtt in RTTS_MS {
            bar.set_message(format!("{mode_name}, round trip {rtt:.0} ms"));
            let link = LinkSpec::parse(&format!("rate={LINK_RATE},delay={}ms", rtt / 2.0))
                .map_err(anyhow::Error::msg)?;
            let summary = testbed
                .run_on_device(
                    &study.store,
                    &video,
                    &study.device,
                    LOCAL_MODEL,
                    Some(link),
                    base(Placement::Remote, mode),
                )
                .await?;
            rows.push(row(mode_name, rtt, &summary));
            bar.inc(1);
        }
    }
    bar.set_message(format!("local on {}", study.device.name));
    let local_run = testbed
        .run_on_device(
            &study.store,
            &video,
            &study.device,
            LOCAL_MODEL,
            None,
            base(Placement::Local, Mode::StopAndWait),
        )
        .await?;
    let label = local_run.device.clone();
    bar.finish_and_clear();
    testbed.stop().await;
    let local_fps = local_run.analysed_fps;
    let local_ms = local_run.latency_ms.map_or(f64::NAN, |l| l.median);
    for rtt in RTTS_MS {
        let mut r = row("local", rtt, &local_run);
        r.rtt_ms = rtt;
        rows.push(r);
    }
    write_csv(&dir.join("fps-rtt.csv"), &rows)?;

    let series_of = |mode: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.mode == mode)
            .map(|r| (r.rtt_ms, r.analysed_fps))
            .collect()
    };
    let saw = series_of("stop-and-wait");
    let piped = series_of("pipelined");
    let cross = crossover(&saw, local_fps);
    let mut markers = vec![(STUDY_CROSSOVER_MS, "study: ~100 ms".to_string())];
    if let Some((x, extrapolated)) = cross {
        if !extrapolated || x <= RTTS_MS[RTTS_MS.len() - 1] {
            markers.push((
                x,
                format!(
                    "ours: {x:.0} ms{}",
                    if extrapolated { " (extrapolated)" } else { "" }
                ),
            ));
        }
    }
    let cross_text = match cross {
        Some((x, false)) => format!("{x:.0} ms"),
        Some((x, true)) => format!("{x:.0} ms (extrapolated beyond the sweep)"),
        None => "none found".into(),
    };
    line_chart(
        &dir.join("fps-rtt.png"),
        &LineChart {
            title: "Analysed frame rate against network round trip".into(),
            x_label: "network round trip (ms)".into(),
            y_label: "analysed frames per second".into(),
            series: vec![
                Series {
                    name: "offload, stop-and-wait (as the study)".into(),
                    points: saw.clone(),
                    mark: Mark::LinePoints,
                    color: 0,
                },
                Series {
                    name: format!("offload, pipelined ({INFLIGHT} in flight)"),
                    points: piped.clone(),
                    mark: Mark::LinePoints,
                    color: 2,
                },
                Series {
                    name: format!("local only ({label}, {local_ms:.0} ms/frame)"),
                    points: vec![(0.0, local_fps), (RTTS_MS[RTTS_MS.len() - 1], local_fps)],
                    mark: Mark::Dashed,
                    color: 1,
                },
            ],
            markers,
            note: Some(format!(
                "server {}@{} on this CPU; {}x{} H.264 at {} over a {LINK_RATE} emulated link; our crossover {cross_text}",
                SERVER_MODEL.0, SERVER_MODEL.1, resolution.0, resolution.1,
                deepoffload_core::format_bitrate(BITRATE as f64)
            )),
            log_y: false,
        },
    )?;

    let saw0 = saw.first().map_or(f64::NAN, |p| p.1);
    let saw100 = saw.iter().find(|p| p.0 == 100.0).map_or(f64::NAN, |p| p.1);
    let at = |series: &[(f64, f64)], rtt: f64| {
        series.iter().find(|p| p.0 == rtt).map_or(f64::NAN, |p| p.1)
    };
    let saw300 = at(&saw, 300.0);
    let piped300 = at(&piped, 300.0);
    let fixed_ms = rows
        .iter()
        .find(|r| r.mode == "stop-and-wait" && r.rtt_ms == 0.0)
        .map_or(f64::NAN, |r| r.latency_p50_ms);
    let verdict = match cross {
        Some((x, _)) if (50.0..=200.0).contains(&x) => Verdict::Agrees,
        Some(_) => Verdict::Partly,
        None => Verdict::Differs,
    };
    Ok(Outcome {
        name: "fps-rtt".into(),
        title: "Frame rate against network round trip".into(),
        claim: "Increased latency → lower frame rate; when latency < 100 ms, offloading wins (stop-and-wait)".into(),
        finding: format!(
            "Stop-and-wait offloading falls from {saw0:.2} fps at 0 ms to {saw100:.2} fps at 100 ms and {saw300:.2} fps at 300 ms; local-only on {label} runs {local_fps:.2} fps ({local_ms:.0} ms per frame). Offloading wins below a crossover round trip of {cross_text}, against the study's ~100 ms: the crossover is where one round trip plus the frame's fixed cost (encode, transfer, server inference; about {fixed_ms:.0} ms here at 0 ms round trip) reaches the local time, so it moves with the uplink, the frame size and the server — the study's path cost more per frame than ours ({LINK_RATE} link, this edge CPU). Pipelining {INFLIGHT} frames keeps {piped300:.2} fps even at 300 ms: the round trip then costs latency, not frame rate."
        ),
        verdict,
        conditions: vec![
            format!("device class {} (local yolov3-tiny@416, {local_ms:.0} ms/frame)", study.device.name),
            format!("edge server {}@{} on {}", SERVER_MODEL.0, SERVER_MODEL.1, crate::machine()),
            format!("video {}, {}x{}, H.264 CBR {}, live camera pace; link {LINK_RATE}, round trip = 2 × one-way delay", video.file_name().unwrap_or_default().to_string_lossy(), resolution.0, resolution.1, deepoffload_core::format_bitrate(BITRATE as f64)),
            format!("{seconds:.0} s of video per point; real sockets through the link emulator"),
        ],
        figures: vec!["fps-rtt.png".into()],
        tables: vec!["fps-rtt.csv".into()],
        command: "deepoffload experiment fps-rtt".into(),
        numbers: serde_json::json!({
            "crossover_ms": cross.map(|c| c.0),
            "crossover_extrapolated": cross.map(|c| c.1),
            "local_fps": local_fps,
            "stop_and_wait_fps": saw,
            "pipelined_fps": piped,
        }),
        seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::crossover;

    #[test]
    fn crossover_is_interpolated_inside_the_sweep_and_extrapolated_beyond() {
        let inside = [(0.0, 4.0), (100.0, 3.0), (200.0, 1.0)];
        assert_eq!(crossover(&inside, 2.0), Some((150.0, false)));
        // Frame time 100 ms + round trip: 2 fps (500 ms) is reached at 400 ms.
        let beyond: Vec<(f64, f64)> = [0.0, 100.0, 200.0]
            .iter()
            .map(|&r| (r, 1e3 / (100.0 + r)))
            .collect();
        let (x, extrapolated) = crossover(&beyond, 2.0).unwrap();
        assert!(extrapolated && (x - 400.0).abs() < 1e-6, "{x}");
        assert_eq!(crossover(&[(0.0, 1.0)], 2.0), Some((0.0, false)));
    }
}
