//! The configurations the optimiser chooses among, with what the profile measured for each,
//! averaged over the profile's videos (at run time the engine does not know the content).

use crate::DecideError;
use deepoffload_core::profile::{Cell, Profile};
use deepoffload_core::{scaled_side, Config, Placement, Tracking};
use serde::Serialize;
use std::collections::BTreeMap;

/// Spacing of the staleness curve, seconds.
pub const CURVE_STEP_S: f64 = 0.02;

/// What identifies a configuration independently of the video: resolution is a fraction of
/// the source size, so one decision applies to any camera.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateKey {
    pub placement: Placement,
    pub model: String,
    pub input_size: u32,
    /// Frame width ÷ source width.
    pub scale: f64,
    pub fps: f64,
    /// 0 when local.
    pub bitrate_bps: u64,
}

impl CandidateKey {
    /// The key of `config` measured at `scale` of its source's sides. (A constructor rather
    /// than `From<&Config>`: a configuration holds its frame size, not the scale it came from.)
    pub fn new(config: &Config, scale: f64) -> Self {
        CandidateKey {
            placement: config.placement,
            model: config.model.clone(),
            input_size: config.input_size,
            scale,
            fps: config.fps,
            bitrate_bps: match config.placement {
                Placement::Remote => config.bitrate_bps,
                Placement::Local => 0,
            },
        }
    }

    /// The configuration this key stands for on a `width` × `height` source: the frame size by
    /// the profiler's own rule ([`scaled_side`]), so it is one the profile measured.
    pub fn config(&self, width: u32, height: u32) -> Config {
        Config {
            placement: self.placement,
            model: self.model.clone(),
            input_size: self.input_size,
            width: scaled_side(width, self.scale),
            height: scaled_side(height, self.scale),
            fps: self.fps,
            bitrate_bps: self.bitrate_bps,
        }
    }
}

impl std::fmt::Display for CandidateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}@{} ×{:.2} {} fps",
            self.placement, self.model, self.input_size, self.scale, self.fps
        )?;
        if self.placement == Placement::Remote {
            write!(f, " {}k", self.bitrate_bps / 1000)?;
        }
        Ok(())
    }
}

/// One configuration with its measured figures.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub key: CandidateKey,
    /// F1 against the reference when the result is shown `i · CURVE_STEP_S` seconds late.
    #[serde(skip)]
    pub accuracy_at: Vec<f64>,
    /// F1 and mean IoU shown at once.
    pub f1: f64,
    pub mean_iou: f64,
    /// Frame rate the configuration can reach at most (after encoder skipping).
    pub max_fps: f64,
    /// Encoded bytes per sent frame (0 local).
    pub bytes_per_frame: f64,
    /// Device compute per frame (resize + encode, or resize + local inference), ms.
    pub device_ms: f64,
    /// Server decode + inference per frame (0 local), ms.
    pub server_ms: f64,
}

impl Candidate {
    /// F1 of a result shown `age_s` seconds after its frame was captured.
    pub fn accuracy_at_age(&self, age_s: f64) -> f64 {
        let x = (age_s.max(0.0)) / CURVE_STEP_S;
        let i = x.floor() as usize;
        let n = self.accuracy_at.len();
        if i + 1 >= n {
            return self.accuracy_at[n - 1];
        }
        let frac = x - i as f64;
        self.accuracy_at[i] * (1.0 - frac) + self.accuracy_at[i + 1] * frac
    }

    /// Mean F1 over the time a result stays on screen: from `age_s` to `age_s + shown_s`.
    pub fn accuracy_while_shown(&self, age_s: f64, shown_s: f64) -> f64 {
        if shown_s.is_nan() || shown_s <= 0.0 || shown_s.is_infinite() {
            return self.accuracy_at_age(age_s);
        }
        // Trapezoid over 8 intervals: the curve is smooth and this runs per candidate per
        // decision, so a fixed small cost matters more than exactness.
        const N: usize = 8;
        let h = shown_s / N as f64;
        let mut sum = 0.5 * (self.accuracy_at_age(age_s) + self.accuracy_at_age(age_s + shown_s));
        for k in 1..N {
            sum += self.accuracy_at_age(age_s + k as f64 * h);
        }
        sum / N as f64
    }
}

