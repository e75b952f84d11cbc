//! The configurations a run can use, as the pipeline's table: one for a fixed placement, one
//! per profiled candidate under `--placement auto` — and the policy that chooses among them.

use deepoffload_core::{Config, Placement};
use deepoffload_decide::{Candidate, Controller};
use deepoffload_detect::DetectorInfo;
use deepoffload_pipeline::{Adaptive, Choice, Fixed, Policy, Sample, SessionInfo};
use std::sync::Arc;
use std::time::Duration;

/// What the runtime needs to decide by itself.
#[derive(Debug, Clone)]
pub struct AutoOptions {
    pub controller: Controller,
    /// Ping the server this often (round-trip samples while frames run locally).
    pub ping_every: Duration,
}

/// The table the pipeline chooses from: each entry's pipeline view and the configuration the
/// driver applies (resolution, frame rate, bit rate; the model is the detector's or the
/// server's).
pub(crate) struct Table {
    pub choices: Vec<Choice>,
    pub configs: Vec<Config>,
}

/// The quickest local detector: the smallest input.
pub(crate) fn quickest(locals: &[DetectorInfo]) -> Option<usize> {
    (0..locals.len()).min_by_key(|&i| locals[i].input_width as u64 * locals[i].input_height as u64)
}

/// Which local detector runs `model` at `size`.
fn local_index(locals: &[DetectorInfo], model: &str, size: u32) -> Option<usize> {
    locals
        .iter()
        .position(|d| d.model == model && d.input_width as u32 == size)
}

impl Table {
    /// A fixed placement: the first local detector for local frames.
    pub fn fixed(config: Config, locals: &[DetectorInfo]) -> Self {
        let fallback = quickest(locals);
        Self {
            choices: vec![Choice {
                placement: config.placement,
                fps: Some(config.fps).filter(|f| *f > 0.0),
                local: Some(0),
                fallback,
            }],
            configs: vec![config],
        }
    }

    /// Every candidate of the controller's profile, sized for this source by the profiler's
    /// own rule (`CandidateKey::config`) — so a size the profile never measured is never used.
    pub fn candidates(
        controller: &Controller,
        locals: &[DetectorInfo],
        source: (u32, u32, f64),
    ) -> Self {
        let fallback = quickest(locals);
        let (w, h, source_fps) = source;
        let (choices, configs) = controller
            .optimiser()
            .list()
            .iter()
            .map(|c| {
                let k = &c.key;
                let fps = if source_fps > 0.0 {
                    k.fps.min(source_fps)
                } else {
                    k.fps
                };
                let config = Config {
                    fps,
                    ..k.config(w, h)
                };
                let choice = Choice {
                    placement: k.placement,
                    fps: Some(fps),
                    local: local_index(locals, &k.model, k.input_size),
                    fallback,
                };
                (choice, config)
            })
            .unzip();
        Self { choices, configs }
    }
}

/// The run's policy: a fixed configuration, or the decision engine.
pub(crate) enum RunPolicy {
    Fixed(Fixed),
    Auto(Box<Adaptive>),
}

impl RunPolicy {
    /// The decision engine over `locals` (a local candidate needs its detector loaded; a
    /// remote one needs the connected server to run its model).
    pub fn auto(options: &AutoOptions, locals: &[DetectorInfo], camera_fps: f64) -> Self {
        let mut controller = options.controller.clone();
        controller.set_camera_fps(camera_fps);
        let locals: Vec<(String, u32)> = locals
            .iter()
            .map(|d| (d.model.clone(), d.input_width as u32))
            .collect();
        let allowed = move |c: &Candidate, session: Option<&SessionInfo>| match c.key.placement {
            Placement::Local => locals
                .iter()
                .any(|(m, s)| *m == c.key.model && *s == c.key.input_size),
            Placement::Remote => {
                session.is_some_and(|s| c.key.model == s.model && c.key.input_size == s.input_size)
            }
        };
        Self::Auto(Box::new(Adaptive::with_allowed(
            controller,
            Arc::new(allowed),
        )))
    }

    fn policy(&mut self) -> &mut dyn Policy {
        match self {
            Self::Fixed(p) => p,
            Self::Auto(p) => &mut **p,
        }
    }

    fn policy_ref(&self) -> &dyn Policy {
        match self {
            Self::Fixed(p) => p,
            Self::Auto(p) => &**p,
        }
    }
}

