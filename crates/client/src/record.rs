//! What the runtime reports: one record per analysed frame, and a summary of the run.

use deepoffload_core::{
    Config, Detection, LatencyBreakdown, Placement, Summary as Stats, Tracking,
};
use deepoffload_pipeline::{Origin, Shown};
use serde::Serialize;

/// One analysed frame (a JSON line of `deepoffload run`).
#[derive(Debug, Clone, Serialize)]
pub struct FrameRecord {
    /// Index of the frame in the source.
    pub index: u64,
    /// Its timestamp in the source, seconds.
    pub pts_s: f64,
    /// When it was captured, seconds since the run started (client clock).
    pub capture_s: f64,
    /// Where it was actually analysed.
    pub placement: Placement,
    /// The configuration in force.
    pub config: Config,
    /// Boxes in the source frame's pixels.
    pub detections: Vec<Detection>,
    pub latency: LatencyBreakdown,
    /// Why a frame meant for the server was analysed locally, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The encoder skipped this frame to hold the bit rate: nothing was sent and the latest
    /// server result is repeated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Protocol bytes sent and received for this frame.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Detector batch the server ran this frame in (remote only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_batch: Option<u32>,
    /// Device time of the hedge's stand-in when its result was shown, ms: it ran beside the
    /// transfer, so the breakdown holds only the part that outlasted the wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stand_in_ms: Option<f64>,
    /// The device local figures belong to: `this-machine`, or a declared class "(emulated)".
    pub device: String,
}

impl FrameRecord {
    /// The record of a shown result, under `config` (where and with what it ran).
    pub fn new(shown: Shown, config: Config, device: String) -> Self {
        Self {
            index: shown.frame,
            pts_s: shown.pts_s,
            capture_s: shown.capture_s,
            placement: shown.placement(),
            config,
            detections: shown.detections,
            latency: shown.latency,
            fallback: shown.fallback,
            skipped: shown.origin == Origin::Repeated,
            bytes_up: shown.bytes_up,
            bytes_down: shown.bytes_down,
            server_batch: shown.server_batch,
            stand_in_ms: shown.stand_in_ms,
            device,
        }
    }
}

/// The run as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// As in the records: `this-machine` or an emulated device class.
    pub device: String,
    pub frames: u64,
    pub remote_frames: u64,
    pub local_frames: u64,
    pub fallbacks: u64,
    pub skipped_frames: u64,
    /// Analysis instants that passed while the pipeline was busy: no frame was analysed for
    /// them, so they have no record (the pipeline took a newer frame).
    pub missed_frames: u64,
    /// First capture to last result.
    pub wall_s: f64,
    /// Analysed frames per second of wall time.
    pub analysed_fps: f64,
    pub latency_ms: Option<Stats>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Mean of every breakdown part over all frames.
    pub mean_breakdown: LatencyBreakdown,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Mean server time per remote frame: decode + inference ÷ batch size, ms.
    pub server_ms_per_frame: Option<f64>,
    /// Mean protocol bytes sent per remote frame.
    pub bytes_per_remote_frame: Option<f64>,
    pub reconnects: u64,
    /// The frames the user saw: tracking, display rate, the tracker's cost, the results' age.
    pub display: DisplaySummary,
    /// Every decision of `--placement auto`, with its reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<deepoffload_decide::DecisionLog>,
}

impl RunSummary {
    pub fn from_records(records: &[FrameRecord], wall_s: f64, reconnects: u64) -> Self {
        let totals: Vec<f64> = records.iter().map(|r| r.latency.total_ms).collect();
        let n = records.len().max(1) as f64;
        let mut mean = LatencyBreakdown::default();
        for r in records {
            let l = &r.latency;
            mean.wait_ms += l.wait_ms / n;
            mean.resize_ms += l.resize_ms / n;
            mean.encode_ms += l.encode_ms / n;
            mean.network_ms += l.network_ms / n;
            mean.server_decode_ms += l.server_decode_ms / n;
            mean.server_queue_ms += l.server_queue_ms / n;
            mean.server_inference_ms += l.server_inference_ms / n;
            mean.server_other_ms += l.server_other_ms / n;
            mean.local_preprocess_ms += l.local_preprocess_ms / n;
            mean.local_inference_ms += l.local_inference_ms / n;
            mean.local_postprocess_ms += l.local_postprocess_ms / n;
            mean.post_ms += l.post_ms / n;
            mean.total_ms += l.total_ms / n;
        }
        let remote: Vec<&FrameRecord> = records
            .iter()
            .filter(|r| r.placement == Placement::Remote && !r.skipped)
            .collect();
        let server_ms: Vec<f64> = remote
            .iter()
            .map(|r| {
                r.latency.server_decode_ms
                    + r.latency.server_inference_ms / r.server_batch.unwrap_or(1).max(1) as f64
            })
            .collect();
        let mean_of = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let bytes_remote: Vec<f64> = remote.iter().map(|r| r.bytes_up as f64).collect();
        Self {
            device: records
                .first()
                .map_or_else(|| "this-machine".to_string(), |r| r.device.clone()),
            frames: records.len() as u64,
            remote_frames: records
                .iter()
                .filter(|r| r.placement == Placement::Remote)
                .count() as u64,
            local_frames: records
                .iter()
                .filter(|r| r.placement == Placement::Local)
                .count() as u64,
            fallbacks: records.iter().filter(|r| r.fallback.is_some()).count() as u64,
            skipped_frames: records.iter().filter(|r| r.skipped).count() as u64,
            wall_s,
            analysed_fps: if wall_s > 0.0 {
                records.len() as f64 / wall_s
            } else {
                0.0
            },
            latency_ms: Stats::of(&totals),
            p95_ms: deepoffload_core::quantile(&totals, 0.95),
            p99_ms: deepoffload_core::quantile(&totals, 0.99),
            mean_breakdown: mean,
            bytes_up: records.iter().map(|r| r.bytes_up).sum(),
            bytes_down: records.iter().map(|r| r.bytes_down).sum(),
            server_ms_per_frame: mean_of(&server_ms),
            bytes_per_remote_frame: mean_of(&bytes_remote),
            reconnects,
            missed_frames: 0,
            display: DisplaySummary::default(),
            decisions: Vec::new(),
        }
    }
}

