//! The first pass over a video: one decoding of the raw frames that picks the evaluation frames
//! (kept under every frame rate of the grid, `eval_every_s` apart), keeps their pictures, and
//! computes the reference on every frame (or loads it from the cache); and the scoring of a
//! pass's predictions against that reference.
//!
//! It never measures a cell: the local and remote passes do, on what this pass kept.

use super::latency::Detectors;
use super::progress;
use crate::grid::{scaled_side, Grid, ModelAt};
use crate::reference::{self, Reference};
use crate::LabError;
use deepoffload_assets::Store;
use deepoffload_core::metrics::{
    match_frame, mean_average_precision, Accuracy, AccuracyAccumulator, MATCH_IOU,
};
use deepoffload_core::profile::VideoProfile;
use deepoffload_core::{Detection, RgbBuffer};
use deepoffload_detect::Detector;
use deepoffload_video::{OpenOptions, Sampler, VideoInfo, VideoSource};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Per-video facts from the first decoding pass, what every cell of the video is scored on.
pub(super) struct VideoPass {
    /// The video's entry in the profile.
    pub(super) profile: VideoProfile,
    reference: Reference,
    /// Raw evaluation frames, by source index.
    pub(super) eval_images: BTreeMap<u64, RgbBuffer>,
    /// Source frames covered (evaluation ends before the last `max_lag` reference frames).
    pub(super) frames: usize,
}

impl VideoPass {
    /// Accuracy, mAP and staleness of predictions at evaluation frames.
    pub(super) fn score(
        &self,
        predictions: &BTreeMap<u64, Vec<Detection>>,
        max_lag: usize,
    ) -> (Accuracy, Option<f64>, Vec<f64>) {
        let mut acc = AccuracyAccumulator::default();
        let mut pairs = Vec::new();
        for (&i, p) in predictions {
            let r = &self.reference.frames[i as usize];
            acc.add(&match_frame(p, r, MATCH_IOU));
            pairs.push((p.as_slice(), r.as_slice()));
        }
        (
            acc.accuracy(),
            mean_average_precision(&pairs, MATCH_IOU),
            staleness(predictions, &self.reference, max_lag),
        )
    }

    /// Maps boxes found on a frame scaled to `from` back to the source size, where the
    /// reference's boxes are.
    pub(super) fn to_source(
        &self,
        mut detections: Vec<Detection>,
        from: (u32, u32),
    ) -> Vec<Detection> {
        let to = (self.profile.width, self.profile.height);
        let (sx, sy) = (to.0 as f32 / from.0 as f32, to.1 as f32 / from.1 as f32);
        for d in &mut detections {
            d.bbox = d.bbox.map(sx, sy, 0.0, 0.0);
        }
        detections
    }

    /// The source's frame size at `scale`, a configuration's resolution.
    pub(super) fn scaled(&self, scale: f64) -> (u32, u32) {
        let (w0, h0) = (self.profile.width, self.profile.height);
        (scaled_side(w0, scale), scaled_side(h0, scale))
    }

    /// Frames analysed at `fps` over the covered part of the video.
    pub(super) fn frames_at(&self, fps: f64) -> u64 {
        let seconds = self.frames as f64 / self.profile.fps.max(1e-9);
        (seconds * fps.min(self.profile.fps)).round() as u64
    }
}

/// Staleness curve of predictions at evaluation frames against the reference k frames later.
fn staleness(
    predictions: &BTreeMap<u64, Vec<Detection>>,
    reference: &Reference,
    max_lag: usize,
) -> Vec<f64> {
    (0..=max_lag)
        .map(|k| {
            let mut acc = AccuracyAccumulator::default();
            for (&i, p) in predictions {
                if let Some(r) = reference.frames.get(i as usize + k) {
                    acc.add(&match_frame(p, r, MATCH_IOU));
                }
            }
            acc.accuracy().f1
        })
        .collect()
}

fn video_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What the decoding loop kept.
struct Decoded {
    /// Frames decoded.
    count: usize,
    eval_frames: Vec<u64>,
    eval_images: BTreeMap<u64, RgbBuffer>,
    /// The reference model's detections per frame, when it ran (no cached reference).
    detections: Vec<Vec<Detection>>,
}