impl Policy for RunPolicy {
    fn choose(&mut self, now_s: f64, session: Option<&SessionInfo>) -> usize {
        let chosen = self.policy().choose(now_s, session);
        if let Self::Auto(a) = self {
            if let Some(log) = a.decisions.last().filter(|l| l.time_s == now_s) {
                if log.previous.is_some() || a.decisions.len() == 1 {
                    tracing::info!(
                        reason = log.reason,
                        uplink_kbps = (log.estimate.uplink_bps / 1e3).round(),
                        rtt_ms = log.estimate.rtt_min_ms.round(),
                        predicted_latency_ms = log.predicted.latency_ms.round(),
                        predicted_fps = log.predicted.fps,
                        predicted_f1 = log.predicted.accuracy,
                        feasible = log.feasible,
                        "auto: {}{}",
                        log.chosen,
                        log.previous
                            .as_ref()
                            .map_or(String::new(), |p| format!(" (was {p})"))
                    );
                }
            }
        }
        chosen
    }
    fn observe(&mut self, sample: &Sample) {
        self.policy().observe(sample)
    }
    fn hedge(&self) -> bool {
        self.policy_ref().hedge()
    }
    fn wants_pings(&self) -> bool {
        self.policy_ref().wants_pings()
    }
    fn probe_bytes(&mut self, now_s: f64) -> usize {
        self.policy().probe_bytes(now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepoffload_core::metrics::Accuracy;
    use deepoffload_core::profile::{
        Cell, CellEnergy, CellLatency, DeviceInfo, EnergyModelInfo, ModelKey, Profile, VideoProfile,
    };
    use deepoffload_core::scaled_side;
    use deepoffload_decide::{Candidates, ControllerSettings, Mode, Optimiser, Requirements};

    /// A profile of one video whose sides do not scale to even numbers (270 × 0.25 = 67.5):
    /// the sizes the profiler measured, by its rule.
    fn odd_profile(width: u32, height: u32) -> Profile {
        let mut cells = Vec::new();
        for scale in [1.0, 0.75, 0.5, 0.25] {
            let (w, h) = (scaled_side(width, scale), scaled_side(height, scale));
            for (placement, model, input, bitrate) in [
                (Placement::Local, "yolov3-tiny", 160, 0),
                (Placement::Remote, "yolov4-tiny", 608, 250_000),
                (Placement::Remote, "yolov4-tiny", 608, 1_000_000),
            ] {
                cells.push(Cell {
                    video: "odd".into(),
                    config: Config {
                        placement,
                        model: model.into(),
                        input_size: input,
                        width: w,
                        height: h,
                        fps: 10.0,
                        bitrate_bps: bitrate,
                    },
                    scale: Some(scale),
                    accuracy: Accuracy {
                        f1: 0.3 + scale * 0.3,
                        ..Accuracy::default()
                    },
                    map50: None,
                    staleness_f1: vec![0.5; 11],
                    tracked_staleness_f1: Vec::new(),
                    frames_analysed: 100,
                    frames_skipped: 0,
                    achieved_fps: 10.0,
                    bytes_per_frame: bitrate as f64 / 80.0,
                    actual_bps: bitrate as f64,
                    latency_ms: CellLatency {
                        device_compute: 50.0 + 100.0 * scale,
                        ..CellLatency::default()
                    },
                    energy: CellEnergy::default(),
                });
            }
        }
        Profile {
            schema: deepoffload_core::profile::PROFILE_SCHEMA.into(),
            tool_version: "test".into(),
            created_unix_s: 0,
            device: DeviceInfo {
                name: "test".into(),
                description: String::new(),
                emulated: false,
                measured_on: String::new(),
                active_w: 3.0,
                idle_w: 1.0,
                tracker_ms: 0.0,
            },
            reference: ModelKey {
                model: "yolov4-tiny".into(),
                input_size: 608,
            },
            max_lag: 10,
            rate_control: "cbr".into(),
            videos: vec![VideoProfile {
                name: "odd".into(),
                path: "odd.mp4".into(),
                width,
                height,
                fps: 10.0,
                frames: 100,
                eval_frames: Vec::new(),
                reference_objects: 0,
                reference_staleness_f1: Vec::new(),
                reference_tracked_staleness_f1: Vec::new(),
                tracker_ms: 0.0,
            }],
            cells,
            models: Vec::new(),
            fits: Vec::new(),
            energy_model: EnergyModelInfo::default(),
            summary: Vec::new(),
        }
    }

    #[test]
    fn every_configuration_auto_can_choose_was_measured_by_the_profile() {
        let (width, height) = (270, 202);
        let profile = odd_profile(width, height);
        let optimiser = Optimiser::new(
            Candidates::from_profile(&profile, deepoffload_core::Tracking::Off).unwrap(),
            Mode::StopAndWait,
        );
        let controller = Controller::new(
            optimiser,
            Requirements::default(),
            ControllerSettings::default(),
        );
        let locals = [DetectorInfo {
            model: "yolov3-tiny".into(),
            input_width: 160,
            input_height: 160,
            engine: "test".into(),
            threads: 1,
            class_names: Vec::new(),
        }];
        let table = Table::candidates(&controller, &locals, (width, height, 10.0));
        assert_eq!(table.configs.len(), profile.cells.len());
        for config in &table.configs {
            assert!(
                profile.cells.iter().any(|c| c.config == *config),
                "{config:?} was never profiled"
            );
        }
        // The profiler's rule rounds down: 270 × 0.25 = 67.5 is measured at 66, not 68.
        assert!(table.configs.iter().any(|c| c.width == 66));
        assert!(table.choices.iter().all(|c| c.fallback == Some(0)));
    }
}
