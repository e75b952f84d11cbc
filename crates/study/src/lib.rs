//! The measurement study, reproduced with deepoffload's own parts: one experiment per finding
//! of `measurement-study-slides.txt`, each writing CSV and PNG; a report that sets every claim
//! beside our result; and the demo that shows the whole system deciding live.
//!
//! Experiments read a profile (measured once, then reused) for what the profiler measures —
//! local cost against pixels, accuracy against bit rate and resolution — run the real pipeline
//! (edge server, client, H.264, the link emulator) for what needs a network — frame rate against
//! round trip, where the time goes — and replay traces through the calibrated simulation for
//! what needs minutes of network — energy over 30 s, the cellular traces.

pub mod demo;
pub mod experiments;
pub mod live;
pub mod report;

use anyhow::{bail, Context, Result};
use deepoffload_assets::Store;
use deepoffload_core::profile::Profile;
use deepoffload_lab::{load_profile, run_profile, DeviceClass, Grid, ModelAt, ProfileRequest};
use deepoffload_net::link::Trace;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How our result stands against the study's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Agrees,
    Partly,
    Differs,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Agrees => "agrees",
            Verdict::Partly => "partly",
            Verdict::Differs => "differs",
        })
    }
}

/// What one experiment found, as the report shows it (`outcome.json` in its directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The experiment's command name.
    pub name: String,
    pub title: String,
    /// The study's claim, in its words.
    pub claim: String,
    /// Our result, with numbers.
    pub finding: String,
    pub verdict: Verdict,
    /// Under what conditions (device class, models, link, data source).
    pub conditions: Vec<String>,
    /// PNG files, relative to the experiment's directory.
    pub figures: Vec<String>,
    /// CSV files, relative to the experiment's directory.
    pub tables: Vec<String>,
    /// The command that regenerates it.
    pub command: String,
    /// Key figures, machine-readable.
    pub numbers: serde_json::Value,
    /// Seconds the experiment took.
    pub seconds: f64,
}

impl Outcome {
    pub const FILE: &'static str = "outcome.json";

    /// Reads every experiment outcome under `dir` (one sub-directory each), in the study's order.
    pub fn read_all(dir: &Path) -> Vec<Outcome> {
        experiments::Experiment::ALL
            .iter()
            .filter_map(|e| {
                let text = std::fs::read_to_string(dir.join(e.name()).join(Self::FILE)).ok()?;
                serde_json::from_str(&text).ok()
            })
            .collect()
    }
}

/// Everything the experiments share: where to write, which device class, the profile.
pub struct Study {
    pub store: Store,
    pub out: PathBuf,
    pub device: DeviceClass,
    /// A profile to use instead of measuring one.
    pub profile_path: Option<PathBuf>,
    /// Grid of the profile measured when none is given.
    pub grid: Grid,
    /// How the grid was named on the command line (`small`, a file), when not the default.
    pub grid_name: Option<String>,
    /// Videos to profile and run; empty means the default ones (see [`Study::videos`]).
    pub videos: Vec<PathBuf>,
    /// Seconds per live run (frame rate against round trip, latency breakdown).
    pub live_seconds: f64,
    /// Directory holding the Mahimahi traces (`../shared/traces/mahimahi`), if present.
    pub traces: Option<PathBuf>,
    profile: Option<Profile>,
}

impl Study {
    /// The study's setup: the study's phone, the default grid, the default videos and the
    /// shared traces.
    pub fn new(store: Store, out: PathBuf, device: DeviceClass) -> Result<Self> {
        let traces = store
            .config()
            .shared
            .clone()
            .map(|s| s.join("traces/mahimahi"))
            .filter(|d| d.is_dir());
        Ok(Self {
            store,
            out,
            device,
            profile_path: None,
            grid: Grid::default_grid(),
            grid_name: None,
            videos: Vec::new(),
            live_seconds: 8.0,
            traces,
            profile: None,
        })
    }

