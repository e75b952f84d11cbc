//! The demo's presentation: the terminal tables, the timeline charts, the annotated frames and
//! the report's demo section (as document blocks, saved for `deepoffload report`). It only shows
//! what `evaluate` computed and the runs recorded; it must never compute a figure the summary
//! does not hold, nor write Markdown or HTML itself (the report renders the blocks).

use super::evaluate::{Evaluated, PolicyRow};
use super::policies::{ran, Policies, PolicyRun};
use super::script::{phase_at, Phase};
use super::{DemoOptions, LOCAL_MODEL, ONE_WAY_MS, REFERENCE, SERVER_MODEL};
use crate::experiments::mean;
use crate::report::document::{text, Block, Inline};
use crate::report::DemoSection;
use anyhow::{Context, Result};
use comfy_table::{presets, Table};
use deepoffload_client::FrameRecord;
use deepoffload_core::{quantile, Detection, Placement, RgbBuffer};
use deepoffload_net::link::Trace;
use deepoffload_plot::{line_chart, LineChart, Mark, Series};
use std::path::Path;

/// Each policy's figures over the whole script, one row a policy.
pub(super) fn summary_table(rows: &[PolicyRow]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "policy",
        "frames",
        "fps",
        "remote",
        "p50 ms",
        "p95 ms",
        "> 200 ms",
        "F1 (measured)",
        "displayed F1 (tracked)",
        "data MB",
    ]);
    for r in rows {
        t.add_row([
            r.policy.clone(),
            r.frames.to_string(),
            format!("{:.2}", r.fps),
            format!("{:.0}%", r.remote_share * 100.0),
            format!("{:.0}", r.latency_p50_ms),
            format!("{:.0}", r.latency_p95_ms),
            format!("{:.0}%", r.late_share * 100.0),
            format!("{:.3}", r.f1),
            format!("{:.3}", r.displayed_f1),
            format!("{:.1}", r.data_mb),
        ]);
    }
    t
}

/// Every policy phase by phase (fps / p50 / F1), and where the adaptive client mostly ran.
pub(super) fn phase_table(runs: &[PolicyRun], evaluated: &Evaluated, phases: &[Phase]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["phase".to_string()];
    for r in runs {
        header.push(format!("{} fps / p50 ms / F1", r.name));
    }
    header.push("adaptive mostly".into());
    t.set_header(header);
    for p in phases {
        let within = |x: f64| x >= p.start_s && x < p.start_s + p.seconds;
        let mut row = vec![format!("{} ({:.0} s)", p.name, p.seconds)];
        for (k, r) in runs.iter().enumerate() {
            let recs: Vec<&FrameRecord> =
                r.records.iter().filter(|x| within(x.capture_s)).collect();
            let lat: Vec<f64> = recs.iter().map(|x| x.latency.total_ms).collect();
            let f1 = mean(
                evaluated
                    .instants
                    .iter()
                    .zip(&evaluated.scores[k])
                    .filter(|(t, _)| within(**t))
                    .map(|(_, s)| *s),
            );
            row.push(format!(
                "{:.1} / {} / {}",
                recs.len() as f64 / p.seconds,
                quantile(&lat, 0.5).map_or("-".into(), |v| format!("{v:.0}")),
                f1.map_or("-".into(), |v| format!("{v:.2}"))
            ));
        }
        let adaptive: Vec<&FrameRecord> = runs[0]
            .records
            .iter()
            .filter(|x| within(x.capture_s))
            .collect();
        row.push(mostly(&adaptive));
        t.add_row(row);
    }
    t
}

