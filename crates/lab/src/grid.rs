//! The configuration grid a profile sweeps: every knob's values, from one place.

use deepoffload_core::Placement;
use deepoffload_video::RateControl;
use serde::{Deserialize, Serialize};

/// A detector at an input size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelAt {
    pub model: String,
    pub size: u32,
}

/// The values of every knob, and how the sweep is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Detectors (each runs locally and, when remote placements are swept, on the server).
    pub models: Vec<ModelAt>,
    /// Detectors swept on the device only: small inputs that keep local analysis within a
    /// latency bound on a slow phone, which a server has no use for.
    #[serde(default)]
    pub device_models: Vec<ModelAt>,
    pub placements: Vec<Placement>,
    /// Resolutions as fractions of the source size (each video keeps its aspect ratio; sides
    /// are rounded to even numbers for H.264).
    pub scales: Vec<f64>,
    /// H.264 target bit rates, bits per second (remote placements).
    pub bitrates: Vec<u64>,
    /// Analysed frame rates.
    pub fps: Vec<f64>,
    /// How the encoder holds the bit rate; CBR by default, as the client sends, so a cell's
    /// network load is what its bit rate says.
    #[serde(default)]
    pub rate_control: RateControl,
    /// Spacing of the frames accuracy is evaluated on, seconds.
    pub eval_every_s: f64,
    /// Largest lag (source frames) of the staleness curves.
    pub max_lag: usize,
    /// Use at most this many seconds of each video.
    pub max_seconds: Option<f64>,
    /// Input sizes at which each model's latency is measured for the pixel fits.
    pub latency_sizes: Vec<u32>,
    /// Timed runs per latency measurement.
    pub latency_runs: usize,
}

impl Grid {
    /// The full sweep: 2 models × 4 resolutions × 4 bit rates × 3 frame rates, local and remote,
    /// and 3 small detectors on the device at 4 resolutions × 3 frame rates.
    pub fn default_grid() -> Self {
        Self {
            models: vec![
                ModelAt {
                    model: "yolov3-tiny".into(),
                    size: 416,
                },
                ModelAt {
                    model: "yolov4-tiny".into(),
                    size: 608,
                },
            ],
            // The study's phone needs ~600 ms for yolov3-tiny@416: these keep a local result
            // within ~200 ms (yolov3-tiny@160), ~250 ms and ~300 ms when the network fails.
            device_models: vec![
                ModelAt {
                    model: "yolov3-tiny".into(),
                    size: 160,
                },
                ModelAt {
                    model: "yolov4-tiny".into(),
                    size: 160,
                },
                ModelAt {
                    model: "yolov4-tiny".into(),
                    size: 224,
                },
            ],
            placements: vec![Placement::Local, Placement::Remote],
            scales: vec![1.0, 0.75, 0.5, 0.25],
            bitrates: vec![250_000, 500_000, 1_000_000, 2_000_000],
            fps: vec![10.0, 5.0, 2.0],
            rate_control: RateControl::Cbr,
            eval_every_s: 1.0,
            max_lag: 30,
            max_seconds: None,
            latency_sizes: vec![320, 416, 512, 608],
            latency_runs: 15,
        }
    }

    /// A quick sweep for checks (about two minutes on one video).
    pub fn small() -> Self {
        Self {
            models: vec![
                ModelAt {
                    model: "yolov3-tiny".into(),
                    size: 320,
                },
                ModelAt {
                    model: "yolov4-tiny".into(),
                    size: 416,
                },
            ],
            device_models: Vec::new(),
            placements: vec![Placement::Local, Placement::Remote],
            scales: vec![1.0, 0.5],
            bitrates: vec![300_000, 1_000_000],
            fps: vec![5.0, 2.0],
            rate_control: RateControl::Cbr,
            eval_every_s: 2.0,
            max_lag: 10,
            max_seconds: Some(20.0),
            latency_sizes: vec![320, 416, 608],
            latency_runs: 5,
        }
    }

    /// `default`, `small`, or a TOML file with these fields.
    pub fn load(spec: &str) -> Result<Self, String> {
        let grid = match spec {
            "default" => Self::default_grid(),
            "small" => Self::small(),
            path => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("--grid {path}: {e} (use default, small or a TOML file)")
                })?;
                toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?
            }
        };
        grid.validate()?;
        Ok(grid)
    }

    pub fn validate(&self) -> Result<(), String> {
        let empty = [
            ("models", self.models.is_empty()),
            ("placements", self.placements.is_empty()),
            ("scales", self.scales.is_empty()),
            ("fps", self.fps.is_empty()),
            ("latency_sizes", self.latency_sizes.is_empty()),
        ];
        if let Some((name, _)) = empty.iter().find(|(_, e)| *e) {
            return Err(format!("grid: `{name}` must list at least one value"));
        }
        if self.placements.contains(&Placement::Remote) && self.bitrates.is_empty() {
            return Err("grid: remote placements need at least one bit rate".into());
        }
        if let Some(s) = self.scales.iter().find(|s| !(**s > 0.0 && **s <= 1.0)) {
            return Err(format!("grid: scale {s} must be in (0, 1]"));
        }
        if let Some(f) = self.fps.iter().find(|f| !(**f > 0.0 && f.is_finite())) {
            return Err(format!("grid: frame rate {f} must be positive"));
        }
        if let Some(m) = self
            .models
            .iter()
            .chain(&self.device_models)
            .find(|m| m.size == 0 || m.size % 32 != 0)
        {
            return Err(format!(
                "grid: {} at {} — input sizes are positive multiples of 32",
                m.model, m.size
            ));
        }
        if let Some(b) = self
            .bitrates
            .iter()
            .find(|b| **b == 0 || **b > u32::MAX as u64)
        {
            return Err(format!("grid: bit rate {b} is out of range"));
        }
        if self.eval_every_s <= 0.0 || self.eval_every_s.is_nan() || self.latency_runs == 0 {
            return Err("grid: eval_every_s and latency_runs must be positive".into());
        }
        Ok(())
    }

    /// Number of cells per video.
    pub fn cells_per_video(&self) -> usize {
        let per_model_scale_fps = self.models.len() * self.scales.len() * self.fps.len();
        let device_only = self.device_models.len() * self.scales.len() * self.fps.len();
        self.placements
            .iter()
            .map(|p| match p {
                Placement::Local => per_model_scale_fps + device_only,
                Placement::Remote => per_model_scale_fps * self.bitrates.len(),
            })
            .sum()
    }
}

pub use deepoffload_core::scaled_side;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_meets_the_minimum_and_files_load() {
        let g = Grid::default_grid();
        assert!(
            g.models.len() >= 2 && g.scales.len() >= 4 && g.bitrates.len() >= 4 && g.fps.len() >= 3
        );
        assert_eq!(g.cells_per_video(), (2 + 3) * 4 * 3 + 2 * 4 * 3 * 4);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(&path, toml::to_string(&Grid::small()).unwrap()).unwrap();
        assert_eq!(Grid::load(path.to_str().unwrap()).unwrap(), Grid::small());
        std::fs::write(&path, "models = []").unwrap();
        assert!(Grid::load(path.to_str().unwrap()).is_err());
        assert_eq!(scaled_side(576, 0.75), 432);
        assert_eq!(scaled_side(272, 0.25), 68);
    }
}
