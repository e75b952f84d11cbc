//! The tracker: a ring of recent frame pyramids, the boxes of the latest result carried to the
//! newest frame, and catch-up of a late result through the ring.

use std::collections::VecDeque;

use deepoffload_core::{BBox, Detection, RgbImageRef};
use image_buffer::GrayImage;
use optical_flow_lk::{
    build_pyramid_into, calc_optical_flow_fb, TrackParams, TrackStatus, DEFAULT_MIN_EIGEN_THRESHOLD,
};

use crate::frame::{FrameError, GreyFrame};
use crate::motion::median_flow;

/// How the tracker works; [`TrackerSettings::default`] suits a phone camera at 10–30 fps.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSettings {
    /// Frames kept for catch-up. A result older than the ring cannot be brought forward, so this
    /// bounds the latency a result may have (32 frames: about 1 s at 30 fps, 3 s at 10 fps).
    pub ring_len: usize,
    /// Longest side of the working frames, in pixels: [`Tracker::push_rgb`] shrinks frames by a
    /// whole factor to fit. Small frames make the flow cheap; 320 px still resolves boxes a few
    /// tens of source pixels wide.
    pub max_working_side: u32,
    /// Points tracked per box, rounded to a square grid (25 gives 5×5). An odd grid puts a
    /// column and a row on the box centre, so the median displacement is the centre's.
    pub points_per_box: usize,
    /// Pyramid levels including full resolution; each level doubles the motion LK can follow.
    pub pyramid_levels: usize,
    /// Side of the LK window in working pixels; odd.
    pub window_size: usize,
    /// LK iterations per pyramid level.
    pub max_iterations: usize,
    /// Largest forward-backward round-trip error, in working pixels, for a point to count as
    /// tracked: points that do not come back to where they started are on occluders or the
    /// background, or went astray.
    pub fb_threshold_px: f32,
    /// A box whose tracked fraction of points is below this is dropped: its track failed.
    pub min_tracked_fraction: f32,
    /// Seconds after which a box's confidence has halved: an old box is less likely to still be
    /// right, and the display can fade it out.
    pub confidence_half_life_s: f64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            ring_len: 32,
            max_working_side: 320,
            points_per_box: 25,
            pyramid_levels: 3,
            window_size: 11,
            max_iterations: 20,
            fb_threshold_px: 0.7,
            min_tracked_fraction: 0.5,
            confidence_half_life_s: 1.0,
        }
    }
}

/// Settings the tracker cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("ring_len must be at least 1")]
    EmptyRing,
    #[error("points_per_box must be between 4 and 400 (got {0})")]
    PointsPerBox(usize),
    #[error("pyramid_levels must be between 1 and 8 (got {0})")]
    PyramidLevels(usize),
    #[error("window_size must be odd and between 3 and 63 (got {0})")]
    WindowSize(usize),
    #[error("max_iterations must be at least 1")]
    MaxIterations,
    #[error("fb_threshold_px must be positive (got {0})")]
    FbThreshold(f32),
    #[error("min_tracked_fraction must lie in (0, 1] (got {0})")]
    MinTrackedFraction(f32),
    #[error("confidence_half_life_s must be positive (got {0})")]
    HalfLife(f64),
    #[error(transparent)]
    WorkingSide(#[from] FrameError),
}

impl TrackerSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.ring_len == 0 {
            return Err(SettingsError::EmptyRing);
        }
        if !(4..=400).contains(&self.points_per_box) {
            return Err(SettingsError::PointsPerBox(self.points_per_box));
        }
        if !(1..=8).contains(&self.pyramid_levels) {
            return Err(SettingsError::PyramidLevels(self.pyramid_levels));
        }
        if !(3..=63).contains(&self.window_size) || self.window_size.is_multiple_of(2) {
            return Err(SettingsError::WindowSize(self.window_size));
        }
        if self.max_iterations == 0 {
            return Err(SettingsError::MaxIterations);
        }
        if self.fb_threshold_px.is_nan() || self.fb_threshold_px <= 0.0 {
            return Err(SettingsError::FbThreshold(self.fb_threshold_px));
        }
        if !(self.min_tracked_fraction > 0.0 && self.min_tracked_fraction <= 1.0) {
            return Err(SettingsError::MinTrackedFraction(self.min_tracked_fraction));
        }
        if self.confidence_half_life_s.is_nan() || self.confidence_half_life_s <= 0.0 {
            return Err(SettingsError::HalfLife(self.confidence_half_life_s));
        }
        if self.max_working_side < crate::MIN_WORKING_SIDE {
            return Err(FrameError::WorkingSideTooSmall(self.max_working_side).into());
        }
        Ok(())
    }

    /// The side of the square point grid.
    fn grid_side(&self) -> usize {
        ((self.points_per_box as f64).sqrt().round() as usize).max(2)
    }
}

