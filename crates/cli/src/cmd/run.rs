//! `deepoffload run`: the device runtime on a video, with per-frame JSON lines, a live
//! progress line and a final summary.

use crate::args::{ModelArgs, RunArgs, RunPlacement};
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_client::{DisplayRecord, FrameRecord, Mode, Remote, RunOptions, RunSummary};
use deepoffload_core::{format_bitrate, Placement};
use deepoffload_net::link::LinkSpec;
use deepoffload_net::ConnectOptions;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let placement = match args.placement {
        RunPlacement::Remote => Placement::Remote,
        RunPlacement::Local | RunPlacement::Auto => Placement::Local,
    };
    let auto = args.placement == RunPlacement::Auto;
    let hedge = args.hedge.unwrap_or(if auto {
        deepoffload_decide::Hedge::Always
    } else {
        deepoffload_decide::Hedge::Off
    });
    if placement == Placement::Remote && args.server.is_none() {
        bail!("--placement remote needs --server HOST:PORT (or use --placement local)");
    }
    let controller = if auto {
        let Some(profile) = &args.profile else {
            bail!("--placement auto decides from a profile: give --profile FILE (make one with `deepoffload profile --device {}`)", args.device);
        };
        let mut optimiser = super::decide::load_optimiser(profile, args.mode, args.track)?;
        if hedge != deepoffload_decide::Hedge::Off {
            optimiser = optimiser.hedged();
        }
        if optimiser.candidates.device != args.device {
            tracing::warn!(
                "the profile is for device {}, this run emulates {}: local predictions will be off (profile with --device {})",
                optimiser.candidates.device,
                args.device,
                args.device
            );
        }
        Some(deepoffload_decide::Controller::new(
            optimiser,
            args.requirements.requirements()?,
            deepoffload_decide::ControllerSettings {
                hedge,
                ..Default::default()
            },
        ))
    } else {
        if args.profile.is_some() {
            bail!("--profile is used by --placement auto only");
        }
        None
    };
    if args.link.is_some() && args.server.is_none() {
        bail!("--link emulates the path to a server: give --server too");
    }
    let store = Store::from_env();
    let (model, detector) = super::prepare_detector(&store, &args.model, &args.runtime)?;
    let device = deepoffload_lab::find_device(&args.device, args.devices.as_deref())
        .map_err(anyhow::Error::msg)?;
    let (detector, device_label) = device
        .emulate(&model, Box::new(detector))
        .map_err(anyhow::Error::msg)?;
    let mut locals = vec![detector];
    if let Some(controller) = &controller {
        // Under auto the device may run any catalogue model of the profile's local
        // configurations (a custom --cfg stays the only one).
        let main = (model.name.clone(), model.input_size().0 as u32);
        // Each other local (model, size), with the device time the profile measured for it
        // (its own speed factor; the quickest of its scales), so the run behaves as the
        // decisions predict, also for models the device class declares no latency for.
        let mut wanted: std::collections::BTreeMap<(String, u32), f64> = Default::default();
        for c in controller.optimiser().list() {
            let key = (c.key.model.clone(), c.key.input_size);
            if c.key.placement == Placement::Local && key != main {
                let ms = wanted.entry(key).or_insert(f64::INFINITY);
                *ms = ms.min(c.device_ms);
            }
        }
        if args.model.cfg.is_none() {
            for ((name, size), profiled_ms) in wanted {
                let spec = ModelArgs {
                    model: Some(name.clone()),
                    size: Some(size as usize),
                    ..args.model.clone()
                };
                let (_, d) = super::prepare_detector(&store, &spec, &args.runtime)
                    .with_context(|| format!("local detector {name}@{size} of the profile"))?;
                let d: Box<dyn deepoffload_detect::Detector> = if device.is_this_machine() {
                    Box::new(d)
                } else {
                    Box::new(deepoffload_detect::PaddedDetector::new(
                        Box::new(d),
                        Duration::from_secs_f64(profiled_ms / 1e3),
                        &device.name,
                    ))
                };
                locals.push(d);
            }
        }
        let names: Vec<String> = locals
            .iter()
            .map(|d| format!("{}@{}", d.info().model, d.info().input_width))
            .collect();
        tracing::info!("auto: local detectors {}", names.join(", "));
    }
    let source = deepoffload_video::open(&args.video, &store, &args.input.options())?;
    let link = args
        .link
        .as_deref()
        .map(LinkSpec::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let remote = match &args.server {
        Some(server) => {
            let addr = server
                .to_socket_addrs()
                .with_context(|| format!("--server {server}: not HOST:PORT"))?
                .next()
                .with_context(|| format!("--server {server}: resolves to no address"))?;
            let options = ConnectOptions {
                addr,
                transport: args.transport,
                token: args.token.clone(),
                client_name: format!("deepoffload-run {}", env!("CARGO_PKG_VERSION")),
                device_class: "this-machine".into(),
                ca: args.ca.clone(),
                timeout: Duration::from_secs(2),
            };
            Some(Remote::start(options, link).await?)
        }
        None => None,
    };
    if let Some(link) = remote.as_ref().and_then(|r| r.link.as_ref()) {
        tracing::info!("emulated link: {}", link.describe());
    }
    let options = RunOptions {
        placement,
        fps: args.fps,
        resolution: args.resolution,
        bitrate_bps: u32::try_from(args.bitrate).context("--bitrate above 4 Gbit/s")?,
        rate_control: args.rc,
        keyframe_interval: 0,
        mode: match args.mode {
            deepoffload_decide::Mode::Pipelined => Mode::Pipelined {
                inflight: args.inflight.max(1),
            },
            deepoffload_decide::Mode::StopAndWait => Mode::StopAndWait,
        },
        pace: args.pace,
        deadline: args.deadline,
        hedge: (hedge != deepoffload_decide::Hedge::Off).then_some(args.requirements.max_latency),
        max_frames: args.max_frames,
        max_duration: args.duration,
        device: device_label,
        auto: controller.map(|controller| deepoffload_client::AutoOptions {
            controller,
            ping_every: Duration::from_secs(1),
        }),
        track: args.track,
        display_fps: args.display_fps,
    };
    if let Some(f) = args.display_fps {
        if !(f.is_finite() && f > 0.0) {
            bail!("--display-fps {f}: give a positive frame rate, e.g. --display-fps 30");
        }
    }
    let info = source.info().clone();
    let mut displayed: Option<Box<dyn Write + Send>> = match &args.displayed {
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))),
        None => None,
    };
    let mut annotator = match &args.annotate {
        Some(path) => {
            let fps = match (args.display_fps, info.fps) {
                (Some(d), s) if s > 0.0 => d.min(s),
                (Some(d), _) => d,
                (None, s) if s > 0.0 => s,
                (None, _) => 30.0,
            };
            Some(
                deepoffload_client::annotate::Annotator::start(path, info.width, info.height, fps)
                    .with_context(|| format!("--annotate {}", path.display()))?,
            )
        }
        None => None,
    };
    let mut display_error = None;
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} frames {msg}").expect("template"),
    );
    let mut window: Vec<(f64, f64)> = Vec::new();
    let mut write_error = None;
    let summary = deepoffload_client::run_displayed(
        source,
        deepoffload_client::LocalDetectors(locals),
        remote.as_ref(),
        &options,
        |record: &FrameRecord| {
            if write_error.is_none() {
                if let Err(e) = serde_json::to_writer(&mut out, record)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n"))
                {
                    write_error = Some(e);
                }
            }
            window.push((record.capture_s, record.latency.total_ms));
            if window.len() > 20 {
                window.remove(0);
            }
            let span = window.last().map(|l| l.0).unwrap_or(0.0)
                - window.first().map(|f| f.0).unwrap_or(0.0);
            let fps = if span > 0.0 {
                (window.len() - 1) as f64 / span
            } else {
                0.0
            };
            let lat = window.iter().map(|w| w.1).sum::<f64>() / window.len() as f64;
            bar.set_message(format!(
                "| {} {}x{} {} | {fps:.1} fps | {lat:.0} ms{}",
                record.placement,
                record.config.width,
                record.config.height,
                record.config.model,
                record
                    .fallback
                    .as_deref()
                    .map(|f| format!(" | fallback: {f}"))
                    .unwrap_or_default()
            ));
            bar.inc(1);
        },
        |record: &DisplayRecord, frame| {
            if let (Some(w), None) = (displayed.as_mut(), &display_error) {
                if let Err(e) = serde_json::to_writer(&mut *w, record)
                    .map_err(std::io::Error::from)
                    .and_then(|_| w.write_all(b"\n"))
                {
                    display_error = Some(e);
                }
            }
            if let Some(a) = annotator.as_mut() {
                a.push(record, frame);
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    out.flush()?;
    if let Some(e) = write_error {
        bail!("writing frame records: {e}");
    }
    if let Some(mut w) = displayed {
        w.flush()?;
    }
    if let Some(e) = display_error {
        bail!("writing displayed-frame records: {e}");
    }
    if let Some(a) = annotator {
        let frames = a.finish()?;
        if let Some(path) = &args.annotate {
            tracing::info!("{}: {frames} displayed frames", path.display());
        }
    }
    if let Some(path) = &args.decisions {
        let mut text = String::new();
        for d in &summary.decisions {
            text.push_str(&serde_json::to_string(d)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("{}", summary_table(&summary));
    Ok(ExitCode::SUCCESS)
}

fn summary_table(s: &RunSummary) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    let opt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let b = &s.mean_breakdown;
    let rows = [
        ("device", s.device.clone()),
        ("frames", format!("{} analysed ({} remote, {} local, {} fallbacks, {} skipped by the encoder), {} missed while busy", s.frames, s.remote_frames, s.local_frames, s.fallbacks, s.skipped_frames, s.missed_frames)),
        ("analysed fps", format!("{:.2} over {:.1} s", s.analysed_fps, s.wall_s)),
        ("latency ms", format!(
            "p50 {} · p95 {} · p99 {} · mean {}",
            opt(s.latency_ms.map(|l| l.median)),
            opt(s.p95_ms),
            opt(s.p99_ms),
            opt(s.latency_ms.map(|l| l.mean))
        )),
        ("mean breakdown ms", format!(
            "wait {:.1} · resize {:.1} · encode {:.1} · network {:.1} · server decode {:.1} · queue {:.1} · inference {:.1} · other {:.1} · local {:.1} · post {:.1}",
            b.wait_ms, b.resize_ms, b.encode_ms, b.network_ms, b.server_decode_ms, b.server_queue_ms, b.server_inference_ms, b.server_other_ms,
            b.local_preprocess_ms + b.local_inference_ms + b.local_postprocess_ms, b.post_ms
        )),
        ("data", format!(
            "up {} bytes ({}), down {} bytes",
            s.bytes_up,
            if s.wall_s > 0.0 { format_bitrate(s.bytes_up as f64 * 8.0 / s.wall_s) } else { "-".into() },
            s.bytes_down
        )),
        ("reconnects", s.reconnects.to_string()),
        ("displayed", {
            let d = &s.display;
            format!(
                "{} frames at {:.1} fps, tracking {} · shown result's age mean {} ms",
                d.displayed_frames, d.display_fps, d.track, opt(d.age_ms_mean)
            )
        }),
        ("tracker ms", {
            let d = &s.display;
            if d.track == deepoffload_core::Tracking::Off {
                "- (tracking off)".into()
            } else {
                let o2 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
                format!(
                    "per displayed frame mean {} · p95 {} · per catch-up mean {} · p95 {} over {} frames on average ({} catch-ups, {} untracked){}",
                    o2(d.tracker_ms_mean), o2(d.tracker_ms_p95), o2(d.catch_up_ms_mean), o2(d.catch_up_ms_p95),
                    opt(d.catch_up_frames_mean), d.catch_ups, d.untracked_results,
                    d.tracker_error.as_deref().map(|e| format!(" · stopped: {e}")).unwrap_or_default()
                )
            }
        }),
        ("decisions", if s.decisions.is_empty() { "-".into() } else {
            format!(
                "{} ({} changes; last: {})",
                s.decisions.len(),
                s.decisions.iter().filter(|d| d.previous.is_some()).count(),
                s.decisions.last().map(|d| d.chosen.to_string()).unwrap_or_default()
            )
        }),
    ];
    for (k, v) in rows {
        t.add_row([k.to_string(), v]);
    }
    t
}
