//! One experiment per finding of the study. Each writes CSV, PNG and an [`Outcome`] into
//! `OUT/NAME/`.

mod accuracy;
mod breakdown;
mod energy;
mod fps_rtt;
mod local_cost;
mod wild;

use crate::{Outcome, Study};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// The experiments, in the study's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    /// Local latency and energy against resolution, with the pixel fit.
    LocalCost,
    /// Accuracy against bit rate × resolution, both models.
    Accuracy,
    /// Analysed frame rate against network round trip, with the crossover.
    FpsRtt,
    /// Where offloading time goes.
    Breakdown,
    /// Energy after 30 s per placement and bandwidth.
    Energy,
    /// The cellular traces against public WiFi.
    Wild,
}

impl Experiment {
    pub const ALL: [Experiment; 6] = [
        Experiment::LocalCost,
        Experiment::Accuracy,
        Experiment::FpsRtt,
        Experiment::Breakdown,
        Experiment::Energy,
        Experiment::Wild,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::LocalCost => "local-cost",
            Experiment::Accuracy => "accuracy",
            Experiment::FpsRtt => "fps-rtt",
            Experiment::Breakdown => "breakdown",
            Experiment::Energy => "energy",
            Experiment::Wild => "wild",
        }
    }

    /// What it shows, for `--help` and listings.
    pub fn about(self) -> &'static str {
        match self {
            Experiment::LocalCost => "local latency and energy against resolution, both models, with the pixel² fit",
            Experiment::Accuracy => "accuracy against bit rate × resolution (heatmaps, both models)",
            Experiment::FpsRtt => "analysed fps against round trip 0–300 ms, stop-and-wait and pipelined, with the crossover",
            Experiment::Breakdown => "where offloading time goes: stacked latency per configuration",
            Experiment::Energy => "energy after 30 s of continuous use per placement and bandwidth",
            Experiment::Wild => "LTE, UMTS and EVDO traces against public WiFi: fps, latency, accuracy, data",
        }
    }

    /// Runs it and writes its outcome.
    pub async fn run(self, study: &mut Study) -> Result<Outcome> {
        let started = Instant::now();
        let dir = study.dir(self.name())?;
        let mut outcome = match self {
            Experiment::LocalCost => local_cost::run(study, &dir)?,
            Experiment::Accuracy => accuracy::run(study, &dir)?,
            Experiment::FpsRtt => fps_rtt::run(study, &dir).await?,
            Experiment::Breakdown => breakdown::run(study, &dir).await?,
            Experiment::Energy => energy::run(study, &dir)?,
            Experiment::Wild => wild::run(study, &dir)?,
        };
        outcome.seconds = started.elapsed().as_secs_f64();
        outcome.command = study.command(&format!("experiment {}", self.name()));
        let path = dir.join(Outcome::FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&outcome)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(outcome)
    }
}

impl std::str::FromStr for Experiment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Experiment::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown experiment `{s}`; choose all or one of: {}",
                    Experiment::ALL.map(|e| e.name()).join(", ")
                )
            })
    }
}

/// Writes rows as CSV with a header from the row type's field names.
pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    for row in rows {
        w.serialize(row)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The conditions every profile-based figure shares.
pub(crate) fn profile_conditions(p: &deepoffload_core::profile::Profile) -> Vec<String> {
    vec![
        format!(
            "device class {}{} ({} W active, {} W idle); measured on {}",
            p.device.name,
            if p.device.emulated { " (emulated)" } else { "" },
            p.device.active_w,
            p.device.idle_w,
            p.device.measured_on
        ),
        format!(
            "reference: {}@{} on the raw frames; videos: {}",
            p.reference.model,
            p.reference.input_size,
            p.videos
                .iter()
                .map(|v| format!("{} ({}x{})", v.name, v.width, v.height))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("energy: {}", p.energy_model.backend),
    ]
}

/// Mean of a list (`None` when empty).
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}