    /// The exact command line that regenerates what `subcommand` wrote, with this study's
    /// output directory, device and profile.
    pub fn command(&self, subcommand: &str) -> String {
        let mut cmd = format!("deepoffload {subcommand} --out {}", self.out.display());
        if self.device.name != "oneplus-3t" {
            cmd.push_str(&format!(" --device {}", self.device.name));
        }
        match (&self.profile_path, &self.grid_name) {
            (Some(p), _) => cmd.push_str(&format!(" --profile {}", p.display())),
            (None, Some(g)) => cmd.push_str(&format!(" --grid {g}")),
            (None, None) => {}
        }
        cmd
    }

    /// The directory of one experiment (created).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.out.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// The videos given, else the defaults (vtest, bikes) from the store — the shared copies,
    /// the cached ones or a verified fetch — or an error naming the package and the fix.
    pub fn videos(&self) -> Result<Vec<PathBuf>> {
        if self.videos.is_empty() {
            return Ok(deepoffload_video::default_videos(
                &self.store,
                "--videos FILE...",
            )?);
        }
        for v in &self.videos {
            if !v.exists() {
                bail!("{}: no such video", v.display());
            }
        }
        Ok(self.videos.clone())
    }

    /// Where a profile measured by the study is kept (reused by every experiment).
    pub fn profile_file(&self) -> PathBuf {
        self.out.join(format!("profile-{}.json", self.device.name))
    }

    /// The profile: the one given, the one measured before into the output directory, or a new
    /// measurement (resumable; about 12 minutes for the default grid on 2 cores).
    pub fn profile(&mut self) -> Result<&Profile> {
        if self.profile.is_none() {
            let path = self
                .profile_path
                .clone()
                .unwrap_or_else(|| self.profile_file());
            let profile = if path.exists() {
                load_profile(&path)?
            } else if self.profile_path.is_some() {
                bail!("{}: no such profile (make one with `deepoffload profile --device {} --out {}`)", path.display(), self.device.name, path.display());
            } else {
                self.measure_profile(&path)?
            };
            if profile.device.name != self.device.name {
                tracing::warn!(
                    "{}: a profile of {}, the study runs {} — its local figures belong to {}",
                    path.display(),
                    profile.device.name,
                    self.device.name,
                    profile.device.name
                );
            }
            self.profile = Some(profile);
        }
        Ok(self.profile.as_ref().expect("set above"))
    }

    fn measure_profile(&self, path: &Path) -> Result<Profile> {
        std::fs::create_dir_all(&self.out)?;
        deepoffload_detect::init_runtime(&self.store, None)?;
        eprintln!(
            "measuring a profile for {} ({} cells per video; reused afterwards from {})",
            self.device.name,
            self.grid.cells_per_video(),
            path.display()
        );
        let request = ProfileRequest {
            videos: self.videos()?,
            grid: self.grid.clone(),
            device: self.device.clone(),
            reference: ModelAt {
                model: "yolov4-tiny".into(),
                size: 608,
            },
            threads: 2,
            partial: Some(path.with_extension("partial.jsonl")),
        };
        let profile = tokio::task::block_in_place(|| run_profile(&self.store, &request))?;
        std::fs::write(path, serde_json::to_string_pretty(&profile)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let _ = std::fs::remove_file(path.with_extension("partial.jsonl"));
        Ok(profile)
    }

    /// The profile with the stop-and-wait optimiser over its candidates (what the replays decide
    /// with), pricing late results as `tracking` shows them.
    pub fn optimiser(
        &mut self,
        tracking: deepoffload_core::Tracking,
    ) -> Result<(Profile, deepoffload_decide::Optimiser)> {
        let profile = self.profile()?.clone();
        let candidates = deepoffload_decide::Candidates::from_profile(&profile, tracking)
            .map_err(anyhow::Error::msg)?;
        Ok((
            profile,
            deepoffload_decide::Optimiser::new(candidates, deepoffload_decide::Mode::StopAndWait),
        ))
    }

    /// A Mahimahi uplink trace from the shared directory, or `None` where it is absent.
    pub fn trace(&self, file: &str) -> Result<Option<Trace>> {
        let Some(dir) = &self.traces else {
            return Ok(None);
        };
        let path = dir.join(file);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        Ok(Some(Trace::parse(&text, file).map_err(anyhow::Error::msg)?))
    }
}

/// One line describing this machine, for the conditions of every figure.
pub fn machine() -> String {
    deepoffload_lab::machine_description()
}