/// Where most of a phase's frames ran: "remote (12/14) 384x288 150k", "local (5/6)" or "-".
fn mostly(records: &[&FrameRecord]) -> String {
    let remote: Vec<&&FrameRecord> = records
        .iter()
        .filter(|x| x.placement == Placement::Remote)
        .collect();
    if records.is_empty() {
        "-".into()
    } else if remote.len() * 2 >= records.len() {
        let mut sizes: Vec<String> = remote
            .iter()
            .map(|x| {
                format!(
                    "{}x{} {}k",
                    x.config.width,
                    x.config.height,
                    x.config.bitrate_bps / 1000
                )
            })
            .collect();
        sizes.sort();
        sizes.dedup();
        format!(
            "remote ({}/{}) {}",
            remote.len(),
            records.len(),
            sizes.join(", ")
        )
    } else {
        format!("local ({}/{})", records.len() - remote.len(), records.len())
    }
}

/// The adaptive run's two charts in `dir`: latency per frame by placement, and the network
/// beside the client's estimate and chosen bit rate.
pub(super) fn timeline(
    dir: &Path,
    run: &PolicyRun,
    phases: &[Phase],
    trace: &Trace,
    total_s: f64,
) -> Result<()> {
    let markers: Vec<(f64, String)> = phases
        .iter()
        .map(|p| (p.start_s, p.name.to_string()))
        .collect();
    latency_chart(dir, run, markers.clone())?;
    network_chart(dir, run, markers, trace, total_s)
}

fn latency_chart(dir: &Path, run: &PolicyRun, markers: Vec<(f64, String)>) -> Result<()> {
    let points = |placement: Placement| -> Vec<(f64, f64)> {
        run.records
            .iter()
            .filter(|r| r.placement == placement)
            .map(|r| (r.capture_s, r.latency.total_ms))
            .collect()
    };
    line_chart(
        &dir.join("timeline-latency.png"),
        &LineChart {
            title: "Adaptive client through the scripted network".into(),
            x_label: "time (s)".into(),
            y_label: "capture-to-result latency (ms)".into(),
            series: vec![
                Series {
                    name: "frame analysed on the edge server".into(),
                    points: points(Placement::Remote),
                    mark: Mark::Points,
                    color: 0,
                },
                Series {
                    name: "frame analysed on the device".into(),
                    points: points(Placement::Local),
                    mark: Mark::Points,
                    color: 1,
                },
            ],
            markers,
            note: Some(
                "each dot is one analysed frame; dashed lines start the script's phases".into(),
            ),
            log_y: false,
        },
    )?;
    Ok(())
}

fn network_chart(
    dir: &Path,
    run: &PolicyRun,
    markers: Vec<(f64, String)>,
    trace: &Trace,
    total_s: f64,
) -> Result<()> {
    let estimate: Vec<(f64, f64)> = run
        .decisions
        .iter()
        .map(|d| (d.time_s, d.estimate.uplink_bps / 1e6))
        .collect();
    let chosen: Vec<(f64, f64)> = run
        .records
        .iter()
        .filter(|r| r.placement == Placement::Remote)
        .map(|r| (r.capture_s, r.config.bitrate_bps as f64 / 1e6))
        .collect();
    line_chart(
        &dir.join("timeline-network.png"),
        &LineChart {
            title: "The network, what the client estimated, and the bit rate it chose".into(),
            x_label: "time (s)".into(),
            y_label: "Mbit/s (log scale)".into(),
            series: vec![
                Series {
                    name: "link capacity (script, 1 s windows)".into(),
                    points: trace
                        .capacity_series(1.0, total_s)
                        .into_iter()
                        .map(|(t, b)| (t, b / 1e6))
                        .collect(),
                    mark: Mark::Line,
                    color: 7,
                },
                Series {
                    name: "uplink estimate at each decision".into(),
                    points: estimate,
                    mark: Mark::LinePoints,
                    color: 2,
                },
                Series {
                    name: "H.264 bit rate of remote frames".into(),
                    points: chosen,
                    mark: Mark::Points,
                    color: 0,
                },
            ],
            markers,
            note: None,
            log_y: true,
        },
    )?;
    Ok(())
}

