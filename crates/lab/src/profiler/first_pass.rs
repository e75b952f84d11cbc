//! The first pass over a video: one decoding of the raw frames that picks the evaluation frames
//! (kept under every frame rate of the grid, `eval_every_s` apart), keeps their pictures, and
//! computes the reference on every frame (or loads it from the cache); and the scoring of a
//! pass's predictions against that reference.
//!
//! It also keeps, at the on-device tracker's small working size, the frames every evaluation
//! frame's result is tracked through (`max_lag` frames on), in one tracker ring per video: the
//! tracked staleness curves of the reference and of every cell replay results through the same
//! pyramids, built once.
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
use deepoffload_track::{GreyFrame, Tracker, TrackerSettings};
use deepoffload_video::{OpenOptions, Sampler, VideoInfo, VideoSource};
use indicatif::ProgressBar;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Per-video facts from the first decoding pass, what every cell of the video is scored on.
pub(super) struct VideoPass {
    /// The video's entry in the profile.
    pub(super) profile: VideoProfile,
    reference: Reference,
    /// Raw evaluation frames, by source index.
    pub(super) eval_images: BTreeMap<u64, RgbBuffer>,
    /// Source frames covered (evaluation ends before the last `max_lag` reference frames).
    pub(super) frames: usize,
    /// Every frame within `max_lag` after an evaluation frame, at working size; `None` when the
    /// video's frames cannot be tracked (too small), and the tracked curves stay empty.
    tracker: Option<Tracker>,
    /// Time spent tracking results for the tracked curves, reported after the video.
    pub(super) tracking_time: Cell<Duration>,
}

