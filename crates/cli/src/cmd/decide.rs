//! `deepoffload decide` (one decision, explained) and `deepoffload evaluate` (policies replayed
//! over network traces).

use crate::args::{DecideArgs, EvaluateArgs, PredictionArgs, RequirementArgs};
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_core::Tracking;
use deepoffload_decide::{Candidates, Mode, NetState, Optimiser, Prediction, Requirements};
use deepoffload_lab::replay::{PolicyKind, PolicyReport, Replay, ReplaySettings};
use deepoffload_net::link::Trace;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Reads a profile and builds the optimiser over it, pricing late results as `tracking` shows
/// them.
pub fn load_optimiser(path: &Path, mode: Mode, tracking: Tracking) -> Result<Optimiser> {
    let profile = deepoffload_lab::load_profile(path)?;
    let candidates = Candidates::from_profile(&profile, tracking).map_err(anyhow::Error::msg)?;
    Ok(Optimiser::new(candidates, mode))
}

impl RequirementArgs {
    pub fn requirements(&self) -> Result<Requirements> {
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            bail!("--safety {} must be in (0, 1]", self.safety);
        }
        if self.w_accuracy < 0.0 || self.w_fps < 0.0 {
            bail!("--w-accuracy and --w-fps must not be negative");
        }
        Ok(Requirements {
            w_accuracy: self.w_accuracy,
            w_fps: self.w_fps,
            max_latency_ms: self.max_latency.as_secs_f64() * 1e3,
            min_accuracy: self.min_accuracy,
            min_fps: self.min_fps,
            bitrate_safety: self.safety,
            max_power_w: self.max_power.unwrap_or(f64::INFINITY),
            max_data_bps: self.max_data.map_or(f64::INFINITY, |d| d as f64),
            radio: self.radio,
        })
    }
}

impl PredictionArgs {
    /// The optimiser over the profile, set up as the flags say.
    pub fn optimiser(&self) -> Result<Optimiser> {
        if !(self.camera_fps > 0.0 && self.camera_fps.is_finite()) {
            bail!(
                "--camera-fps {}: must be a positive frame rate",
                self.camera_fps
            );
        }
        let mut optimiser = load_optimiser(&self.profile, self.mode, self.track)?;
        optimiser.camera_fps = self.camera_fps;
        Ok(optimiser)
    }
}

fn prediction_cells(p: &Prediction) -> Vec<String> {
    vec![
        format!("{:.3}", p.utility),
        format!("{:.3}", p.accuracy),
        format!("{:.1}", p.fps),
        if p.latency_ms.is_finite() {
            format!("{:.0}", p.latency_ms)
        } else {
            "∞".into()
        },
        format!("{:.2}", p.power_w),
        format!("{:.0}", p.data_bps / 1e3),
    ]
}

