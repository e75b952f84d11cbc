//! `deepoffload demo`: the whole system in one command. An edge server starts on loopback; the
//! adaptive client analyses a video through a scripted network — good WiFi, congestion, a
//! stretch of a real LTE trace, an outage, recovery — while the decision engine moves frames
//! between the phone and the server. Local-only and remote-only run the same script for
//! comparison. Accuracy is measured, not predicted: at one frame per second the result on
//! screen is matched against the reference detector on the raw frame.

use crate::live::{detector, device_detector, Testbed};
use crate::report::{self, DemoSection};
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_client::{AutoOptions, FrameRecord, Pace, RunOptions};
use deepoffload_core::metrics::match_frame;
use deepoffload_core::profile::Profile;
use deepoffload_core::{Detection, Placement};
use deepoffload_decide::{
    Candidates, Controller, ControllerSettings, Mode, NetState, Optimiser, Requirements,
};
use deepoffload_detect::Detector;
use deepoffload_lab::{load_profile, run_profile, DeviceClass, Grid, ModelAt, ProfileRequest};
use deepoffload_net::link::{DirectionSpec, LinkSpec, Piece, Shaper, Trace};
use deepoffload_plot::{line_chart, LineChart, Mark, Series};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The study's device model: tiny YOLO at 416, ~600 ms per frame on its phone.
const LOCAL_MODEL: (&str, u32) = ("yolov3-tiny", 416);
const SERVER_MODEL: (&str, u32) = ("yolov4-tiny", 416);
const REFERENCE: (&str, u32) = ("yolov4-tiny", 608);
/// One-way delay of the scripted link.
const ONE_WAY_MS: u64 = 10;
/// Matching threshold of the measured accuracy, as in the profiles.
const IOU: f32 = 0.5;

/// What the demo needs.
pub struct DemoOptions {
    pub store: Store,
    pub out: PathBuf,
    pub video: PathBuf,
    pub device: DeviceClass,
    /// Decide from this profile instead of measuring a quick one.
    pub profile: Option<PathBuf>,
    /// Multiplies every phase's length.
    pub time_scale: f64,
}

/// What the demo produced.
pub struct DemoOutcome {
    pub table: String,
    pub report: PathBuf,
    pub frames_dir: PathBuf,
    pub records: PathBuf,
    /// Placement switches of the adaptive run: (remote → local, local → remote).
    pub switches: (usize, usize),
}

/// One phase of the scripted network.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub start_s: f64,
    pub seconds: f64,
    pub description: String,
}