/// Why a frame was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Frame indices must increase: the ring is in display order.
    #[error("frame {given} is not after the newest frame {newest}")]
    OutOfOrder { given: u64, newest: u64 },
    /// Time must be finite and must not go back.
    #[error("time {given} s is not finite or is before the newest frame's {newest} s")]
    BadTime { given: f64, newest: f64 },
    /// The frame's size differs from the frames in the ring; call [`Tracker::reset`] when the
    /// camera changes resolution.
    #[error(
        "frame is {given:?} (source, working) but the ring holds {expected:?}: reset the tracker \
         when the camera changes resolution"
    )]
    SizeChanged {
        given: ((u32, u32), (u32, u32)),
        expected: ((u32, u32), (u32, u32)),
    },
}

/// Why a result could not be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    #[error("no frame has been pushed yet")]
    NoFrames,
    /// The result's frame has left the ring: it is too late to bring forward.
    #[error("frame {frame_index} is older than the ring (oldest {oldest}): too late to track")]
    TooOld { frame_index: u64, oldest: u64 },
    /// The frame was never pushed (a future frame, or one skipped).
    #[error("frame {frame_index} was not pushed (the ring holds {oldest}..={newest})")]
    UnknownFrame {
        frame_index: u64,
        oldest: u64,
        newest: u64,
    },
    /// A result for a newer frame is already shown; an older one would move boxes back in time.
    #[error("frame {frame_index} is older than the result already shown (frame {shown})")]
    Superseded { frame_index: u64, shown: u64 },
}

/// What [`Tracker::set_result`] did with a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Frame pairs the boxes were tracked through to reach the newest frame (0: the result was
    /// for the newest frame).
    pub frames: usize,
    /// Boxes now shown.
    pub kept: usize,
    /// Detections refused as given: non-finite, inverted, or outside the frame.
    pub rejected: usize,
    /// Detections whose track failed during catch-up.
    pub lost: usize,
}

/// A detection carried to the newest frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedBox {
    /// The detection, its box moved to the newest frame and clipped to it (source pixels).
    pub detection: Detection,
    /// `score × 0.5^(age_s / half-life)`: how much to trust the box now.
    pub confidence: f32,
    /// The frame the detector saw.
    pub result_frame: u64,
    /// Frames since the detector's frame.
    pub age_frames: u64,
    /// Seconds since the detector's frame.
    pub age_s: f64,
}

/// One box being tracked: its detection with the box unclipped, so that an object sliding
/// partly out of view keeps its size and comes back whole.
#[derive(Debug, Clone)]
struct BoxState {
    detection: Detection,
}

struct RingFrame {
    index: u64,
    t_s: f64,
    pyramid: Vec<GrayImage>,
}

/// Frame sizes shared by the whole ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    source: (u32, u32),
    working: (u32, u32),
    factor: u32,
}

impl Geometry {
    fn of(frame: &GreyFrame) -> Self {
        Self {
            source: frame.source_size(),
            working: frame.working_size(),
            factor: frame.factor(),
        }
    }
}

/// Carries the latest detections to every displayed frame.
///
/// Feed it every displayed frame with [`push_frame`](Self::push_frame) (or
/// [`push_rgb`](Self::push_rgb)) and every detection result with
/// [`set_result`](Self::set_result), naming the frame the detector saw; draw
/// [`boxes`](Self::boxes).
pub struct Tracker {
    settings: TrackerSettings,
    ring: VecDeque<RingFrame>,
    geometry: Option<Geometry>,
    states: Vec<BoxState>,
    /// The frame of the result being shown, and its time.
    shown_result: Option<(u64, f64)>,
    shown: Vec<TrackedBox>,
    work: Workspace,
}

/// Buffers reused from frame to frame.
#[derive(Default)]
struct Workspace {
    points: Vec<(f32, f32)>,
    /// `points[ranges[i].0..ranges[i].1]` belong to box `i`.
    ranges: Vec<(usize, usize)>,
    from: Vec<(f32, f32)>,
    to: Vec<(f32, f32)>,
    scratch: Vec<f32>,
}

