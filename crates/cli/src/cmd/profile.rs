//! `deepoffload profile`: the profiler, its JSON profile and a Markdown report beside it.

use crate::args::ProfileArgs;
use anyhow::{bail, Context, Result};
use deepoffload_assets::Store;
use deepoffload_core::profile::Profile;
use deepoffload_core::Placement;
use deepoffload_detect::init_runtime;
use deepoffload_lab::{find_device, run_profile, Grid, ModelAt, ProfileRequest};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(args: ProfileArgs) -> Result<ExitCode> {
    let store = Store::from_env();
    let grid = Grid::load(&args.grid).map_err(anyhow::Error::msg)?;
    let device = find_device(&args.device, args.devices.as_deref()).map_err(anyhow::Error::msg)?;
    let videos = if args.videos.is_empty() {
        deepoffload_video::default_videos(&store, "--videos FILE...")?
    } else {
        args.videos.clone()
    };
    for v in &videos {
        if !v.exists() {
            bail!("{}: no such video", v.display());
        }
    }
    init_runtime(&store, args.ort_lib.as_deref())?;
    let partial = args.out.with_extension("partial.jsonl");
    if args.no_resume {
        let _ = std::fs::remove_file(&partial);
    }
    eprintln!(
        "profiling {} video(s) × {} cells each for device {}{} — reference {}@{}",
        videos.len(),
        grid.cells_per_video(),
        device.name,
        if device.is_this_machine() {
            ""
        } else {
            " (emulated)"
        },
        args.reference_model,
        args.reference_size
    );
    let started = std::time::Instant::now();
    let request = ProfileRequest {
        videos,
        grid,
        device,
        reference: ModelAt {
            model: args.reference_model.clone(),
            size: args.reference_size,
        },
        threads: args.threads,
        partial: Some(partial.clone()),
    };
    let profile = run_profile(&store, &request)?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&profile)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let report = args.out.with_extension("md");
    std::fs::write(&report, markdown(&profile))
        .with_context(|| format!("writing {}", report.display()))?;
    let _ = std::fs::remove_file(&partial);
    for line in &profile.summary {
        outln!("- {line}");
    }
    eprintln!(
        "{} cells in {:.1} min → {} (report {})",
        profile.cells.len(),
        started.elapsed().as_secs_f64() / 60.0,
        args.out.display(),
        report.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The human-readable side of a profile: findings, model latencies, fits, accuracy tables.
pub fn markdown(p: &Profile) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Profile for {}{}\n",
        p.device.name,
        if p.device.emulated { " (emulated)" } else { "" }
    );
    let _ = writeln!(
        md,
        "Measured on {}; reference {}@{} on the raw frames; energy: {}.\n",
        p.device.measured_on, p.reference.model, p.reference.input_size, p.energy_model.backend
    );
    let _ = writeln!(md, "## Findings\n");
    for line in &p.summary {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n## Models\n\n| model | input | GFLOPs | measured ms | device ms | device J |\n|---|---|---|---|---|---|");
    for m in &p.models {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.1} | {:.1} | {:.3} |",
            m.key.model, m.key.input_size, m.gflops, m.measured_ms, m.device_ms, m.device_joules
        );
    }
    let _ = writeln!(md, "\n## Fits against pixel count\n\n| quantity | c0 | c1 | c2 | R² | linear R² |\n|---|---|---|---|---|---|");
    for f in &p.fits {
        let _ = writeln!(
            md,
            "| {} | {:.4e} | {:.4e} | {:.4e} | {:.4} | {:.4} |",
            f.quantity, f.coefficients[0], f.coefficients[1], f.coefficients[2], f.r2, f.linear_r2
        );
    }
    for v in &p.videos {
        let _ = writeln!(
            md,
            "\n## {} ({}x{}, {} fps, {} frames, {} evaluation frames with {} reference objects)\n",
            v.name,
            v.width,
            v.height,
            v.fps,
            v.frames,
            v.eval_frames.len(),
            v.reference_objects
        );
        write_late_reference(&mut md, v);
        let cells: Vec<_> = p.cells_of(&v.name).collect();
        let rates = deepoffload_core::profile::remote_bitrates(cells.iter().copied());
        let mut models: Vec<(String, u32)> = cells
            .iter()
            .map(|c| (c.config.model.clone(), c.config.input_size))
            .collect();
        models.sort();
        models.dedup();
        let mut sizes: Vec<(u32, u32)> = cells
            .iter()
            .map(|c| (c.config.width, c.config.height))
            .collect();
        sizes.sort();
        sizes.dedup();
        sizes.reverse();
        let _ = writeln!(
            md,
            "Mean F1 over frame rates (remote by bit rate; local on the raw frames):\n"
        );
        let mut header = String::from("| model | resolution | local |");
        for r in &rates {
            let _ = write!(header, " {} |", deepoffload_core::format_bitrate(*r as f64));
        }
        let _ = writeln!(md, "{header}\n|{}", "---|".repeat(3 + rates.len()));
        for (m, s) in &models {
            for (w, h) in &sizes {
                let f1 = |pl: Placement, r: u64| {
                    let v: Vec<f64> = cells
                        .iter()
                        .filter(|c| {
                            &c.config.model == m
                                && c.config.input_size == *s
                                && (c.config.width, c.config.height) == (*w, *h)
                                && c.config.placement == pl
                                && (pl == Placement::Local || c.config.bitrate_bps == r)
                        })
                        .map(|c| c.accuracy.f1)
                        .collect();
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        format!("{:.3}", v.iter().sum::<f64>() / v.len() as f64)
                    }
                };
                let mut row = format!("| {m}@{s} | {w}x{h} | {} |", f1(Placement::Local, 0));
                for r in &rates {
                    let _ = write!(row, " {} |", f1(Placement::Remote, *r));
                }
                let _ = writeln!(md, "{row}");
            }
        }
    }
    md
}

/// The reference's own results shown k frames late, as found and carried there by the
/// on-device tracker: the curve tracking is judged by.
fn write_late_reference(md: &mut String, v: &deepoffload_core::profile::VideoProfile) {
    let tracked = &v.reference_tracked_staleness_f1;
    if tracked.is_empty() || v.fps <= 0.0 {
        return;
    }
    let _ = writeln!(
        md,
        "The reference shown late, as found and tracked forward (tracker {:.2} ms per displayed \
         frame on the measuring machine):\n\n| late | F1 as found | F1 tracked | tracked ÷ as found |\n|---|---|---|---|",
        v.tracker_ms
    );
    for (k, (found, tracked)) in v.reference_staleness_f1.iter().zip(tracked).enumerate() {
        let ratio = if *found > 0.0 {
            format!("{:.2}×", tracked / found)
        } else {
            "-".into()
        };
        let _ = writeln!(
            md,
            "| {k} frames ({:.0} ms) | {found:.3} | {tracked:.3} | {ratio} |",
            k as f64 / v.fps * 1e3
        );
    }
    let _ = writeln!(md);
}