impl VideoPass {
    /// Accuracy, mAP, staleness and tracked staleness of predictions at evaluation frames.
    pub(super) fn score(
        &self,
        predictions: &BTreeMap<u64, Vec<Detection>>,
        max_lag: usize,
    ) -> Scores {
        let mut acc = AccuracyAccumulator::default();
        let mut pairs = Vec::new();
        for (&i, p) in predictions {
            let r = &self.reference.frames[i as usize];
            acc.add(&match_frame(p, r, MATCH_IOU));
            pairs.push((p.as_slice(), r.as_slice()));
        }
        let started = Instant::now();
        let tracked =
            tracked_staleness(predictions, &self.reference, self.tracker.as_ref(), max_lag);
        self.tracking_time
            .set(self.tracking_time.get() + started.elapsed());
        Scores {
            accuracy: acc.accuracy(),
            map50: mean_average_precision(&pairs, MATCH_IOU),
            staleness: staleness(predictions, &self.reference, max_lag),
            tracked_staleness: tracked,
        }
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

/// How a pass's predictions score against the reference.
pub(super) struct Scores {
    pub(super) accuracy: Accuracy,
    pub(super) map50: Option<f64>,
    /// F1 when shown k frames late, k = 0..=max_lag.
    pub(super) staleness: Vec<f64>,
    /// F1 when tracked k frames on; empty when the video could not be tracked.
    pub(super) tracked_staleness: Vec<f64>,
}

/// The tracked twin of [`staleness`]: predictions at each evaluation frame carried frame by
/// frame by the tracker to k frames later and matched there. Tracked boxes keep their score,
/// so the curve measures where the boxes land; boxes the tracker loses count as missed. At
/// k = 0 nothing is tracked: the predictions are matched as given, so the curve starts where
/// the untracked one does.
fn tracked_staleness(
    predictions: &BTreeMap<u64, Vec<Detection>>,
    reference: &Reference,
    tracker: Option<&Tracker>,
    max_lag: usize,
) -> Vec<f64> {
    let Some(tracker) = tracker else {
        return Vec::new();
    };
    let mut accs = vec![AccuracyAccumulator::default(); max_lag + 1];
    for (&i, p) in predictions {
        let Some(r) = reference.frames.get(i as usize) else {
            continue;
        };
        accs[0].add(&match_frame(p, r, MATCH_IOU));
        // Lags the replay reached; a result it cannot replay counts as lost at every lag.
        let mut reached = 0;
        let replayed = tracker.replay(i, p, max_lag, |index, boxes| {
            let k = index.saturating_sub(i) as usize;
            if let (1.., Some(r)) = (k, reference.frames.get(index as usize)) {
                if k <= max_lag {
                    accs[k].add(&match_frame(boxes, r, MATCH_IOU));
                    reached = reached.max(k);
                }
            }
        });
        if let Err(e) = replayed {
            tracing::warn!("tracking from frame {i}: {e}");
        }
        for (k, acc) in accs.iter_mut().enumerate().skip(reached + 1) {
            if let Some(r) = reference.frames.get(i as usize + k) {
                acc.add(&match_frame(&[], r, MATCH_IOU));
            }
        }
    }
    accs.iter().map(|acc| acc.accuracy().f1).collect()
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
    /// Frames within `max_lag` after an evaluation frame, grey at the tracker's working size,
    /// in order; `None` once a frame could not be converted (too small to track).
    greys: Option<Vec<(u64, GreyFrame)>>,
    /// Time spent turning source frames into grey working frames, and how many.
    grey_time: (Duration, u32),
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
    // Building the ring's pyramids and tracking the reference count as tracking time too.
    let started = Instant::now();
    let displayed_ms = decoded.greys.as_deref().and_then(|greys| {
        let (time, count) = decoded.grey_time;
        let grey_ms = time.as_secs_f64() * 1e3 / count.max(1) as f64;
        Some(grey_ms + push_ms(greys, &reference)?)
    });
    let tracker = decoded.greys.and_then(|greys| ring(&name, greys));
    let mut profile = video_profile(
        name,
        path,
        &info,
        covered,
        decoded.eval_frames,
        &reference,
        grid.max_lag,
    );
    profile.tracker_ms = displayed_ms.unwrap_or(0.0);
    profile.reference_tracked_staleness_f1 = tracked_staleness(
        &reference_at(&profile.eval_frames, &reference),
        &reference,
        tracker.as_ref(),
        grid.max_lag,
    );
    Ok(VideoPass {
        profile,
        reference,
        eval_images: decoded.eval_images,
        frames: covered,
        tracker,
        tracking_time: Cell::new(started.elapsed()),
    })
}

/// The tracker settings of the tracked curves: the tracker as the client runs it.
fn tracker_settings(ring_len: usize) -> TrackerSettings {
    TrackerSettings {
        ring_len: ring_len.max(1),
        ..TrackerSettings::default()
    }
}

/// Frames [`push_ms`] times: a second of video at 30 fps.
const TIMED_PUSHES: usize = 30;

/// The tracker's time per displayed frame after its grey conversion, ms: the client's tracker
/// (default ring) given the reference's boxes on the first kept frame, then fed the consecutive
/// frames after it, each push timed (pyramid, flow of every box, confidence). `None` when fewer
/// than two consecutive frames were kept.
fn push_ms(greys: &[(u64, GreyFrame)], reference: &Reference) -> Option<f64> {
    let mut tracker = Tracker::new(TrackerSettings::default()).ok()?;
    let (first, grey) = greys.first()?;
    tracker.push_frame(*first, 0.0, grey).ok()?;
    let boxes = reference.frames.get(*first as usize)?;
    tracker.set_result(*first, boxes).ok()?;
    let mut total = Duration::ZERO;
    let mut pushes = 0;
    for (k, (index, grey)) in greys.iter().enumerate().skip(1).take(TIMED_PUSHES) {
        if *index != first + k as u64 {
            break;
        }
        let started = Instant::now();
        tracker.push_frame(*index, k as f64, grey).ok()?;
        total += started.elapsed();
        pushes += 1;
    }
    (pushes > 0).then(|| total.as_secs_f64() * 1e3 / pushes as f64)
}

/// One tracker ring holding every kept frame, its pyramids built once.
fn ring(name: &str, greys: Vec<(u64, GreyFrame)>) -> Option<Tracker> {
    let mut tracker = match Tracker::new(tracker_settings(greys.len())) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("{name}: no tracked staleness: {e}");
            return None;
        }
    };
    for (i, grey) in greys {
        // Replays ignore time; the index keeps it increasing.
        if let Err(e) = tracker.push_frame(i, i as f64, &grey) {
            tracing::warn!("{name}: no tracked staleness: {e}");
            return None;
        }
    }
    Some(tracker)
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
        greys: Some(Vec::new()),
        grey_time: (Duration::ZERO, 0),
    };
    let working_side = tracker_settings(1).max_working_side;
    let mut last_eval: Option<usize> = None;
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
            last_eval = Some(i);
        }
        if last_eval.is_some_and(|s| i - s <= grid.max_lag) {
            if let Some(greys) = &mut decoded.greys {
                let started = Instant::now();
                let grey = GreyFrame::from_rgb(frame.image.view(), working_side);
                decoded.grey_time.0 += started.elapsed();
                decoded.grey_time.1 += 1;
                match grey {
                    Ok(grey) => greys.push((i as u64, grey)),
                    Err(e) => {
                        tracing::warn!("frame {i} cannot be tracked: {e}");
                        decoded.greys = None;
                    }
                }
            }
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

/// The reference's detections at `eval_frames`, as predictions to score.
fn reference_at(eval_frames: &[u64], reference: &Reference) -> BTreeMap<u64, Vec<Detection>> {
    eval_frames
        .iter()
        .filter_map(|&i| Some((i, reference.frames.get(i as usize)?.clone())))
        .collect()
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
    let all = reference_at(&eval_frames, reference);
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
        // Tracking needs the ring; `first_pass` fills these in.
        reference_tracked_staleness_f1: Vec::new(),
        tracker_ms: 0.0,
    }
}