impl Tracker {
    /// A tracker with no frames and no boxes; refuses settings it cannot work with.
    pub fn new(settings: TrackerSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(Self {
            ring: VecDeque::with_capacity(settings.ring_len),
            settings,
            geometry: None,
            states: Vec::new(),
            shown_result: None,
            shown: Vec::new(),
            work: Workspace::default(),
        })
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &TrackerSettings {
        &self.settings
    }

    /// Forgets frames and boxes, e.g. when the camera changes resolution.
    pub fn reset(&mut self) {
        self.ring.clear();
        self.geometry = None;
        self.states.clear();
        self.shown_result = None;
        self.shown.clear();
    }

    /// [`push_frame`](Self::push_frame) for an RGB frame, shrunk to the working side.
    pub fn push_rgb(
        &mut self,
        frame_index: u64,
        t_s: f64,
        image: RgbImageRef<'_>,
    ) -> Result<&[TrackedBox], PushError> {
        let frame = GreyFrame::from_rgb(image, self.settings.max_working_side)?;
        self.push_frame(frame_index, t_s, &frame)
    }

    /// Takes the newly displayed frame (`frame_index` increasing, `t_s` its capture time in
    /// seconds from any origin), moves the boxes onto it and returns them.
    pub fn push_frame(
        &mut self,
        frame_index: u64,
        t_s: f64,
        frame: &GreyFrame,
    ) -> Result<&[TrackedBox], PushError> {
        let geometry = Geometry::of(frame);
        if let Some(newest) = self.ring.back() {
            if frame_index <= newest.index {
                return Err(PushError::OutOfOrder {
                    given: frame_index,
                    newest: newest.index,
                });
            }
            if !t_s.is_finite() || t_s < newest.t_s {
                return Err(PushError::BadTime {
                    given: t_s,
                    newest: newest.t_s,
                });
            }
        } else if !t_s.is_finite() {
            return Err(PushError::BadTime {
                given: t_s,
                newest: f64::NAN,
            });
        }
        if let Some(expected) = self.geometry {
            if expected != geometry {
                return Err(PushError::SizeChanged {
                    given: (geometry.source, geometry.working),
                    expected: (expected.source, expected.working),
                });
            }
        }
        self.geometry = Some(geometry);

        // Reuse the evicted frame's pyramid buffers: no allocation once the ring is full.
        let mut pyramid = if self.ring.len() >= self.settings.ring_len {
            self.ring
                .pop_front()
                .map(|old| old.pyramid)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        build_pyramid_into(&frame.image, self.settings.pyramid_levels, &mut pyramid);
        let new = RingFrame {
            index: frame_index,
            t_s,
            pyramid,
        };
        if let Some(previous) = self.ring.back() {
            if !self.states.is_empty() {
                track_boxes(
                    &self.settings,
                    geometry,
                    &previous.pyramid,
                    &new.pyramid,
                    &mut self.states,
                    &mut self.work,
                );
            }
        }
        self.ring.push_back(new);
        self.refresh_shown();
        Ok(&self.shown)
    }

    /// Where frame `frame_index` is in the ring, or why a result for it cannot be tracked.
    fn position(&self, frame_index: u64) -> Result<usize, ResultError> {
        let (oldest, newest) = match (self.ring.front(), self.ring.back()) {
            (Some(oldest), Some(newest)) => (oldest.index, newest.index),
            _ => return Err(ResultError::NoFrames),
        };
        if frame_index < oldest {
            return Err(ResultError::TooOld {
                frame_index,
                oldest,
            });
        }
        self.ring
            .binary_search_by_key(&frame_index, |frame| frame.index)
            .map_err(|_| ResultError::UnknownFrame {
                frame_index,
                oldest,
                newest,
            })
    }

    /// Shows the detections a detector made on frame `frame_index`, brought forward through the
    /// ring to the newest frame. They replace the boxes shown, unless those come from a newer
    /// frame.
    pub fn set_result(
        &mut self,
        frame_index: u64,
        detections: &[Detection],
    ) -> Result<CatchUp, ResultError> {
        let position = self.position(frame_index)?;
        if let Some((shown, _)) = self.shown_result {
            if frame_index < shown {
                return Err(ResultError::Superseded { frame_index, shown });
            }
        }
        let Some(geometry) = self.geometry else {
            return Err(ResultError::NoFrames);
        };

        let mut states = admitted(detections, geometry);
        let accepted = states.len();
        for pair in position..self.ring.len() - 1 {
            if states.is_empty() {
                break;
            }
            let (from, to) = (&self.ring[pair].pyramid, &self.ring[pair + 1].pyramid);
            track_boxes(
                &self.settings,
                geometry,
                from,
                to,
                &mut states,
                &mut self.work,
            );
        }
        let kept = states.len();
        self.states = states;
        self.shown_result = Some((frame_index, self.ring[position].t_s));
        self.refresh_shown();
        Ok(CatchUp {
            frames: self.ring.len() - 1 - position,
            kept,
            rejected: detections.len() - accepted,
            lost: accepted - kept,
        })
    }

    /// Tracks the detections a detector made on frame `frame_index` through the ring, frame by
    /// frame, calling `visit(index, boxes)` on each ring frame from `frame_index` on, at most
    /// `frames` pairs past it: the boxes as [`set_result`](Self::set_result) would show them
    /// had that frame been the newest (clipped, original scores; dropped ones missing).
    ///
    /// It changes nothing the tracker shows, and takes `&self`: an offline evaluation can fill
    /// the ring once and replay many detectors' results through the same pyramids.
    pub fn replay(
        &self,
        frame_index: u64,
        detections: &[Detection],
        frames: usize,
        mut visit: impl FnMut(u64, &[Detection]),
    ) -> Result<CatchUp, ResultError> {
        let position = self.position(frame_index)?;
        let Some(geometry) = self.geometry else {
            return Err(ResultError::NoFrames);
        };
        let mut states = admitted(detections, geometry);
        let accepted = states.len();
        let (width, height) = geometry.source;
        let mut work = Workspace::default();
        let mut shown = Vec::with_capacity(states.len());
        let last = (position + frames).min(self.ring.len() - 1);
        for at in position..=last {
            if at > position && !states.is_empty() {
                let (from, to) = (&self.ring[at - 1].pyramid, &self.ring[at].pyramid);
                track_boxes(&self.settings, geometry, from, to, &mut states, &mut work);
            }
            shown.clear();
            shown.extend(states.iter().map(|state| {
                let mut detection = state.detection.clone();
                detection.bbox = detection.bbox.clipped(width, height);
                detection
            }));
            visit(self.ring[at].index, &shown);
        }
        Ok(CatchUp {
            frames: last - position,
            kept: states.len(),
            rejected: detections.len() - accepted,
            lost: accepted - states.len(),
        })
    }

    /// The boxes on the newest frame, with their confidence and age.
    pub fn boxes(&self) -> &[TrackedBox] {
        &self.shown
    }

    /// Index of the newest frame pushed.
    pub fn newest_frame(&self) -> Option<u64> {
        self.ring.back().map(|frame| frame.index)
    }

    fn refresh_shown(&mut self) {
        self.shown.clear();
        let (Some((result_frame, result_t)), Some(newest), Some(geometry)) =
            (self.shown_result, self.ring.back(), self.geometry)
        else {
            return;
        };
        let age_frames = newest.index.saturating_sub(result_frame);
        let age_s = (newest.t_s - result_t).max(0.0);
        let decay = 0.5f64.powf(age_s / self.settings.confidence_half_life_s) as f32;
        let (width, height) = geometry.source;
        self.shown.extend(self.states.iter().map(|state| {
            let mut detection = state.detection.clone();
            detection.bbox = detection.bbox.clipped(width, height);
            TrackedBox {
                confidence: detection.score * decay,
                detection,
                result_frame,
                age_frames,
                age_s,
            }
        }));
    }
}

/// A peer's detection made safe: `None` for a box that is not finite, is inverted, or has no
/// area inside the frame; otherwise clipped to the frame, with its score clamped to [0, 1].
fn sanitize(detection: &Detection, geometry: Geometry) -> Option<Detection> {
    let b = detection.bbox;
    let finite = [b.x1, b.y1, b.x2, b.y2, detection.score]
        .iter()
        .all(|v| v.is_finite());
    if !finite || b.x2 <= b.x1 || b.y2 <= b.y1 {
        return None;
    }
    let (width, height) = geometry.source;
    let clipped = b.clipped(width, height);
    // Less than a working pixel across is nothing the flow can follow.
    let min_side = geometry.factor as f32;
    if clipped.width() < min_side || clipped.height() < min_side {
        return None;
    }
    let mut detection = detection.clone();
    detection.bbox = clipped;
    detection.score = detection.score.clamp(0.0, 1.0);
    Some(detection)
}

/// The least part of a box (inside its grid inset) that must lie in the trackable part of the
/// frame for the box to be tracked on.
const MIN_TRACKABLE_FRACTION: f32 = 0.25;

/// Moves every box from frame `from` to frame `to` (pyramids), dropping those whose track
/// fails. All boxes' points go through one LK call.
fn track_boxes(
    settings: &TrackerSettings,
    geometry: Geometry,
    from: &[GrayImage],
    to: &[GrayImage],
    states: &mut Vec<BoxState>,
    work: &mut Workspace,
) {
    let factor = geometry.factor as f32;
    let (working_width, working_height) = (geometry.working.0 as f32, geometry.working.1 as f32);
    // Points closer to the edge than half a window (plus a pixel for bilinear sampling) fail
    // in LK anyway, so the grid covers the box's part inside that margin.
    let half_window = (settings.window_size / 2) as f32;
    let margin = half_window + 1.0;
    let grid = settings.grid_side();

    work.points.clear();
    work.ranges.clear();
    for state in states.iter() {
        let b = state.detection.bbox;
        // Working-pixel coordinates with pixel centres on integers, as optical-flow-lk has them.
        let (bx1, by1) = (b.x1 / factor - 0.5, b.y1 / factor - 0.5);
        let (bx2, by2) = (b.x2 / factor - 0.5, b.y2 / factor - 0.5);
        // Keep the points' windows mostly on the object: its edges mix in the background,
        // which moves differently.
        let inset_x = ((bx2 - bx1) * 0.2).min(half_window);
        let inset_y = ((by2 - by1) * 0.2).min(half_window);
        let x1 = (bx1 + inset_x).max(margin);
        let y1 = (by1 + inset_y).max(margin);
        let x2 = (bx2 - inset_x).min(working_width - 1.0 - margin);
        let y2 = (by2 - inset_y).min(working_height - 1.0 - margin);
        let trackable = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let inner = (bx2 - bx1 - 2.0 * inset_x) * (by2 - by1 - 2.0 * inset_y);
        let start = work.points.len();
        // A box mostly outside the trackable part of the frame is leaving it: what is left is a
        // sliver at the border whose points would follow the background instead.
        if trackable > 0.0 && trackable >= MIN_TRACKABLE_FRACTION * inner {
            for row in 0..grid {
                let y = y1 + (y2 - y1) * (row as f32 + 0.5) / grid as f32;
                for column in 0..grid {
                    let x = x1 + (x2 - x1) * (column as f32 + 0.5) / grid as f32;
                    work.points.push((x, y));
                }
            }
        }
        work.ranges.push((start, work.points.len()));
    }
    if work.points.is_empty() {
        states.clear();
        return;
    }

    let params = TrackParams {
        window_size: settings.window_size,
        max_iterations: settings.max_iterations,
        min_eigen_threshold: DEFAULT_MIN_EIGEN_THRESHOLD,
    };
    let results = calc_optical_flow_fb(
        from,
        to,
        &work.points,
        None,
        params,
        settings.fb_threshold_px,
    );

    let (source_width, source_height) = (geometry.source.0 as f32, geometry.source.1 as f32);
    let mut index = 0;
    states.retain_mut(|state| {
        let (start, end) = work.ranges[index];
        index += 1;
        if start == end {
            return false;
        }
        work.from.clear();
        work.to.clear();
        for (point, result) in work.points[start..end].iter().zip(&results[start..end]) {
            if result.status == TrackStatus::Tracked && result.pos.0.is_finite() {
                work.from.push(*point);
                work.to.push(result.pos);
            }
        }
        let needed = ((end - start) as f32 * settings.min_tracked_fraction).ceil() as usize;
        if work.from.len() < needed.max(2) {
            return false;
        }
        let Some(motion) = median_flow(&work.from, &work.to, &mut work.scratch) else {
            return false;
        };
        // A box does not halve or double between two displayed frames: that is a failed track.
        if !(0.5..=2.0).contains(&motion.scale) {
            return false;
        }
        let b = state.detection.bbox;
        let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
        let moved = BBox::from_center(
            cx + motion.dx * factor,
            cy + motion.dy * factor,
            b.width() * motion.scale,
            b.height() * motion.scale,
        );
        let visible = moved.clipped(geometry.source.0, geometry.source.1);
        let on_screen = visible.width() >= factor && visible.height() >= factor;
        let sane = moved.x1.is_finite()
            && moved.y1.is_finite()
            && moved.x2.is_finite()
            && moved.y2.is_finite()
            && moved.x2 > -source_width
            && moved.x1 < 2.0 * source_width
            && moved.y2 > -source_height
            && moved.y1 < 2.0 * source_height;
        if !(on_screen && sane) {
            return false;
        }
        state.detection.bbox = moved;
        true
    });
}

/// The boxes of a result that can be tracked (see `sanitize`), as tracking states.
fn admitted(detections: &[Detection], geometry: Geometry) -> Vec<BoxState> {
    detections
        .iter()
        .filter_map(|detection| sanitize(detection, geometry))
        .map(|detection| BoxState { detection })
        .collect()
}
