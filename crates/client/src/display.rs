//! What the user sees: every camera frame on the display grid, with the boxes of the latest
//! result — carried to it by the on-device tracker (`deepoffload-track`) when tracking is on,
//! or where the detector found them when it is off.
//!
//! The tracker runs on the driver task, synchronously: about 1 ms per 640x480 frame (grey
//! conversion at a 320 px working size, a 3-level pyramid, LK on 25 points per box), and a
//! catch-up a few ms; the time is measured on every displayed frame and reported, so a stall
//! would show. Camera frames come every 33–40 ms, so the pipeline's timers keep their
//! resolution.

use crate::record::{DisplayBox, DisplayRecord, DisplaySummary, DisplayedResult};
use deepoffload_core::{quantile, Config, Detection, RgbImageRef, Tracking};
use deepoffload_pipeline::{Origin, Shown};
use deepoffload_track::{ResultError, Tracker, TrackerSettings};
use deepoffload_video::Sampler;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The display grid, the tracker and the latest result.
pub(crate) struct Display {
    track: Tracking,
    fps: f64,
    /// `None`: every camera frame is displayed (the display rate is the source's).
    sampler: Option<Sampler>,
    /// `None` with tracking off, or once the tracker refused the camera's frames.
    tracker: Option<Tracker>,
    /// Why the tracker was given up, if it was.
    tracker_failed: Option<String>,
    /// The latest result shown, and its boxes as found.
    result: Option<DisplayedResult>,
    untracked: Vec<Detection>,
    /// Whether the tracker holds the latest result (else its boxes are shown as found: it
    /// came for a frame the tracker could not bring forward).
    tracked: bool,
    /// Tracker time since the last display record (catch-ups, frames pushed off the grid).
    owed_ms: f64,
    /// Newest frame index seen, so the grid sees frames once.
    last_index: Option<u64>,
    // Figures for the summary.
    frames: u64,
    frame_ms: Vec<f64>,
    catch_up_ms: Vec<f64>,
    catch_up_frames: Vec<f64>,
    ages_s: Vec<f64>,
    result_errors: u64,
    total_ms: f64,
}

