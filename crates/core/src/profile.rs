//! The profile: what every configuration achieved on a device, measured. Written by the
//! profiler (`deepoffload profile`), read by the decision engine and the report.
//! Documented field by field in `docs/profile.md`; `schema` names the version.

use crate::metrics::Accuracy;
use crate::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version tag of this schema.
pub const PROFILE_SCHEMA: &str = "deepoffload.profile/1";

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub schema: String,
    pub tool_version: String,
    /// Seconds since the Unix epoch when the profile was finished.
    pub created_unix_s: u64,
    pub device: DeviceInfo,
    /// The model whose detections on the raw frames are the accuracy reference.
    pub reference: ModelKey,
    /// Frames a result may be late in the staleness curves (k = 0..=max_lag).
    pub max_lag: usize,
    /// The encoder's rate control in the remote cells (`cbr` pads to the target, as the
    /// client sends; `bitrate` spends less on easy content).
    pub rate_control: String,
    pub videos: Vec<VideoProfile>,
    pub cells: Vec<Cell>,
    /// Inference time of each model and input size, on this machine and on the device.
    pub models: Vec<ModelLatency>,
    /// Latency and energy against pixel count.
    pub fits: Vec<PixelFit>,
    pub energy_model: EnergyModelInfo,
    /// Generated findings (Markdown lines), with numbers.
    pub summary: Vec<String>,
}

/// The device a profile belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    /// True when local figures are this machine's measurements scaled to a declared device.
    pub emulated: bool,
    /// The machine the measurements were taken on.
    pub measured_on: String,
    /// Device power while computing and otherwise (screen and radio excluded), watts: lets the
    /// decision engine price a configuration at any frame rate.
    #[serde(default)]
    pub active_w: f64,
    #[serde(default)]
    pub idle_w: f64,
    /// The on-device tracker's time per displayed frame on this device, ms (the measuring
    /// machine's, times the device's speed factor; 0 in profiles written before it was measured).
    #[serde(default)]
    pub tracker_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelKey {
    pub model: String,
    pub input_size: u32,
}

/// One video of the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoProfile {
    pub name: String,
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub frames: u64,
    /// Source frames accuracy is evaluated on (analysed under every frame rate of the grid).
    pub eval_frames: Vec<u64>,
    /// Reference detections over the evaluation frames: the evidence behind every accuracy
    /// figure of this video (few objects make F1 coarse).
    pub reference_objects: u64,
    /// F1 of the reference at frame i against the reference at frame i + k: how fast the scene
    /// itself changes, k = 0..=max_lag.
    pub reference_staleness_f1: Vec<f64>,
    /// The same with the reference's boxes of frame i carried to frame i + k by the on-device
    /// tracker (scores kept, lost boxes missed): what an AR display that tracks a late result
    /// forward shows. Empty in profiles written before it was measured, which still load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_tracked_staleness_f1: Vec<f64>,
    /// The tracker's cost per displayed frame on the measuring machine, ms: grey conversion
    /// and pyramid of the frame, and the reference's boxes moved onto it. 0 when not measured.
    #[serde(default)]
    pub tracker_ms: f64,
}

/// One configuration on one video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub video: String,
    pub config: Config,
    /// The grid's scale the frame size came from (`scaled_side(source side, scale)`), so the
    /// decision engine keys the cell by the exact knob and the runtime turns it back into the
    /// very size measured. Absent in profiles written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Against the reference on the evaluation frames, results shown at once.
    pub accuracy: Accuracy,
    /// mAP@0.5 against the reference (as pseudo ground truth).
    pub map50: Option<f64>,
    /// Mean per-frame F1 when each result is shown k source frames late, k = 0..=max_lag.
    pub staleness_f1: Vec<f64>,
    /// The tracked twin of `staleness_f1`: each result carried by the on-device tracker to the
    /// frame k source frames later instead of shown as it was. Empty in profiles written before
    /// it was measured, which still load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracked_staleness_f1: Vec<f64>,
    /// Frames the sampler kept at the configured rate.
    pub frames_analysed: u64,
    /// Of those, frames the encoder dropped to hold the bit rate (remote only).
    pub frames_skipped: u64,
    /// Analysed frames per second left after encoder skipping.
    pub achieved_fps: f64,
    /// Mean encoded bytes per sent frame (remote; 0 local).
    pub bytes_per_frame: f64,
    /// Bit rate actually produced, bits per second (remote; 0 local).
    pub actual_bps: f64,
    pub latency_ms: CellLatency,
    pub energy: CellEnergy,
}