/// The candidates of a profile, plus the device's power figures.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub list: Vec<Candidate>,
    pub device: String,
    pub active_w: f64,
    pub idle_w: f64,
    /// Radio power model per technology: (αu mW/Mbit/s, αd mW/Mbit/s, β mW).
    pub radio: BTreeMap<String, [f64; 3]>,
    /// Whether the curves are tracked ones, and the tracker's device time per displayed frame
    /// (ms; 0 when tracking is off or the profile did not measure it).
    pub tracking: Tracking,
    pub tracker_ms: f64,
}

impl Candidates {
    /// Averages every configuration over the profile's videos. `tracking` picks the staleness
    /// curves the candidates carry: with [`Tracking::On`] a late result is scored as the tracker
    /// shows it (the profile's tracked curves; profiles written before they were measured are
    /// refused with the fix), with [`Tracking::Off`] as it was found.
    pub fn from_profile(profile: &Profile, tracking: Tracking) -> Result<Self, DecideError> {
        if profile.cells.is_empty() || profile.videos.is_empty() {
            return Err(DecideError::Profile(
                "the profile has no cells; run `deepoffload profile` first".into(),
            ));
        }
        if tracking == Tracking::On {
            if let Some(cell) = profile
                .cells
                .iter()
                .find(|c| c.tracked_staleness_f1.is_empty())
            {
                return Err(DecideError::Profile(format!(
                    "the profile has no tracked staleness curve for {} {}@{} on {} (it was \
                     written before tracking was measured): profile again with this version, \
                     or pass --track off",
                    cell.config.placement, cell.config.model, cell.config.input_size, cell.video
                )));
            }
        }
        fn curve(c: &Cell, tracking: Tracking) -> &[f64] {
            match tracking {
                Tracking::On => &c.tracked_staleness_f1,
                Tracking::Off => &c.staleness_f1,
            }
        }
        let video_of = |name: &str| profile.videos.iter().find(|v| v.name == name);
        let mut horizon_s = f64::INFINITY;
        for v in &profile.videos {
            if v.fps > 0.0 {
                horizon_s = horizon_s.min(profile.max_lag as f64 / v.fps);
            }
        }
        if !horizon_s.is_finite() {
            horizon_s = 1.0;
        }
        let points = (horizon_s / CURVE_STEP_S).floor() as usize + 1;
        // Group cells by key; keep insertion order for stable output.
        let mut groups: Vec<(CandidateKey, Vec<&Cell>)> = Vec::new();
        for cell in &profile.cells {
            let video = video_of(&cell.video).ok_or_else(|| {
                DecideError::Profile(format!(
                    "cell of video `{}` but no such video in the profile",
                    cell.video
                ))
            })?;
            let c = &cell.config;
            // The grid's own knob; older profiles: the frame's share of the source width,
            // rounded to the grid's steps.
            let scale = cell.scale.unwrap_or_else(|| {
                (c.width as f64 / video.width.max(1) as f64 * 100.0).round() / 100.0
            });
            let key = CandidateKey::new(c, scale);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, cells)) => cells.push(cell),
                None => groups.push((key, vec![cell])),
            }
        }
        let list = groups
            .into_iter()
            .map(|(key, cells)| {
                let n = cells.len() as f64;
                let mean = |f: &dyn Fn(&Cell) -> f64| cells.iter().map(|c| f(c)).sum::<f64>() / n;
                let accuracy_at = (0..points)
                    .map(|i| {
                        let t = i as f64 * CURVE_STEP_S;
                        mean(&|c: &Cell| {
                            let fps = video_of(&c.video).map_or(10.0, |v| v.fps);
                            curve_at(curve(c, tracking), t * fps)
                        })
                    })
                    .collect();
                let server_ms = if key.placement == Placement::Remote {
                    mean(&|c| c.latency_ms.decode + c.latency_ms.inference)
                } else {
                    0.0
                };
                Candidate {
                    f1: mean(&|c| c.accuracy.f1),
                    mean_iou: mean(&|c| c.accuracy.mean_iou),
                    max_fps: mean(&|c| c.achieved_fps).min(key.fps),
                    bytes_per_frame: mean(&|c| c.bytes_per_frame),
                    device_ms: mean(&|c| c.latency_ms.device_compute),
                    server_ms,
                    accuracy_at,
                    key,
                }
            })
            .collect();
        let (active_w, idle_w) = if profile.device.active_w > 0.0 {
            (profile.device.active_w, profile.device.idle_w)
        } else {
            // Profiles written before the device's powers were recorded: recover them from two
            // cells' compute power (P = idle + (active − idle) · busy).
            power_from_cells(profile).unwrap_or((0.0, 0.0))
        };
        Ok(Self {
            list,
            device: profile.device.name.clone(),
            active_w,
            idle_w,
            radio: profile.energy_model.radio.clone(),
            tracking,
            tracker_ms: match tracking {
                Tracking::On => profile.device.tracker_ms,
                Tracking::Off => 0.0,
            },
        })
    }
}