/// One displayed frame (a JSON line of `deepoffload run --displayed`): a camera frame on the
/// display grid with the boxes the user sees on it.
#[derive(Debug, Clone, Serialize)]
pub struct DisplayRecord {
    /// Index of the frame in the source.
    pub index: u64,
    /// Its timestamp in the source, seconds.
    pub pts_s: f64,
    /// When it was displayed, seconds since the run started (client clock).
    pub shown_s: f64,
    /// Whether the device tracks boxes between results.
    pub track: Tracking,
    /// The boxes were carried here by the tracker (false: shown where the detector found them —
    /// tracking off, or a result the tracker could not bring forward).
    pub tracked: bool,
    /// The latest result, if one has been shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<DisplayedResult>,
    /// Boxes on this frame, source pixels (clipped to it when tracked).
    pub boxes: Vec<DisplayBox>,
    /// Tracker time spent for this frame, ms: its push, and the catch-ups (and frames pushed
    /// off the display grid) since the previous displayed frame. Measured on this machine.
    pub tracker_ms: f64,
    /// Why tracking stopped, if it did (the camera's frames could not be tracked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_error: Option<String>,
}

/// The result a displayed frame shows.
#[derive(Debug, Clone, Serialize)]
pub struct DisplayedResult {
    /// The frame the detector saw.
    pub frame: u64,
    /// Its timestamp, seconds.
    pub pts_s: f64,
    /// Source time from that frame to the displayed one, seconds.
    pub age_s: f64,
    pub placement: Placement,
    /// `local`, `remote` or `stand-in` (the hedge's local result shown for a remote frame).
    pub origin: String,
    pub model: String,
    pub input_size: u32,
    /// The result's end-to-end latency, ms.
    pub latency_ms: f64,
}

/// A box on a displayed frame.
#[derive(Debug, Clone, Serialize)]
pub struct DisplayBox {
    #[serde(flatten)]
    pub detection: Detection,
    /// How much to trust it now: the tracker's (score decayed with age) when tracked, else
    /// the detector's score.
    pub confidence: f32,
}

/// The displayed frames of a run.
///
/// Tracker times are this machine's, also when the device is emulated: the emulation pads
/// only the detector's inference (`PaddedDetector`); the client scales no other device work
/// (resize, encode, tracking are all reported as measured). The client's summary reports no
/// busy time or energy of its own; `tracker_ms_total` is the device time to add to either.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DisplaySummary {
    pub track: Tracking,
    /// Frames per second of source time on the display grid.
    pub display_fps: f64,
    pub displayed_frames: u64,
    /// Tracker ms per displayed frame (its push and the catch-ups it carried).
    pub tracker_ms_mean: Option<f64>,
    pub tracker_ms_p95: Option<f64>,
    /// Results brought forward through the ring.
    pub catch_ups: u64,
    pub catch_up_ms_mean: Option<f64>,
    pub catch_up_ms_p95: Option<f64>,
    /// Mean frames a result was tracked through to reach the newest displayed frame.
    pub catch_up_frames_mean: Option<f64>,
    /// Mean age of the shown result at display, ms of source time.
    pub age_ms_mean: Option<f64>,
    /// All tracker time of the run, ms (device busy time).
    pub tracker_ms_total: f64,
    /// Results the tracker could not bring forward (older than its ring), shown as found.
    pub untracked_results: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_error: Option<String>,
}