/// Per-stage latency of a configuration, milliseconds per frame.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CellLatency {
    pub resize: f64,
    /// H.264 encoding on the device (remote).
    pub encode: f64,
    /// H.264 decoding on the server (remote).
    pub decode: f64,
    /// Detector time: on the device (local) or on the server (remote), pre- and post-processing
    /// included.
    pub inference: f64,
    /// Compute time on the device, for this device: resize + encode (remote) or resize +
    /// inference scaled to the device (local).
    pub device_compute: f64,
}

/// Energy of running a configuration continuously.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CellEnergy {
    /// Which meter or model produced the figures.
    pub backend: String,
    /// Average device compute power, watts.
    pub compute_w: f64,
    /// Average radio power per radio technology ("lte", "wifi", "3g"), watts (0 when local).
    pub radio_w: BTreeMap<String, f64>,
    /// Energy per analysed frame per radio technology, joules.
    pub joules_per_frame: BTreeMap<String, f64>,
}

/// Detector time of one model at one input size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLatency {
    pub key: ModelKey,
    pub pixels: u64,
    pub gflops: f64,
    /// Measured on this machine (median, ms), pre- and post-processing included.
    pub measured_ms: f64,
    /// On the profile's device (scaled when emulated).
    pub device_ms: f64,
    /// Device energy per inference, joules.
    pub device_joules: f64,
}

/// `y = c0 + c1·p + c2·p²` against pixel count p, with its goodness of fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelFit {
    /// What was fitted, e.g. "latency_ms yolov3-tiny (device)".
    pub quantity: String,
    pub coefficients: [f64; 3],
    pub r2: f64,
    /// R² of the best straight line, to judge whether the square term matters.
    pub linear_r2: f64,
    pub points: Vec<(u64, f64)>,
}

/// How energy figures were produced, with the constants used.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EnergyModelInfo {
    pub backend: String,
    pub description: String,
    /// Radio power models: technology → (alpha_up mW/Mbps, alpha_down mW/Mbps, beta mW).
    pub radio: BTreeMap<String, [f64; 3]>,
    pub citation: String,
}

/// The bit rates of the remote cells among `cells`, ascending, each once.
pub fn remote_bitrates<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Vec<u64> {
    let mut rates: Vec<u64> = cells
        .into_iter()
        .filter(|c| c.config.placement == crate::Placement::Remote)
        .map(|c| c.config.bitrate_bps)
        .collect();
    rates.sort_unstable();
    rates.dedup();
    rates
}

impl Profile {
    /// The cells of one video.
    pub fn cells_of<'a>(&'a self, video: &'a str) -> impl Iterator<Item = &'a Cell> + 'a {
        self.cells.iter().filter(move |c| c.video == video)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_without_tracked_curves_load_and_empty_curves_are_left_out() {
        let old = r#"{"name":"v.mp4","path":"v.mp4","width":640,"height":480,"fps":10.0,
            "frames":100,"eval_frames":[0,10],"reference_objects":3,
            "reference_staleness_f1":[1.0,0.5]}"#;
        let video: VideoProfile = serde_json::from_str(old).unwrap();
        assert!(video.reference_tracked_staleness_f1.is_empty());
        let written = serde_json::to_string(&video).unwrap();
        assert!(!written.contains("tracked"), "{written}");
        let tracked = VideoProfile {
            reference_tracked_staleness_f1: vec![1.0, 0.75],
            tracker_ms: 1.5,
            ..video
        };
        let back: VideoProfile =
            serde_json::from_str(&serde_json::to_string(&tracked).unwrap()).unwrap();
        assert_eq!(back, tracked);
    }
}