/// The scripted network and its phases.
pub fn script(lte: Option<&Trace>, scale: f64) -> Result<(Trace, Vec<Phase>)> {
    let generated_lte;
    let (lte, lte_name) = match lte {
        Some(t) => (t, "TMobile-LTE-short.up from 20 s"),
        None => {
            generated_lte = Trace::compose(
                "LTE (generated)",
                &[
                    Piece::Rate {
                        seconds: 3.0,
                        bps: 8e6,
                    },
                    Piece::Rate {
                        seconds: 3.0,
                        bps: 2e6,
                    },
                    Piece::Rate {
                        seconds: 4.0,
                        bps: 12e6,
                    },
                    Piece::Rate {
                        seconds: 4.0,
                        bps: 1e6,
                    },
                ],
            )
            .map_err(anyhow::Error::msg)?;
            (
                &generated_lte,
                "generated LTE-like rates (no ../shared traces)",
            )
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
        Piece::Rate {
            seconds: phases[0].1,
            bps: 20e6,
        },
        Piece::Rate {
            seconds: phases[1].1,
            bps: 0.15e6,
        },
        Piece::Excerpt {
            trace: lte,
            from_s: 20.0,
            seconds: phases[2].1,
        },
        Piece::Outage {
            seconds: phases[3].1,
        },
        Piece::Rate {
            seconds: phases[4].1,
            bps: 20e6,
        },
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

fn phase_at(phases: &[Phase], t: f64) -> &'static str {
    phases
        .iter()
        .rev()
        .find(|p| t >= p.start_s)
        .map_or("-", |p| p.name)
}

/// The demo's profile: one video, the device and server models, a few scales, rates and frame
/// rates — enough for every decision the script calls for, measured in well under a minute.
pub fn demo_grid() -> Grid {
    Grid {
        models: vec![
            ModelAt {
                model: LOCAL_MODEL.0.into(),
                size: LOCAL_MODEL.1,
            },
            ModelAt {
                model: SERVER_MODEL.0.into(),
                size: SERVER_MODEL.1,
            },
        ],
        placements: vec![Placement::Local, Placement::Remote],
        scales: vec![0.5, 0.25],
        bitrates: vec![60_000, 150_000, 400_000, 1_000_000],
        fps: vec![10.0, 5.0, 2.0],
        eval_every_s: 2.0,
        max_lag: 10,
        max_seconds: Some(30.0),
        latency_sizes: vec![320, 416, 608],
        latency_runs: 3,
        ..Grid::small()
    }
}

fn profile(options: &DemoOptions) -> Result<Profile> {
    if let Some(p) = &options.profile {
        return Ok(load_profile(p)?);
    }
    let path = options
        .out
        .join(format!("demo-profile-{}.json", options.device.name));
    if path.exists() {
        if let Ok(p) = load_profile(&path) {
            eprintln!("using the demo profile measured before: {}", path.display());
            return Ok(p);
        }
    }
    eprintln!(
        "measuring a quick profile of {} for the decision engine (once; kept in {})",
        options.device.name,
        path.display()
    );
    let request = ProfileRequest {
        videos: vec![options.video.clone()],
        grid: demo_grid(),
        device: options.device.clone(),
        reference: ModelAt {
            model: REFERENCE.0.into(),
            size: REFERENCE.1,
        },
        threads: 2,
        partial: Some(path.with_extension("partial.jsonl")),
    };
    let profile = tokio::task::block_in_place(|| run_profile(&options.store, &request))?;
    std::fs::write(&path, serde_json::to_string_pretty(&profile)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let _ = std::fs::remove_file(path.with_extension("partial.jsonl"));
    Ok(profile)
}

/// The script on both directions, with a short propagation delay.
fn link(trace: &Trace) -> LinkSpec {
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

/// A policy's run: its records, and when each result reached the screen.
struct PolicyRun {
    name: &'static str,
    records: Vec<FrameRecord>,
    decisions: Vec<deepoffload_decide::DecisionLog>,
    wall_s: f64,
}

impl PolicyRun {
    /// (time shown, source frame index, detections) in the order they were shown.
    fn shown(&self) -> Vec<(f64, &FrameRecord)> {
        let mut v: Vec<(f64, &FrameRecord)> = self
            .records
            .iter()
            .map(|r| (r.capture_s + r.latency.total_ms / 1e3, r))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

/// What was on screen at `t` seconds, from [`PolicyRun::shown`].
fn on_screen<'a>(shown: &[(f64, &'a FrameRecord)], t: f64) -> Option<&'a FrameRecord> {
    let i = shown.partition_point(|(at, _)| *at <= t);
    (i > 0).then(|| shown[i - 1].1)
}

#[derive(Serialize, Deserialize)]
struct SectionFile {
    markdown: String,
    html: String,
    figures: Vec<String>,
}

/// The demo's report section saved by an earlier `demo` in `out`, for `deepoffload report`.
pub fn read_section(out: &Path) -> Option<DemoSection> {
    let text = std::fs::read_to_string(out.join("demo/section.json")).ok()?;
    let s: SectionFile = serde_json::from_str(&text).ok()?;
    Some(DemoSection {
        markdown: s.markdown,
        html: s.html,
        figures: s.figures,
    })
}

/// Runs the demo.
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

    let lte = store
        .config()
        .shared
        .as_ref()
        .map(|s| s.join("traces/mahimahi/TMobile-LTE-short.up"))
        .filter(|p| p.exists())
        .map(|p| -> Result<Trace> {
            let text = std::fs::read_to_string(&p)?;
            Trace::parse(&text, "TMobile-LTE-short.up").map_err(anyhow::Error::msg)
        })
        .transpose()?;
    let (trace, phases) = script(lte.as_ref(), options.time_scale)?;
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

    let profile = profile(&options)?;
    let optimiser = Optimiser::new(
        Candidates::from_profile(&profile).map_err(anyhow::Error::msg)?,
        Mode::StopAndWait,
    );
    let requirements = Requirements {
        radio: "wifi".into(),
        ..Requirements::default()
    };
    let allowed = |placement: Placement| {
        move |c: &deepoffload_decide::Candidate| {
            c.key.placement == placement
                && match placement {
                    Placement::Local => (c.key.model.as_str(), c.key.input_size) == LOCAL_MODEL,
                    Placement::Remote => (c.key.model.as_str(), c.key.input_size) == SERVER_MODEL,
                }
        }
    };
    let good = NetState {
        uplink_bps: 20e6,
        rtt_ms: 2.0 * ONE_WAY_MS as f64,
    };
    let fixed = |placement: Placement| -> Result<deepoffload_decide::CandidateKey> {
        let d = optimiser
            .decide(&good, &requirements, allowed(placement))
            .with_context(|| {
                let (model, size) = match placement {
                    Placement::Local => LOCAL_MODEL,
                    Placement::Remote => SERVER_MODEL,
                };
                format!(
                    "the profile has no {placement} configuration of {model}@{size}, the demo's {} model: leave out --profile (the demo measures its own) or profile a grid with it",
                    if placement == Placement::Local { "device" } else { "server" }
                )
            })?;
        Ok(optimiser.list()[d.chosen].key.clone())
    };
    let local_key = fixed(Placement::Local)?;
    let remote_key = fixed(Placement::Remote)?;

    let testbed = Testbed::start(store, SERVER_MODEL.0, SERVER_MODEL.1).await?;
    let mut runs = Vec::new();
    let policies: [(&'static str, Option<deepoffload_decide::CandidateKey>); 3] = [
        ("adaptive", None),
        ("local-only", Some(local_key.clone())),
        ("remote-only", Some(remote_key.clone())),
    ];
    for (name, key) in policies {
        let (local, label) = device_detector(store, &options.device, LOCAL_MODEL.0, LOCAL_MODEL.1)?;
        let scaled = |scale: f64| {
            (
                deepoffload_lab::grid::scaled_side(info.width, scale),
                deepoffload_lab::grid::scaled_side(info.height, scale),
            )
        };
        let mut run_options = RunOptions {
            pace: Pace::Live,
            max_duration: Some(Duration::from_secs_f64(total_s)),
            device: label,
            ..RunOptions::default()
        };
        match &key {
            Some(k) => {
                run_options.placement = k.placement;
                run_options.resolution = Some(scaled(k.scale));
                run_options.fps = Some(k.fps);
                if k.bitrate_bps > 0 {
                    run_options.bitrate_bps = k.bitrate_bps as u32;
                }
            }
            None => {
                run_options.placement = Placement::Remote;
                run_options.resolution = Some(scaled(remote_key.scale));
                run_options.fps = Some(remote_key.fps);
                run_options.bitrate_bps = remote_key.bitrate_bps as u32;
                run_options.auto = Some(AutoOptions {
                    controller: Controller::new(
                        optimiser.clone(),
                        requirements.clone(),
                        ControllerSettings::default(),
                    ),
                    ping_every: Duration::from_secs(1),
                });
            }
        }
        let bar = ProgressBar::new((total_s * 1000.0) as u64).with_style(
            ProgressStyle::with_template("{prefix:>11} [{bar:24}] {elapsed_precise} {msg}")
                .expect("template"),
        );
        bar.set_prefix(name);
        let mut records = Vec::new();
        let mut window: Vec<(f64, f64)> = Vec::new();
        let summary = testbed
            .run(
                store,
                &options.video,
                local,
                Some(link(&trace)),
                &run_options,
                |r: &FrameRecord| {
                    // A frame the encoder skipped was not analysed: it repeats the last result.
                    if r.skipped {
                        return;
                    }
                    window.push((r.capture_s, r.latency.total_ms));
                    window.retain(|w| w.0 > r.capture_s - 2.0);
                    let fps = window.len() as f64 / 2.0_f64.min(r.capture_s.max(0.5));
                    let latency = window.iter().map(|w| w.1).sum::<f64>() / window.len() as f64;
                    bar.set_position((r.capture_s * 1000.0) as u64);
                    let f1 = expected_f1(&optimiser, &r.config, info.width)
                        .map_or("-".into(), |f| format!("{f:.2}"));
                    bar.set_message(format!(
                        "{:<10} | {:<40} | {fps:4.1} fps | {latency:4.0} ms | F1 ≈ {f1} (profile)",
                        phase_at(&phases, r.capture_s),
                        ran(r),
                    ));
                    records.push(r.clone());
                },
            )
            .await?;
        bar.finish_and_clear();
        eprintln!(
            "{name}: {} frames ({} remote, {} local), {:.2} fps",
            summary.frames, summary.remote_frames, summary.local_frames, summary.analysed_fps
        );
        runs.push(PolicyRun {
            name,
            records,
            decisions: summary.decisions,
            wall_s: summary.wall_s,
        });
    }
    testbed.stop().await;

    // Measured accuracy: one evaluation instant per second; the reference detector on the raw
    // frame; each policy's on-screen result matched against it. The adaptive run's screen at
    // those instants is also drawn, with its boxes and caption.
    let evaluated = tokio::task::block_in_place(|| {
        evaluate(store, &options.video, &runs, &phases, &frames_dir, total_s)
    })?;

    let records_path = dir.join("adaptive-records.jsonl");
    let mut text = String::new();
    for r in &runs[0].records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    std::fs::write(&records_path, text)?;
    let mut text = String::new();
    for d in &runs[0].decisions {
        text.push_str(&serde_json::to_string(d)?);
        text.push('\n');
    }
    std::fs::write(dir.join("adaptive-decisions.jsonl"), text)?;

    let switches = placement_switches(&runs[0].records);
    let rows = summarise(&runs, &evaluated, requirements.max_latency_ms);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "phases": phases, "policies": rows,
            "switches_remote_to_local": switches.0, "switches_local_to_remote": switches.1,
            "local_only": local_key.to_string(), "remote_only": remote_key.to_string(),
            "seconds": started.elapsed().as_secs_f64(),
        }))?,
    )?;
    let table = summary_table(&rows);
    let phase_table = phase_table(&runs, &evaluated, &phases);
    timeline(&dir, &runs[0], &phases, &trace, total_s)?;

    let device_line = format!(
        "Device {} (emulated; local {}@{}), edge server {}@{} on {}, video {}, link {} ms each way. Local-only: {local_key}; remote-only: {remote_key} (each the best of its placement on good WiFi). Adaptive switched placement {} time(s) remote → local and {} time(s) local → remote.",
        options.device.name, LOCAL_MODEL.0, LOCAL_MODEL.1, SERVER_MODEL.0, SERVER_MODEL.1,
        crate::machine(),
        options.video.file_name().unwrap_or_default().to_string_lossy(),
        ONE_WAY_MS, switches.0, switches.1
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
    let markdown = format!(
        "{device_line}\n\nScript: {script_line}.\n\n```\n{table}\n```\n\nAdaptive, phase by phase:\n\n```\n{phase_table}\n```\n\nF1 is measured: once per second, the result on screen is matched (IoU ≥ 0.5) against {}@{} on the raw frame. Frames with boxes: `demo/frames/`. Records: `demo/adaptive-records.jsonl`; decisions with their reasons: `demo/adaptive-decisions.jsonl`.\n",
        REFERENCE.0, REFERENCE.1
    );
    let html = format!(
        "<p>{}</p><p>Script: {}.</p><pre>{}</pre><p>Adaptive, phase by phase:</p><pre>{}</pre><p>F1 is measured: once per second, the result on screen is matched (IoU ≥ 0.5) against {}@{} on the raw frame. Frames with boxes: <code>demo/frames/</code>; records: <code>demo/adaptive-records.jsonl</code>; decisions: <code>demo/adaptive-decisions.jsonl</code>.</p>",
        html_escape(&device_line), html_escape(&script_line), html_escape(&table.to_string()),
        html_escape(&phase_table.to_string()), REFERENCE.0, REFERENCE.1
    );
    let section = SectionFile {
        markdown,
        html,
        figures: vec![
            "demo/timeline-latency.png".into(),
            "demo/timeline-network.png".into(),
        ],
    };
    std::fs::write(
        dir.join("section.json"),
        serde_json::to_string_pretty(&section)?,
    )?;
    let (report_path, _) = report::write(&options.out, read_section(&options.out).as_ref())?;
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
        switches,
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The profile's F1 for the configuration a frame ran with (fresh result, no staleness): what
/// the live line can show before the measured accuracy is computed at the end.
fn expected_f1(
    optimiser: &Optimiser,
    config: &deepoffload_core::Config,
    source_width: u32,
) -> Option<f64> {
    let scale = config.width as f64 / source_width.max(1) as f64;
    let same = |c: &&deepoffload_decide::Candidate| {
        c.key.placement == config.placement
            && c.key.model == config.model
            && c.key.input_size == config.input_size
            && (c.key.scale - scale).abs() < 0.02
    };
    let list = optimiser.list();
    let exact: Vec<f64> = list
        .iter()
        .filter(same)
        .filter(|c| c.key.bitrate_bps == config.bitrate_bps)
        .map(|c| c.f1)
        .collect();
    let values = if exact.is_empty() {
        list.iter().filter(same).map(|c| c.f1).collect()
    } else {
        exact
    };
    crate::experiments::mean(values)
}

/// Where and how a frame ran: "remote 384x288 yolov4-tiny 150k".
fn ran(r: &FrameRecord) -> String {
    let mut s = format!(
        "{} {}x{} {}",
        r.placement, r.config.width, r.config.height, r.config.model
    );
    if r.placement == Placement::Remote {
        s.push_str(&format!(" {}k", r.config.bitrate_bps / 1000));
    }
    s
}

/// Placement changes between consecutive frames: (remote → local, local → remote).
pub fn placement_switches(records: &[FrameRecord]) -> (usize, usize) {
    records.windows(2).fold((0, 0), |(rl, lr), w| {
        match (w[0].placement, w[1].placement) {
            (Placement::Remote, Placement::Local) => (rl + 1, lr),
            (Placement::Local, Placement::Remote) => (rl, lr + 1),
            _ => (rl, lr),
        }
    })
}

/// F1 of each policy's on-screen result at each evaluation instant: `scores[policy][k]`.
struct Evaluated {
    instants: Vec<f64>,
    scores: Vec<Vec<f64>>,
}

fn evaluate(
    store: &Store,
    video: &Path,
    runs: &[PolicyRun],
    phases: &[Phase],
    frames_dir: &Path,
    total_s: f64,
) -> Result<Evaluated> {
    let mut reference = detector(store, REFERENCE.0, REFERENCE.1, 2)?;
    let mut source = deepoffload_video::open(video, store, &Default::default())?;
    let shown: Vec<Vec<(f64, &FrameRecord)>> = runs.iter().map(|r| r.shown()).collect();
    let mut instants = Vec::new();
    let mut scores = vec![Vec::new(); runs.len()];
    let mut next_t = 1.0;
    let mut first_pts = None;
    let bar = ProgressBar::new(total_s as u64).with_style(
        ProgressStyle::with_template("{prefix:>11} [{bar:24}] {pos}/{len} s scored")
            .expect("template"),
    );
    bar.set_prefix("accuracy");
    while let Some(frame) = source.next_frame()? {
        let first = *first_pts.get_or_insert(frame.pts);
        let t = frame.pts.saturating_sub(first).as_secs_f64();
        if t > total_s {
            break;
        }
        if t + 1e-6 < next_t {
            continue;
        }
        next_t += 1.0;
        let truth: Vec<Detection> = reference.detect(frame.image.view())?.detections;
        instants.push(t);
        for (k, shown) in shown.iter().enumerate() {
            let on = on_screen(shown, t);
            let predicted: &[Detection] = on.map_or(&[], |r| r.detections.as_slice());
            scores[k].push(match_frame(predicted, &truth, IOU).f1());
            if k == 0 {
                let mut img = image::RgbImage::from_raw(
                    frame.image.width(),
                    frame.image.height(),
                    frame.image.data().to_vec(),
                )
                .context("frame buffer")?;
                deepoffload_detect::annotate::draw_detections(&mut img, predicted);
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
                deepoffload_detect::annotate::draw_caption(&mut img, &caption);
                let path = frames_dir.join(format!("t{:03}.jpg", t.round() as u64));
                img.save(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        bar.set_position(t as u64);
    }
    bar.finish_and_clear();
    Ok(Evaluated { instants, scores })
}

#[derive(Serialize)]
struct PolicyRow {
    policy: String,
    frames: usize,
    fps: f64,
    remote_share: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    late_share: f64,
    f1: f64,
    data_mb: f64,
}

fn summarise(runs: &[PolicyRun], evaluated: &Evaluated, bound_ms: f64) -> Vec<PolicyRow> {
    runs.iter()
        .enumerate()
        .map(|(k, r)| {
            let lat: Vec<f64> = r.records.iter().map(|x| x.latency.total_ms).collect();
            let n = r.records.len().max(1) as f64;
            PolicyRow {
                policy: r.name.into(),
                frames: r.records.len(),
                fps: r.records.len() as f64 / r.wall_s.max(1e-9),
                remote_share: r
                    .records
                    .iter()
                    .filter(|x| x.placement == Placement::Remote)
                    .count() as f64
                    / n,
                latency_p50_ms: deepoffload_core::quantile(&lat, 0.5).unwrap_or(f64::NAN),
                latency_p95_ms: deepoffload_core::quantile(&lat, 0.95).unwrap_or(f64::NAN),
                late_share: lat.iter().filter(|&&l| l > bound_ms).count() as f64 / n,
                f1: crate::experiments::mean(evaluated.scores[k].iter().copied()).unwrap_or(0.0),
                data_mb: r
                    .records
                    .iter()
                    .map(|x| (x.bytes_up + x.bytes_down) as f64)
                    .sum::<f64>()
                    / 1e6,
            }
        })
        .collect()
}

fn summary_table(rows: &[PolicyRow]) -> Table {
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
            format!("{:.1}", r.data_mb),
        ]);
    }
    t
}

fn phase_table(runs: &[PolicyRun], evaluated: &Evaluated, phases: &[Phase]) -> Table {
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
            let f1 = crate::experiments::mean(
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
                deepoffload_core::quantile(&lat, 0.5).map_or("-".into(), |v| format!("{v:.0}")),
                f1.map_or("-".into(), |v| format!("{v:.2}"))
            ));
        }
        let adaptive: Vec<&FrameRecord> = runs[0]
            .records
            .iter()
            .filter(|x| within(x.capture_s))
            .collect();
        let remote = adaptive
            .iter()
            .filter(|x| x.placement == Placement::Remote)
            .count();
        row.push(if adaptive.is_empty() {
            "-".into()
        } else if remote * 2 >= adaptive.len() {
            let mut sizes: Vec<String> = adaptive
                .iter()
                .filter(|x| x.placement == Placement::Remote)
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
                remote,
                adaptive.len(),
                sizes.join(", ")
            )
        } else {
            format!("local ({}/{})", adaptive.len() - remote, adaptive.len())
        });
        t.add_row(row);
    }
    t
}

fn timeline(
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
            markers: markers.clone(),
            note: Some(
                "each dot is one analysed frame; dashed lines start the script's phases".into(),
            ),
            log_y: false,
        },
    )?;
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
