//! `deepoffload experiment`, `report` and `demo`: the study reproduced, and the whole system in
//! one command.

use crate::args::{DemoArgs, ExperimentArgs, ReportArgs, StudyArgs};
use anyhow::Result;
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_lab::{find_device, Grid};
use deepoffload_study::experiments::Experiment;
use deepoffload_study::{demo, report, Study};
use deepoffload_video::DefaultVideo;
use std::process::ExitCode;

fn study(args: &StudyArgs) -> Result<Study> {
    let store = Store::from_env();
    let device = find_device(&args.device, args.devices.as_deref()).map_err(anyhow::Error::msg)?;
    let mut study = Study::new(store, args.out.clone(), device)?;
    study.profile_path = args.profile.clone();
    study.grid = Grid::load(&args.grid).map_err(anyhow::Error::msg)?;
    study.grid_name = (args.grid != "default").then(|| args.grid.clone());
    if !args.videos.is_empty() {
        study.videos = args.videos.clone();
    }
    if !(args.live_seconds >= 2.0 && args.live_seconds.is_finite()) {
        anyhow::bail!(
            "--live-seconds {}: give at least 2 seconds per live run",
            args.live_seconds
        );
    }
    study.live_seconds = args.live_seconds;
    Ok(study)
}

pub async fn experiment(args: ExperimentArgs) -> Result<ExitCode> {
    let chosen: Vec<Experiment> = if args.name == "all" {
        Experiment::ALL.to_vec()
    } else {
        vec![args.name.parse().map_err(anyhow::Error::msg)?]
    };
    let mut study = study(&args.study)?;
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(["experiment", "verdict", "seconds", "figures"]);
    let mut failed = Vec::new();
    for e in chosen {
        eprintln!("▶ {} — {}", e.name(), e.about());
        match e.run(&mut study).await {
            Ok(outcome) => {
                outln!(
                    "{}: {} — {}",
                    outcome.name,
                    outcome.verdict,
                    outcome.finding
                );
                table.add_row([
                    outcome.name.clone(),
                    outcome.verdict.to_string(),
                    format!("{:.0}", outcome.seconds),
                    outcome
                        .figures
                        .iter()
                        .map(|f| format!("{}/{}/{f}", args.study.out.display(), outcome.name))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ]);
            }
            // One experiment failing (e.g. a missing trace) must not lose the others' results.
            Err(err) => {
                eprintln!("error: experiment {} failed: {err:#}", e.name());
                failed.push(e.name());
            }
        }
    }
    eprintln!("{table}");
    if !args.no_report {
        let (html, md) = report::write(&args.study.out, None)?;
        eprintln!("report: {} and {}", html.display(), md.display());
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    if !args.out.is_dir() {
        anyhow::bail!(
            "{}: no such directory; run `deepoffload experiment all --out {}` first",
            args.out.display(),
            args.out.display()
        );
    }
    let (html, md) = report::write(&args.out, demo::read_section(&args.out).as_ref())?;
    outln!("{}", html.display());
    outln!("{}", md.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(args: DemoArgs) -> Result<ExitCode> {
    let store = Store::from_env();
    let device = find_device(&args.device, None).map_err(anyhow::Error::msg)?;
    if !(args.time_scale > 0.05 && args.time_scale <= 10.0) {
        anyhow::bail!(
            "--time-scale {}: choose between 0.05 and 10",
            args.time_scale
        );
    }
    let video = match args.video {
        Some(v) => v,
        None => DefaultVideo::Vtest.resolve(&store, "--video FILE")?,
    };
    let outcome = demo::run(demo::DemoOptions {
        store,
        out: args.out,
        video,
        device,
        profile: args.profile,
        time_scale: args.time_scale,
    })
    .await?;
    outln!("{}", outcome.table);
    eprintln!(
        "report: {} · frames: {} · records: {} · video: {}",
        outcome.report.display(),
        outcome.frames_dir.display(),
        outcome.records.display(),
        outcome.video.display()
    );
    Ok(ExitCode::SUCCESS)
}