impl Display {
    /// `display_fps`: the display rate (`None`, or one at or above the source's: every frame).
    /// `max_latency_s`: the latest a result may come after its frame (deadline, then a local
    /// fallback), so the tracker's ring holds enough frames to bring it forward.
    pub(crate) fn new(
        track: Tracking,
        display_fps: Option<f64>,
        source_fps: f64,
        max_latency_s: f64,
    ) -> Self {
        let fps = match display_fps {
            Some(f) if source_fps > 0.0 => f.min(source_fps),
            Some(f) => f,
            None if source_fps > 0.0 => source_fps,
            None => 30.0,
        };
        let sampler = display_fps
            .filter(|f| source_fps <= 0.0 || *f < source_fps)
            .map(Sampler::new);
        let (tracker, tracker_failed) = match track {
            Tracking::Off => (None, None),
            Tracking::On => {
                let ring_len = ((fps * max_latency_s).ceil() as usize).clamp(32, 256);
                match Tracker::new(TrackerSettings {
                    ring_len,
                    ..TrackerSettings::default()
                }) {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(format!("tracker settings: {e}"))),
                }
            }
        };
        Self {
            track,
            fps,
            sampler,
            tracker,
            tracker_failed,
            result: None,
            untracked: Vec::new(),
            tracked: false,
            owed_ms: 0.0,
            last_index: None,
            frames: 0,
            frame_ms: Vec::new(),
            catch_up_ms: Vec::new(),
            catch_up_frames: Vec::new(),
            ages_s: Vec::new(),
            result_errors: 0,
            total_ms: 0.0,
        }
    }

    /// A camera frame: a display record when it lies on the display grid.
    pub(crate) fn frame(
        &mut self,
        index: u64,
        pts_s: f64,
        shown_s: f64,
        image: RgbImageRef<'_>,
    ) -> Option<DisplayRecord> {
        if self.last_index.is_some_and(|last| index <= last) {
            return None;
        }
        self.last_index = Some(index);
        if let Some(sampler) = &mut self.sampler {
            if !sampler.keep(Duration::from_secs_f64(pts_s.max(0.0))) {
                return None;
            }
        }
        let start = Instant::now();
        self.push(index, pts_s, image);
        let frame_ms = ms(start.elapsed()) + std::mem::take(&mut self.owed_ms);
        let boxes: Vec<DisplayBox> = match (&self.tracker, self.tracked) {
            (Some(tracker), true) => tracker
                .boxes()
                .iter()
                .map(|b| DisplayBox {
                    detection: b.detection.clone(),
                    confidence: b.confidence,
                })
                .collect(),
            _ => self
                .untracked
                .iter()
                .map(|d| DisplayBox {
                    detection: d.clone(),
                    confidence: d.score,
                })
                .collect(),
        };
        let result = self.result.clone().map(|mut r| {
            r.age_s = (pts_s - r.pts_s).max(0.0);
            r
        });
        if let Some(r) = &result {
            self.ages_s.push(r.age_s);
        }
        self.frames += 1;
        if self.track == Tracking::On {
            self.frame_ms.push(frame_ms);
        }
        Some(DisplayRecord {
            index,
            pts_s,
            shown_s,
            track: self.track,
            tracked: self.tracker.is_some() && self.tracked,
            result,
            boxes,
            tracker_ms: frame_ms,
            tracker_error: self.tracker_failed.clone(),
        })
    }

    /// A frame the pipeline took for analysis: the tracker needs it in its ring to bring the
    /// result forward, also when it is not on the display grid.
    pub(crate) fn analysed(&mut self, index: u64, pts_s: f64, image: RgbImageRef<'_>) {
        let Some(tracker) = &self.tracker else {
            return;
        };
        if tracker.newest_frame().is_some_and(|newest| newest >= index) {
            return;
        }
        let start = Instant::now();
        self.push(index, pts_s, image);
        self.owed_ms += ms(start.elapsed());
    }

    fn push(&mut self, index: u64, pts_s: f64, image: RgbImageRef<'_>) {
        let Some(tracker) = &mut self.tracker else {
            return;
        };
        if tracker.newest_frame().is_some_and(|newest| newest >= index) {
            return;
        }
        let start = Instant::now();
        if let Err(e) = tracker.push_rgb(index, pts_s, image) {
            // Frames the tracker cannot take (too small to track, a changed size): the boxes are
            // shown as found from now on.
            tracing::warn!("tracking off for the rest of the run: frame {index}: {e}");
            self.tracker_failed = Some(format!("frame {index}: {e}"));
            self.tracker = None;
            self.tracked = false;
        }
        self.total_ms += ms(start.elapsed());
    }

    /// A result reached the screen: the tracker brings it forward from its frame to the
    /// newest displayed one. A frame the encoder skipped (its repeated result) or one nothing
    /// could analyse changes nothing on screen.
    pub(crate) fn show(&mut self, shown: &Shown, config: &Config) {
        if matches!(shown.origin, Origin::Repeated | Origin::Nothing) {
            return;
        }
        let origin = match shown.origin {
            Origin::Local { .. } if shown.stand_in_ms.is_some() => "stand-in",
            Origin::Local { .. } => "local",
            _ => "remote",
        };
        self.result = Some(DisplayedResult {
            frame: shown.frame,
            pts_s: shown.pts_s,
            age_s: 0.0,
            placement: shown.placement(),
            origin: origin.into(),
            model: config.model.clone(),
            input_size: config.input_size,
            latency_ms: shown.latency.total_ms,
        });
        self.untracked = shown.detections.clone();
        let Some(tracker) = &mut self.tracker else {
            return;
        };
        let start = Instant::now();
        let outcome = tracker.set_result(shown.frame, &shown.detections);
        let spent = ms(start.elapsed());
        self.total_ms += spent;
        self.owed_ms += spent;
        match outcome {
            Ok(catch_up) => {
                self.tracked = true;
                self.catch_up_ms.push(spent);
                self.catch_up_frames.push(catch_up.frames as f64);
            }
            Err(ResultError::Superseded { .. }) => {}
            Err(e) => {
                // Too late for the ring, or a frame it never saw: shown as found.
                tracing::debug!("result of frame {}: {e}; shown untracked", shown.frame);
                self.result_errors += 1;
                self.tracked = false;
            }
        }
    }

    pub(crate) fn summary(&self) -> DisplaySummary {
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        DisplaySummary {
            track: self.track,
            display_fps: self.fps,
            displayed_frames: self.frames,
            tracker_ms_mean: mean(&self.frame_ms),
            tracker_ms_p95: quantile(&self.frame_ms, 0.95),
            catch_ups: self.catch_up_ms.len() as u64,
            catch_up_ms_mean: mean(&self.catch_up_ms),
            catch_up_ms_p95: quantile(&self.catch_up_ms, 0.95),
            catch_up_frames_mean: mean(&self.catch_up_frames),
            age_ms_mean: mean(&self.ages_s).map(|s| s * 1e3),
            tracker_ms_total: self.total_ms,
            untracked_results: self.result_errors,
            tracker_error: self.tracker_failed.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepoffload_core::{BBox, LatencyBreakdown, Placement, RgbBuffer};

    /// A textured frame (a checkerboard of 8 px cells) whose pattern is shifted by `shift` px.
    fn frame(width: u32, height: u32, shift: u32) -> RgbBuffer {
        let mut img = RgbBuffer::new(width, height).unwrap();
        for (i, px) in img.data_mut().chunks_mut(3).enumerate() {
            let (x, y) = (i as u32 % width + shift, i as u32 / width);
            let v = if (x / 8 + y / 8) % 2 == 0 { 40 } else { 210 };
            px.copy_from_slice(&[v, v, v]);
        }
        img
    }

    fn config() -> Config {
        Config {
            placement: Placement::Local,
            model: "yolov3-tiny".into(),
            input_size: 416,
            width: 320,
            height: 240,
            fps: 10.0,
            bitrate_bps: 0,
        }
    }

    fn shown(frame: u64, boxes: Vec<BBox>) -> Shown {
        Shown {
            frame,
            pts_s: frame as f64 / 10.0,
            capture_s: frame as f64 / 10.0,
            start_s: 0.0,
            shown_s: 0.0,
            config: 0,
            origin: Origin::Local { detector: 0 },
            fallback: None,
            stand_in_ms: None,
            detections: boxes
                .into_iter()
                .map(|bbox| Detection {
                    class_id: 0,
                    class_name: "person".into(),
                    score: 0.9,
                    objectness: 0.9,
                    bbox,
                })
                .collect(),
            latency: LatencyBreakdown::default(),
            bytes_up: 0,
            bytes_down: 0,
            server_batch: None,
        }
    }

    fn good() -> BBox {
        BBox {
            x1: 100.0,
            y1: 80.0,
            x2: 180.0,
            y2: 160.0,
        }
    }

    #[test]
    fn a_result_older_than_the_ring_is_shown_as_found() {
        let mut display = Display::new(Tracking::On, None, 10.0, 1.0);
        for k in 0..40 {
            let img = frame(320, 240, k as u32);
            let d = display.frame(k, k as f64 / 10.0, 0.0, img.view()).unwrap();
            assert!(d.boxes.is_empty());
        }
        // Frame 0 has left the 32-frame ring.
        display.show(&shown(0, vec![good()]), &config());
        let img = frame(320, 240, 40);
        let d = display.frame(40, 4.0, 0.0, img.view()).unwrap();
        assert!(!d.tracked);
        assert_eq!(d.boxes.len(), 1);
        assert_eq!(d.boxes[0].detection.bbox, good());
        assert!((d.result.as_ref().unwrap().age_s - 4.0).abs() < 1e-9);
        assert_eq!(display.summary().untracked_results, 1);
        // A result the ring holds is tracked again.
        display.show(&shown(39, vec![good()]), &config());
        let img = frame(320, 240, 41);
        let d = display.frame(41, 4.1, 0.0, img.view()).unwrap();
        assert!(d.tracked);
        assert_eq!(display.summary().catch_ups, 1);
    }

    #[test]
    fn bad_boxes_and_tiny_frames_do_not_panic() {
        let nan = BBox {
            x1: f32::NAN,
            ..good()
        };
        let outside = BBox {
            x1: -500.0,
            y1: -500.0,
            x2: -400.0,
            y2: -400.0,
        };
        let mut display = Display::new(Tracking::On, None, 10.0, 1.0);
        for k in 0..3 {
            let img = frame(320, 240, k as u32);
            display.frame(k, k as f64 / 10.0, 0.0, img.view());
        }
        display.show(&shown(1, vec![nan, outside, good()]), &config());
        let img = frame(320, 240, 3);
        let d = display.frame(3, 0.3, 0.0, img.view()).unwrap();
        assert!(d.tracked);
        assert_eq!(
            d.boxes.len(),
            1,
            "only the sane box is tracked: {:?}",
            d.boxes
        );

        // Frames too small to track: tracking stops with a reason, boxes are shown as found.
        let mut display = Display::new(Tracking::On, None, 10.0, 1.0);
        let tiny = frame(8, 8, 0);
        let d = display.frame(0, 0.0, 0.0, tiny.view()).unwrap();
        assert!(d.tracker_error.is_some());
        display.show(&shown(0, vec![nan]), &config());
        let d = display.frame(1, 0.1, 0.0, tiny.view()).unwrap();
        assert!(!d.tracked);
        assert_eq!(d.boxes.len(), 1);
        assert!(display.summary().tracker_error.is_some());
    }

    #[test]
    fn the_display_grid_keeps_the_frames_on_it() {
        let mut display = Display::new(Tracking::Off, Some(4.0), 10.0, 1.0);
        let img = frame(64, 48, 0);
        let kept: Vec<u64> = (0..10)
            .filter(|&k| display.frame(k, k as f64 / 10.0, 0.0, img.view()).is_some())
            .collect();
        assert_eq!(kept, vec![0, 3, 5, 8]);
        assert_eq!(display.summary().displayed_frames, 4);
        assert!((display.summary().display_fps - 4.0).abs() < 1e-12);
    }
}
