//! The demo's quick profile: the grid it measures and where it is kept, so that the decision
//! engine has measured figures for every configuration the script calls for. It only loads or
//! measures a profile; it must never decide from it (that is `policies`).

use super::{DemoOptions, LOCAL_MODEL, REFERENCE, SERVER_MODEL};
use anyhow::{Context, Result};
use deepoffload_core::profile::Profile;
use deepoffload_core::Placement;
use deepoffload_lab::{load_profile, run_profile, Grid, ModelAt, ProfileRequest};

/// The demo's profile: one video, the device and server models, a few scales, rates and frame
/// rates — enough for every decision the script calls for, measured in well under a minute.
///
/// It covers as much video as the script plays (`script_s`), at least 10 s so that every frame
/// rate has evaluation frames and at most 30 s. On a fresh cache the reference detector over
/// every covered frame dominates the measurement, so a shortened demo (`--time-scale`) also
/// measures a shorter profile; at the default length the 30 s cap applies.
pub fn demo_grid(script_s: f64) -> Grid {
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
        max_seconds: Some(script_s.clamp(10.0, 30.0)),
        latency_sizes: vec![320, 416, 608],
        latency_runs: 3,
        ..Grid::small()
    }
}

/// The profile given (`--profile`), the one measured before into `--out`, or a new quick one.
pub(super) fn profile(options: &DemoOptions, script_s: f64) -> Result<Profile> {
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
        grid: demo_grid(script_s),
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