pub fn decide(args: DecideArgs) -> Result<ExitCode> {
    let optimiser = args.profile_args.optimiser()?;
    let req = args.requirements.requirements()?;
    let net = NetState {
        uplink_bps: args.uplink as f64,
        rtt_ms: args.rtt.as_secs_f64() * 1e3,
    };
    let ranked = optimiser.rank(&net, &req, |_| true);
    let decision = optimiser
        .decide(&net, &req, |_| true)
        .context("the profile has no configurations")?;
    let list = optimiser.list();
    if args.json {
        let top: Vec<_> = ranked
            .iter()
            .take(args.top + 1)
            .map(|(i, p, v)| {
                serde_json::json!({"config": list[*i].key, "predicted": p, "violation": v})
            })
            .collect();
        let out = serde_json::json!({
            "device": optimiser.candidates.device,
            "network": net,
            "requirements": req,
            "chosen": list[decision.chosen].key,
            "predicted": decision.prediction,
            "feasible": decision.feasible,
            "violations": decision.violations,
            "ranked": top,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &list[decision.chosen];
    outln!(
        "device {} · uplink {:.2} Mbit/s · rtt {:.0} ms · latency ≤ {:.0} ms · F1 ≥ {} · fps ≥ {}",
        optimiser.candidates.device,
        net.uplink_bps / 1e6,
        net.rtt_ms,
        req.max_latency_ms,
        req.min_accuracy,
        req.min_fps
    );
    outln!(
        "chosen: {}{}",
        c.key,
        if decision.feasible {
            String::new()
        } else {
            format!(
                "  — NO configuration meets every requirement; least-violating (misses {})",
                decision
                    .violations
                    .iter()
                    .map(
                        |v| format!("{:?} by {:.0}%", v.kind, v.relative_excess * 100.0)
                            .to_lowercase()
                    )
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(vec![
            "#",
            "configuration",
            "utility",
            "F1",
            "fps",
            "latency ms",
            "power W",
            "data kbit/s",
            "violates",
        ]);
    for (rank, (i, p, v)) in ranked.iter().take(args.top + 1).enumerate() {
        let mut row = vec![rank.to_string(), list[*i].key.to_string()];
        row.extend(prediction_cells(p));
        row.push(if *v == 0.0 {
            "-".into()
        } else {
            optimiser
                .violations(&list[*i], p, &net, &req)
                .iter()
                .map(|x| format!("{:?}", x.kind).to_lowercase())
                .collect::<Vec<_>>()
                .join(",")
        });
        table.add_row(row);
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

fn default_traces() -> Result<Vec<PathBuf>> {
    let store = Store::from_env();
    let Some(shared) = &store.config().shared else {
        bail!("no traces: pass --trace FILE... (Mahimahi uplink traces; the defaults live in ../shared/traces/mahimahi)");
    };
    let dir = shared.join("traces/mahimahi");
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "{}: cannot list traces; pass --trace FILE...",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    traces.sort();
    if traces.is_empty() {
        bail!("{}: no .up traces; pass --trace FILE...", dir.display());
    }
    Ok(traces)
}

pub fn load_trace(path: &Path) -> Result<Arc<Trace>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the trace", path.display()))?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Arc::new(
        Trace::parse(&text, &name).map_err(anyhow::Error::msg)?,
    ))
}

fn policies(names: &[String]) -> Result<Vec<PolicyKind>> {
    if names.iter().any(|n| n == "all") {
        return Ok(PolicyKind::ALL.to_vec());
    }
    names
        .iter()
        .flat_map(|n| n.split(','))
        .map(|n| n.trim().parse::<PolicyKind>().map_err(anyhow::Error::msg))
        .collect()
}

pub fn evaluate(args: EvaluateArgs) -> Result<ExitCode> {
    let optimiser = args.profile_args.optimiser()?;
    let req = args.requirements.requirements()?;
    let kinds = policies(&args.policy)?;
    let traces = if args.trace.is_empty() {
        default_traces()?
    } else {
        args.trace.clone()
    };
    let settings = ReplaySettings {
        window_s: args.window.as_secs_f64().max(0.1),
        rtt_ms: args.rtt.as_secs_f64() * 1e3,
        duration_s: args.duration.map(|d| d.as_secs_f64()),
        deadline_ms: args.deadline.as_secs_f64() * 1e3,
        hedge: args.hedge,
        ..ReplaySettings::default()
    };
    let progress = ProgressBar::new((traces.len() * kinds.len()) as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"),
    );
    let mut reports: Vec<PolicyReport> = Vec::new();
    for path in &traces {
        let trace = load_trace(path)?;
        let replay =
            Replay::new(&optimiser, &req, &settings, trace.clone()).map_err(anyhow::Error::msg)?;
        for &kind in &kinds {
            progress.set_message(format!("{} · {}", trace.name, kind.name()));
            reports.push(replay.run(kind));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    if let Some(path) = &args.details {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("{}: cannot write the details", path.display()))?;
    }
    if args.json {
        for r in &mut reports {
            r.windows.clear();
            r.decisions.clear();
        }
        outln!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "simulation calibrated on the profile (device {}), network by the link emulator's model · tracking {} · rtt {:.0} ms · latency ≤ {:.0} ms · F1 ≥ {} · window {:.1} s",
        optimiser.candidates.device,
        optimiser.candidates.tracking,
        settings.rtt_ms,
        req.max_latency_ms,
        req.min_accuracy,
        settings.window_s
    );
    for trace in reports
        .iter()
        .map(|r| r.trace.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let rows: Vec<&PolicyReport> = reports.iter().filter(|r| r.trace == trace).collect();
        let oracle = rows
            .iter()
            .find(|r| r.policy == "oracle")
            .map(|r| r.utility);
        outln!("\n{trace} ({:.0} s)", rows[0].duration_s);
        let mut table = Table::new();
        table
            .load_preset(presets::UTF8_FULL_CONDENSED)
            .set_header(vec![
                "policy",
                "utility",
                "% oracle",
                "raw utility",
                "displayed F1",
                "fps",
                "p50 ms",
                "p95 ms",
                "lat. viol.",
                "any viol.",
                "J/frame",
                "energy J",
                "power W",
                "data MB",
                "remote",
                "switches",
                "main configuration",
            ]);
        for r in rows {
            table.add_row(vec![
                r.policy.clone(),
                format!("{:.3}", r.utility),
                oracle.map_or("-".into(), |o| format!("{:.1}%", r.utility / o * 100.0)),
                format!("{:.3}", r.raw_utility),
                format!("{:.3}", r.accuracy),
                format!("{:.2}", r.fps),
                format!("{:.0}", r.latency_p50_ms),
                format!("{:.0}", r.latency_p95_ms),
                format!("{:.1}%", r.latency_violation_share * 100.0),
                format!("{:.1}%", r.violation_share * 100.0),
                format!("{:.2}", r.joules_per_frame),
                format!("{:.0}", r.energy_j),
                format!("{:.2}", r.energy_j / r.duration_s.max(1e-9)),
                format!("{:.1}", r.data_mb),
                format!("{:.0}%", r.remote_share * 100.0),
                r.switches.to_string(),
                r.main_config.clone(),
            ]);
        }
        outln!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}