/// Linear interpolation of a per-frame curve at fractional frame `x` (held flat past its end).
fn curve_at(curve: &[f64], x: f64) -> f64 {
    if curve.is_empty() {
        return 0.0;
    }
    let i = x.floor().max(0.0) as usize;
    if i + 1 >= curve.len() {
        return curve[curve.len() - 1];
    }
    let frac = x - i as f64;
    curve[i] * (1.0 - frac) + curve[i + 1] * frac
}

fn power_from_cells(profile: &Profile) -> Option<(f64, f64)> {
    let points: Vec<(f64, f64)> = profile
        .cells
        .iter()
        .map(|c| {
            let busy = (c.latency_ms.device_compute * c.achieved_fps / 1e3).min(1.0);
            (busy, c.energy.compute_w)
        })
        .collect();
    let (lo, hi) = points.iter().fold((points[0], points[0]), |(lo, hi), &p| {
        (
            if p.0 < lo.0 { p } else { lo },
            if p.0 > hi.0 { p } else { hi },
        )
    });
    if hi.0 - lo.0 < 1e-3 {
        return None;
    }
    let slope = (hi.1 - lo.1) / (hi.0 - lo.0);
    let idle = lo.1 - slope * lo.0;
    Some((idle + slope, idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_and_its_configuration_come_back_to_each_other() {
        let measured = Config {
            placement: Placement::Remote,
            model: "yolov4-tiny".into(),
            input_size: 416,
            width: scaled_side(270, 0.25),
            height: scaled_side(202, 0.25),
            fps: 5.0,
            bitrate_bps: 500_000,
        };
        let key = CandidateKey::new(&measured, 0.25);
        assert_eq!(key.config(270, 202), measured);
        // 270 × ¼ = 67.5: the profiler's rule gives 66 (even, rounded down), never 68.
        assert_eq!(measured.width, 66);
        let local = Config {
            placement: Placement::Local,
            ..measured
        };
        assert_eq!(CandidateKey::new(&local, 0.25).bitrate_bps, 0);
    }

    /// A one-video, one-cell profile whose result decays from 0.8 to 0.2 over 10 frames at
    /// 10 fps untracked, and only to 0.6 tracked; the tracker costs 4 ms per displayed frame.
    fn decaying_profile(tracked: Vec<f64>) -> Profile {
        let untracked: Vec<f64> = (0..=10).map(|k| 0.8 - 0.06 * k as f64).collect();
        serde_json::from_value(serde_json::json!({
            "schema": "deepoffload.profile/1", "tool_version": "test", "created_unix_s": 0,
            "device": {"name": "phone", "description": "", "emulated": true, "measured_on": "",
                       "active_w": 3.0, "idle_w": 1.0, "tracker_ms": 4.0},
            "reference": {"model": "yolov4-tiny", "input_size": 608},
            "max_lag": 10, "rate_control": "cbr",
            "videos": [{"name": "v.mp4", "path": "v.mp4", "width": 640, "height": 480,
                        "fps": 10.0, "frames": 100, "eval_frames": [0], "reference_objects": 1,
                        "reference_staleness_f1": []}],
            "cells": [{"video": "v.mp4", "scale": 1.0,
                       "config": {"placement": "local", "model": "yolov3-tiny", "input_size": 416,
                                  "width": 640, "height": 480, "fps": 10.0, "bitrate_bps": 0},
                       "accuracy": {"f1": 0.8, "pooled_f1": 0.8, "precision": 0.8, "recall": 0.8,
                                    "mean_iou": 0.7, "frames": 1},
                       "map50": null, "staleness_f1": untracked, "tracked_staleness_f1": tracked,
                       "frames_analysed": 10, "frames_skipped": 0, "achieved_fps": 10.0,
                       "bytes_per_frame": 0.0, "actual_bps": 0.0,
                       "latency_ms": {"resize": 1.0, "encode": 0.0, "decode": 0.0,
                                      "inference": 50.0, "device_compute": 51.0},
                       "energy": {"backend": "model", "compute_w": 2.0, "radio_w": {},
                                  "joules_per_frame": {}}}],
            "models": [], "fits": [], "energy_model": {"backend": "model", "description": "",
                                                       "radio": {}, "citation": ""},
            "summary": []
        }))
        .expect("a valid profile")
    }

    #[test]
    fn tracking_prices_late_results_by_the_tracked_curve_and_costs_device_time() {
        let tracked: Vec<f64> = (0..=10).map(|k| 0.8 - 0.02 * k as f64).collect();
        let profile = decaying_profile(tracked);
        let on = Candidates::from_profile(&profile, Tracking::On).unwrap();
        let off = Candidates::from_profile(&profile, Tracking::Off).unwrap();
        // 1 s late is 10 frames: 0.6 tracked, 0.2 as found; fresh results agree.
        assert!((on.list[0].accuracy_at_age(1.0) - 0.6).abs() < 1e-9);
        assert!((off.list[0].accuracy_at_age(1.0) - 0.2).abs() < 1e-9);
        assert!((on.list[0].accuracy_at_age(0.0) - off.list[0].accuracy_at_age(0.0)).abs() < 1e-12);
        assert_eq!((on.tracker_ms, off.tracker_ms), (4.0, 0.0));
        // The tracker runs on every camera frame: 4 ms × 30 fps = 12% of the device.
        let with = crate::Optimiser::new(on, crate::Mode::StopAndWait);
        let without = crate::Optimiser::new(off, crate::Mode::StopAndWait);
        assert!((with.tracker_busy_share() - 0.12).abs() < 1e-12);
        let net = crate::NetState {
            uplink_bps: 0.0,
            rtt_ms: 50.0,
        };
        let req = crate::Requirements::default();
        let (p_on, p_off) = (
            with.predict(&with.list()[0], &net, &req),
            without.predict(&without.list()[0], &net, &req),
        );
        // (3 − 1) W × 0.12 more, and a late result is worth more tracked.
        assert!(
            (p_on.power_w - p_off.power_w - 0.24).abs() < 1e-9,
            "{p_on:?} {p_off:?}"
        );
        assert!(p_on.accuracy > p_off.accuracy);
    }

    #[test]
    fn a_profile_without_tracked_curves_is_refused_with_the_fix_when_tracking() {
        let profile = decaying_profile(Vec::new());
        let err = Candidates::from_profile(&profile, Tracking::On)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--track off") && err.contains("profile again"),
            "{err}"
        );
        assert!(Candidates::from_profile(&profile, Tracking::Off).is_ok());
    }
}
