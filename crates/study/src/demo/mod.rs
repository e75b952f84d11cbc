//! `deepoffload demo`: the whole system in one command. An edge server starts on loopback; the
//! adaptive client analyses a video through a scripted network — good WiFi, congestion, a
//! stretch of a real LTE trace, an outage, recovery — while the decision engine moves frames
//! between the phone and the server. Local-only and remote-only run the same script for
//! comparison. Accuracy is measured, not predicted: at one frame per second the result on
//! screen is matched against the reference detector on the raw frame.
//!
//! This module only orchestrates — inputs checked, then [`script`], `profile`, `policies`,
//! `evaluate` and `present` in turn, and their files written; it must never compute a figure
//! or lay out a table itself.

mod evaluate;
mod policies;
mod present;
mod profile;
mod script;

pub use evaluate::placement_switches;
pub use present::read_section;
pub use profile::demo_grid;
pub use script::{script, Phase};

use crate::report;
use anyhow::{bail, Context, Result};
use deepoffload_assets::Store;
use deepoffload_lab::DeviceClass;
use policies::{Policies, Scene};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The study's device model: tiny YOLO at 416, ~600 ms per frame on its phone.
const LOCAL_MODEL: (&str, u32) = ("yolov3-tiny", 416);
/// What the edge server runs.
const SERVER_MODEL: (&str, u32) = ("yolov4-tiny", 416);
/// The detector the measured accuracy is scored against.
const REFERENCE: (&str, u32) = ("yolov4-tiny", 608);
/// One-way delay of the scripted link.
const ONE_WAY_MS: u64 = 10;
/// Matching threshold of the measured accuracy, as in the profiles.
const IOU: f32 = 0.5;

/// What the demo needs, as the command line gives it.
pub struct DemoOptions {
    /// Where the models, runtime and videos come from.
    pub store: Store,
    /// Directory for the report, frames, records and decisions.
    pub out: PathBuf,
    /// The video the client analyses.
    pub video: PathBuf,
    /// The emulated phone.
    pub device: DeviceClass,
    /// Decide from this profile instead of measuring a quick one.
    pub profile: Option<PathBuf>,
    /// Multiplies every phase's length.
    pub time_scale: f64,
}

/// What the demo produced, for the command to print.
pub struct DemoOutcome {
    /// The summary table, one row a policy.
    pub table: String,
    /// `report.html`.
    pub report: PathBuf,
    /// The adaptive run's annotated frames.
    pub frames_dir: PathBuf,
    /// The adaptive run's records (`adaptive-records.jsonl`).
    pub records: PathBuf,
    /// The adaptive run's displayed frames, annotated (`adaptive.mp4`).
    pub video: PathBuf,
    /// Placement switches of the adaptive run: (remote → local, local → remote).
    pub switches: (usize, usize),
}

/// Runs the demo: script, profile, the three policies live, evaluation, charts and the report.
pub async fn run(options: DemoOptions) -> Result<DemoOutcome> {
    let started = std::time::Instant::now();
    let store = &options.store;
    if !options.video.exists() {
        bail!(
            "{}: no such video (pass --video FILE)",
            options.video.display()
        );
    }
    let dir = options.out.join("demo");
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir)
        .with_context(|| format!("creating {}", frames_dir.display()))?;
    deepoffload_plot::init_font(store)?;
    deepoffload_detect::init_runtime(store, None)?;
    let info = deepoffload_video::open(&options.video, store, &Default::default())?
        .info()
        .clone();
    let (trace, phases) = script(script::shared_lte(store)?.as_ref(), options.time_scale)?;
    let total_s: f64 = phases.iter().map(|p| p.seconds).sum();
    if let Some(video_s) = info.duration.map(|d| d.as_secs_f64()) {
        if video_s + 0.5 < total_s {
            bail!(
                "{}: {video_s:.0} s of video, the script needs {total_s:.0} s — use a longer video or --time-scale {:.2}",
                options.video.display(),
                video_s / total_s * options.time_scale
            );
        }
    }
    std::fs::write(dir.join("script.mahimahi"), trace.to_mahimahi())?;

    let policies = Policies::new(&profile::profile(&options, total_s)?)?;
    let annotate = dir.join("adaptive.mp4");
    let scene = Scene {
        annotate: &annotate,
        options: &options,
        info: &info,
        trace: &trace,
        phases: &phases,
        total_s,
    };
    let runs = policies.run_all(&scene).await?;
    let evaluated = tokio::task::block_in_place(|| {
        evaluate::evaluate(store, &options.video, &runs, &phases, &frames_dir, total_s)
    })?;

    let records_path = dir.join("adaptive-records.jsonl");
    write_jsonl(&records_path, &runs[0].records)?;
    write_jsonl(&dir.join("adaptive-decisions.jsonl"), &runs[0].decisions)?;
    write_jsonl(&dir.join("adaptive-displayed.jsonl"), &runs[0].displayed)?;
    let switches = placement_switches(&runs[0].records);
    let rows = evaluate::summarise(&runs, &evaluated, policies.requirements.max_latency_ms);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "phases": phases, "policies": rows,
            "switches_remote_to_local": switches.0, "switches_local_to_remote": switches.1,
            "local_only": policies.local_key.to_string(), "remote_only": policies.remote_key.to_string(),
            "seconds": started.elapsed().as_secs_f64(),
        }))?,
    )?;
    let table = present::summary_table(&rows);
    let phase_table = present::phase_table(&runs, &evaluated, &phases);
    present::timeline(&dir, &runs[0], &phases, &trace, total_s)?;
    let section = present::section(&options, &policies, switches, &phases, &table, &phase_table);
    present::save_section(&options.out, &section)?;
    let (report_path, _) = report::write(&options.out, Some(&section))?;
    eprintln!("{phase_table}");
    eprintln!(
        "demo finished in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(DemoOutcome {
        table: table.to_string(),
        report: report_path,
        frames_dir,
        records: records_path,
        video: annotate,
        switches,
    })
}

/// One JSON object a line.
fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
