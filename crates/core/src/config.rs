//! The configuration of one time window, and the per-frame latency breakdown.

use serde::{Deserialize, Serialize};

/// Where a frame is analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// On the device, with the small model.
    Local,
    /// On the edge server, after H.264 encoding and transfer.
    Remote,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Placement::Local => "local",
            Placement::Remote => "remote",
        })
    }
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "remote" => Ok(Self::Remote),
            _ => Err(format!("placement `{s}` must be `local` or `remote`")),
        }
    }
}

/// Whether the device carries each result to the frames after it with the on-device tracker
/// (`deepoffload-track`) or shows it as it came: what the user sees between results, and so
/// what the decision engine prices (the profile's tracked or untracked staleness curves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Tracking {
    /// Boxes follow the objects from frame to frame until the next result.
    #[default]
    On,
    /// The latest result is shown where it was found.
    Off,
}

impl std::fmt::Display for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tracking::On => "on",
            Tracking::Off => "off",
        })
    }
}

/// The radio technology that carries a device's transfers (and prices them in energy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Radio {
    #[default]
    #[serde(rename = "lte")]
    #[cfg_attr(feature = "clap", value(name = "lte"))]
    Lte,
    #[serde(rename = "wifi")]
    #[cfg_attr(feature = "clap", value(name = "wifi"))]
    Wifi,
    #[serde(rename = "3g")]
    #[cfg_attr(feature = "clap", value(name = "3g"))]
    ThreeG,
}

impl Radio {
    pub const ALL: [Radio; 3] = [Radio::Lte, Radio::Wifi, Radio::ThreeG];

    /// The name profiles key radio models by.
    pub fn as_str(self) -> &'static str {
        match self {
            Radio::Lte => "lte",
            Radio::Wifi => "wifi",
            Radio::ThreeG => "3g",
        }
    }
}

impl std::fmt::Display for Radio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Radio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Radio::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("radio `{s}` must be lte, wifi or 3g"))
    }
}

/// The knobs of one time window: one value type shared by the runtime, the profiler, the
/// optimiser, the wire and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub placement: Placement,
    /// Detector that analyses the frame (the server's model when remote).
    pub model: String,
    /// Its square input size in pixels.
    pub input_size: u32,
    /// Resolution frames are scaled to before detection or encoding.
    pub width: u32,
    pub height: u32,
    /// Analysed frames per second.
    pub fps: f64,
    /// H.264 target bit rate (remote only; 0 when local).
    pub bitrate_bps: u64,
}

/// A source side scaled by `scale` and rounded down to an even number (at least 2): H.264
/// needs even sides. The one rule from a configuration's scale to the frame size it analyses,
/// used by the profiler and the runtime alike, so the runtime never picks a size the profile
/// did not measure.
pub fn scaled_side(side: u32, scale: f64) -> u32 {
    (((side as f64 * scale) as u32) & !1).max(2)
}

/// Where one frame's end-to-end time went, in milliseconds. The parts add up to `total_ms`
/// (`network_ms` is what remains of the round trip after the server's own durations, so no
/// clock synchronisation is needed).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyBreakdown {
    /// Waiting between capture and the start of processing (a busy pipeline, pacing).
    pub wait_ms: f64,
    pub resize_ms: f64,
    pub encode_ms: f64,
    /// Uplink + downlink + protocol overheads.
    pub network_ms: f64,
    pub server_decode_ms: f64,
    pub server_queue_ms: f64,
    pub server_inference_ms: f64,
    /// Server time outside decode, queue and inference (parsing, replying).
    pub server_other_ms: f64,
    /// Local detection: pre-processing, network forward pass, decoding and NMS.
    pub local_preprocess_ms: f64,
    pub local_inference_ms: f64,
    pub local_postprocess_ms: f64,
    /// Client work after the result (mapping boxes back, output).
    pub post_ms: f64,
    /// Capture to result, measured.
    pub total_ms: f64,
}

impl LatencyBreakdown {
    /// Everything the server spent on the frame: decode, batching wait, inference and the rest
    /// (what the controller compares with the profile's server time).
    pub fn server_ms(&self) -> f64 {
        self.server_decode_ms
            + self.server_queue_ms
            + self.server_inference_ms
            + self.server_other_ms
    }

    /// Sum of the parts (equals `total_ms` up to rounding when the breakdown is complete).
    pub fn parts_ms(&self) -> f64 {
        self.wait_ms
            + self.resize_ms
            + self.encode_ms
            + self.network_ms
            + self.server_decode_ms
            + self.server_queue_ms
            + self.server_inference_ms
            + self.server_other_ms
            + self.local_preprocess_ms
            + self.local_inference_ms
            + self.local_postprocess_ms
            + self.post_ms
    }
}