/// The adaptive run's screen at `t`: the frame with the boxes shown then and a caption, saved
/// as `frames_dir/tNNN.jpg`.
pub(super) fn draw_screen(
    frame: &RgbBuffer,
    predicted: &[Detection],
    on: Option<&FrameRecord>,
    t: f64,
    phases: &[Phase],
    frames_dir: &Path,
) -> Result<()> {
    let caption = match on {
        Some(r) => vec![
            format!("t={t:.0}s  {}  adaptive", phase_at(phases, t)),
            format!(
                "{}  latency {:.0} ms  age {:.0} ms",
                ran(r),
                r.latency.total_ms,
                (t - r.capture_s) * 1e3
            ),
        ],
        None => vec![format!("t={t:.0}s  {}  no result yet", phase_at(phases, t))],
    };
    let img = deepoffload_client::annotate::draw_screen(frame.view(), predicted, &caption);
    let path = frames_dir.join(format!("t{:03}.jpg", t.round() as u64));
    img.save(&path)
        .with_context(|| format!("writing {}", path.display()))
}

/// The report's demo section: the setup, the script, both tables, how F1 was measured, where
/// the files are, and the two timeline charts.
pub(super) fn section(
    options: &DemoOptions,
    policies: &Policies,
    switches: (usize, usize),
    phases: &[Phase],
    table: &Table,
    phase_table: &Table,
) -> DemoSection {
    let device_line = format!(
        "Device {} (emulated; local {}@{}), edge server {}@{} on {}, video {}, link {} ms each way. Local-only: {}; remote-only: {} (each the best of its placement on good WiFi). Adaptive switched placement {} time(s) remote → local and {} time(s) local → remote.",
        options.device.name, LOCAL_MODEL.0, LOCAL_MODEL.1, SERVER_MODEL.0, SERVER_MODEL.1,
        crate::machine(),
        options.video.file_name().unwrap_or_default().to_string_lossy(),
        ONE_WAY_MS, policies.local_key, policies.remote_key, switches.0, switches.1
    );
    let script_line = phases
        .iter()
        .map(|p| {
            format!(
                "{} {:.0}–{:.0} s ({})",
                p.name,
                p.start_s,
                p.start_s + p.seconds,
                p.description
            )
        })
        .collect::<Vec<_>>()
        .join(" → ");
    let figure = |path: &str| Block::Image {
        path: path.into(),
        alt: path.into(),
    };
    DemoSection {
        blocks: vec![
            Block::Paragraph(vec![text(device_line)]),
            Block::Paragraph(vec![text(format!("Script: {script_line}."))]),
            Block::Code(table.to_string()),
            Block::Paragraph(vec![text("Adaptive, phase by phase:")]),
            Block::Code(phase_table.to_string()),
            Block::Paragraph(vec![
                text(format!("F1 is measured: once per second, the result on screen is matched (IoU ≥ 0.5) against {}@{} on the raw frame; displayed F1 matches the boxes on the displayed frame at that instant instead, the latest result carried there by the on-device tracker. Frames with boxes: ", REFERENCE.0, REFERENCE.1)),
                Inline::Code("demo/frames/".into()),
                text("; every displayed frame of the adaptive run, annotated: "),
                Inline::Code("demo/adaptive.mp4".into()),
                text(" (records "),
                Inline::Code("demo/adaptive-displayed.jsonl".into()),
                text(")"),
                text(". Records: "),
                Inline::Code("demo/adaptive-records.jsonl".into()),
                text("; decisions with their reasons: "),
                Inline::Code("demo/adaptive-decisions.jsonl".into()),
                text("."),
            ]),
            figure("demo/timeline-latency.png"),
            figure("demo/timeline-network.png"),
        ],
    }
}

const SECTION_FILE: &str = "demo/section.json";

/// Keeps the section in `out` so that a later `deepoffload report` shows it too.
pub(super) fn save_section(out: &Path, section: &DemoSection) -> Result<()> {
    let path = out.join(SECTION_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(section)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The demo's report section saved by an earlier `demo` in `out`, for `deepoffload report`.
pub fn read_section(out: &Path) -> Option<DemoSection> {
    let text = std::fs::read_to_string(out.join(SECTION_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