/// Decoding pass: timestamps, evaluation frames (kept by every grid frame rate), the reference.
pub(super) fn first_pass(
    store: &Store,
    path: &Path,
    grid: &Grid,
    reference_model: &ModelAt,
    detectors: &mut Detectors,
) -> Result<VideoPass, LabError> {
    let name = video_name(path);
    let digest = reference::video_digest(path)?;
    let mut source = deepoffload_video::open(path, store, &OpenOptions::default())?;
    let info = source.info().clone();
    let limit = grid
        .max_seconds
        .map(|s| (s * info.fps).ceil() as usize)
        .unwrap_or(usize::MAX);
    let total = info
        .frames
        .map(|f| f as usize)
        .unwrap_or(usize::MAX)
        .min(limit.saturating_add(grid.max_lag));
    let cache = reference::cache_path(
        &store.config().cache,
        &digest,
        &reference_model.model,
        reference_model.size,
    );
    let cached = info
        .frames
        .and_then(|f| reference::load_cached(&cache, &digest, total.min(f as usize)));
    let bar = progress(
        if total == usize::MAX { 0 } else { total as u64 },
        format!(
            "{name}: reference {}@{}",
            reference_model.model, reference_model.size
        ),
    );
    let to_detect = cached.is_none().then_some(reference_model);
    let decoded = decode(
        &mut *source,
        grid,
        (limit, total),
        to_detect,
        detectors,
        &bar,
    )?;
    bar.finish_and_clear();
    let reference = match cached {
        Some(mut r) => {
            r.frames.truncate(decoded.count);
            r
        }
        None => {
            let r = Reference {
                video_sha256: digest.clone(),
                model: reference_model.model.clone(),
                input_size: reference_model.size,
                frames: decoded.detections,
            };
            let count = decoded.count;
            if count == total || info.frames.is_some_and(|f| f as usize == count) {
                reference::store(&cache, &r)?;
            }
            r
        }
    };
    if decoded.eval_frames.is_empty() {
        return Err(LabError::Usage(format!(
            "{name}: no frame is analysed under every grid frame rate; check the grid's fps"
        )));
    }
    let covered = decoded.count.min(limit);
    Ok(VideoPass {
        profile: video_profile(
            name,
            path,
            &info,
            covered,
            decoded.eval_frames,
            &reference,
            grid.max_lag,
        ),
        reference,
        eval_images: decoded.eval_images,
        frames: covered,
    })
}

/// Decodes up to `total` frames, keeping the evaluation frames among the first `limit` and,
/// with `reference_model`, running it on every frame.
fn decode(
    source: &mut dyn VideoSource,
    grid: &Grid,
    (limit, total): (usize, usize),
    reference_model: Option<&ModelAt>,
    detectors: &mut Detectors,
    bar: &ProgressBar,
) -> Result<Decoded, LabError> {
    let mut samplers: Vec<Sampler> = grid.fps.iter().map(|&f| Sampler::new(f)).collect();
    let mut decoded = Decoded {
        count: 0,
        eval_frames: Vec::new(),
        eval_images: BTreeMap::new(),
        detections: Vec::new(),
    };
    let mut next_eval: Option<Duration> = None;
    while decoded.count < total {
        let Some(frame) = source.next_frame()? else {
            break;
        };
        let i = decoded.count;
        decoded.count += 1;
        // Every sampler must see every frame to keep its state right.
        let kept_by_all = samplers
            .iter_mut()
            .fold(true, |all, s| s.keep(frame.pts) & all);
        let first = *next_eval.get_or_insert(frame.pts);
        if kept_by_all && i < limit && frame.pts + Duration::from_micros(1) >= first {
            decoded.eval_frames.push(i as u64);
            next_eval = Some(frame.pts + Duration::from_secs_f64(grid.eval_every_s));
            decoded.eval_images.insert(i as u64, frame.image.clone());
        }
        if let Some(model) = reference_model {
            let det = detectors.get(model)?;
            decoded
                .detections
                .push(det.detect(frame.image.view())?.detections);
        }
        bar.inc(1);
    }
    Ok(decoded)
}

/// The profile's entry for a video: its size, coverage, evaluation frames and how the
/// reference itself ages.
fn video_profile(
    name: String,
    path: &Path,
    info: &VideoInfo,
    covered: usize,
    eval_frames: Vec<u64>,
    reference: &Reference,
    max_lag: usize,
) -> VideoProfile {
    let all: BTreeMap<u64, Vec<Detection>> = eval_frames
        .iter()
        .map(|&i| (i, reference.frames[i as usize].clone()))
        .collect();
    let reference_objects = eval_frames
        .iter()
        .map(|&i| reference.frames[i as usize].len() as u64)
        .sum();
    VideoProfile {
        name,
        path: path.display().to_string(),
        width: info.width,
        height: info.height,
        fps: info.fps,
        frames: covered as u64,
        eval_frames,
        reference_objects,
        reference_staleness_f1: staleness(&all, reference, max_lag),
    }
}
