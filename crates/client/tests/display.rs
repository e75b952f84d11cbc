//! The displayed frames: every camera frame on the display grid gets one record with the
//! latest result's boxes — carried by the tracker (on) or as found (off) — and `--annotate`'s
//! video holds them all. Real yolov3-tiny on real vtest frames, offline pace, a few seconds of
//! video; no timing assertions.

mod common;

use deepoffload_client::annotate::{draw_displayed, Annotator};
use deepoffload_client::{DisplayRecord, FrameRecord, LocalDetectors, Pace, RunOptions};
use deepoffload_core::{BBox, Placement, RgbImageRef, Tracking};
use deepoffload_detect::{DetectError, DetectOutput, Detector, DetectorInfo};
use deepoffload_video::{Sampler, VideoSource};
use std::collections::HashMap;
use std::time::Duration;

const SECONDS: f64 = 3.0;

/// Indices of vtest's frames in the first `SECONDS` on the display grid at `fps` (`None`:
/// every frame).
fn grid(fps: Option<f64>) -> Vec<u64> {
    let store = deepoffload_assets::Store::from_env();
    let mut source =
        deepoffload_video::open(&common::vtest(), &store, &Default::default()).unwrap();
    let mut sampler = fps.map(Sampler::new);
    let mut first = None;
    let mut kept = Vec::new();
    while let Some(frame) = source.next_frame().unwrap() {
        let first = *first.get_or_insert(frame.pts);
        if frame.pts.saturating_sub(first) >= Duration::from_secs_f64(SECONDS) {
            break;
        }
        if sampler.as_mut().is_none_or(|s| s.keep(frame.pts)) {
            kept.push(frame.index);
        }
    }
    kept
}

fn options(track: Tracking, display_fps: Option<f64>) -> RunOptions {
    RunOptions {
        placement: Placement::Local,
        fps: Some(2.0),
        pace: Pace::Fast,
        max_duration: Some(Duration::from_secs_f64(SECONDS)),
        track,
        display_fps,
        ..RunOptions::default()
    }
}

struct Outcome {
    records: Vec<FrameRecord>,
    displayed: Vec<DisplayRecord>,
    summary: deepoffload_client::RunSummary,
}

async fn run(
    detector: Box<dyn Detector>,
    options: &RunOptions,
    mut also: impl FnMut(&DisplayRecord, RgbImageRef<'_>) + Send,
) -> Outcome {
    let store = deepoffload_assets::Store::from_env();
    let source: Box<dyn VideoSource> =
        deepoffload_video::open(&common::vtest(), &store, &Default::default()).unwrap();
    let (mut records, mut displayed) = (Vec::new(), Vec::new());
    let summary = deepoffload_client::run_displayed(
        source,
        LocalDetectors(vec![detector]),
        None,
        options,
        |r| records.push(r.clone()),
        |d, frame| {
            also(d, frame);
            displayed.push(d.clone());
        },
    )
    .await
    .unwrap();
    Outcome {
        records,
        displayed,
        summary,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grid_frame_is_displayed_with_tracking_on_and_off() {
    let _turn = common::HEAVY.lock().await;
    for (track, display_fps) in [(Tracking::On, None), (Tracking::Off, Some(5.0))] {
        let expected = grid(display_fps);
        let out = run(
            common::detector("yolov3-tiny", 416, 1),
            &options(track, display_fps),
            |_, _| {},
        )
        .await;
        let indices: Vec<u64> = out.displayed.iter().map(|d| d.index).collect();
        assert_eq!(
            indices, expected,
            "tracking {track}: one record per grid frame"
        );
        assert_eq!(out.summary.display.displayed_frames, expected.len() as u64);
        assert_eq!(out.summary.display.track, track);
        assert!(!out.records.is_empty());
        let by_frame: HashMap<u64, &FrameRecord> =
            out.records.iter().map(|r| (r.index, r)).collect();
        let mut carried = 0;
        let mut moved = 0;
        for d in &out.displayed {
            assert_eq!(d.track, track);
            assert!(d.tracker_ms >= 0.0);
            let Some(result) = &d.result else {
                assert!(
                    d.boxes.is_empty(),
                    "frame {}: boxes before any result",
                    d.index
                );
                continue;
            };
            assert!(
                result.age_s >= 0.0,
                "frame {}: age {}",
                d.index,
                result.age_s
            );
            assert!(result.frame <= d.index);
            assert_eq!(result.origin, "local");
            assert_eq!(result.model, "yolov3-tiny");
            let found = &by_frame[&result.frame].detections;
            if result.frame < d.index && !d.boxes.is_empty() {
                carried += 1;
            }
            match track {
                Tracking::Off => {
                    assert!(!d.tracked);
                    let boxes: Vec<BBox> = d.boxes.iter().map(|b| b.detection.bbox).collect();
                    let as_found: Vec<BBox> = found.iter().map(|f| f.bbox).collect();
                    assert_eq!(boxes, as_found, "frame {}: shown as found", d.index);
                }
                Tracking::On => {
                    assert!(d.tracked, "frame {}: {:?}", d.index, d.tracker_error);
                    assert!(d.boxes.len() <= found.len());
                    for b in &d.boxes {
                        assert!(b.confidence <= b.detection.score + 1e-6);
                        let (x, y) = (b.detection.bbox.x1, b.detection.bbox.y1);
                        assert!(x >= 0.0 && y >= 0.0 && b.detection.bbox.x2 <= 768.0);
                    }
                    let same = d.boxes.iter().all(|b| {
                        found
                            .iter()
                            .any(|f| f.bbox.clipped(768, 576) == b.detection.bbox)
                    });
                    if result.frame < d.index && !d.boxes.is_empty() && !same {
                        moved += 1;
                    }
                }
            }
        }
        assert!(
            carried > 0,
            "tracking {track}: no frame showed an older result"
        );
        if track == Tracking::On {
            assert!(moved > 0, "the tracker moved no box");
            let s = &out.summary.display;
            assert!(s.tracker_ms_mean.is_some() && s.catch_ups > 0, "{s:?}");
            assert!(s.age_ms_mean.is_some_and(|a| a > 0.0));
            eprintln!(
                "tracker ms per displayed frame: mean {:.2} p95 {:.2}; catch-up mean {:.2} over {:.1} frames",
                s.tracker_ms_mean.unwrap(),
                s.tracker_ms_p95.unwrap(),
                s.catch_up_ms_mean.unwrap(),
                s.catch_up_frames_mean.unwrap()
            );
        } else {
            assert!(out.summary.display.tracker_ms_mean.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_video_has_every_displayed_frame() {
    let _turn = common::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("annotated.mp4");
    let mut annotator = Annotator::start(&path, 768, 576, 10.0).unwrap();
    let out = run(
        common::detector("yolov3-tiny", 416, 1),
        &options(Tracking::On, None),
        |d, frame| annotator.push(d, frame),
    )
    .await;
    let written = annotator.finish().unwrap();
    assert_eq!(written, out.displayed.len() as u64);
    let store = deepoffload_assets::Store::from_env();
    let mut video = deepoffload_video::open(&path, &store, &Default::default()).unwrap();
    let info = video.info().clone();
    assert_eq!((info.width, info.height), (768, 576));
    assert_eq!(info.frames, Some(written));
    let mut read = 0;
    while let Some(frame) = video.next_frame().unwrap() {
        assert_eq!((frame.image.width(), frame.image.height()), (768, 576));
        read += 1;
    }
    assert_eq!(read, written);
}

/// The real detector, its boxes turned into what a broken peer might send: NaN, inverted,
/// far outside the frame, infinite.
struct Garbling {
    inner: Box<dyn Detector>,
}

impl Detector for Garbling {
    fn info(&self) -> &DetectorInfo {
        self.inner.info()
    }

    fn detect(&mut self, image: RgbImageRef<'_>) -> Result<DetectOutput, DetectError> {
        let mut out = self.inner.detect(image)?;
        let template = out.detections.first().cloned();
        for (k, d) in out.detections.iter_mut().enumerate() {
            d.bbox = match k % 4 {
                0 => BBox {
                    x1: f32::NAN,
                    ..d.bbox
                },
                1 => BBox {
                    x1: d.bbox.x2,
                    x2: d.bbox.x1,
                    ..d.bbox
                },
                2 => BBox {
                    x1: 5000.0,
                    y1: 5000.0,
                    x2: 6000.0,
                    y2: 6000.0,
                },
                _ => BBox {
                    x2: f32::INFINITY,
                    ..d.bbox
                },
            };
        }
        if let Some(mut d) = template {
            d.score = f32::NAN;
            out.detections.push(d);
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_boxes_do_not_break_the_display() {
    let _turn = common::HEAVY.lock().await;
    for track in [Tracking::On, Tracking::Off] {
        let detector = Box::new(Garbling {
            inner: common::detector("yolov3-tiny", 416, 1),
        });
        let mut drawn = 0;
        let out = run(detector, &options(track, None), |d, frame| {
            // The drawing clips what it can and skips the rest.
            let img = draw_displayed(d, frame);
            assert_eq!(img.dimensions(), (768, 576));
            drawn += 1;
        })
        .await;
        assert_eq!(out.displayed.len(), grid(None).len());
        assert_eq!(drawn, out.displayed.len());
        if track == Tracking::On {
            // The tracker refuses every garbled box.
            for d in &out.displayed {
                for b in &d.boxes {
                    let bb = b.detection.bbox;
                    assert!(bb.x1.is_finite() && bb.x2.is_finite() && bb.x2 > bb.x1);
                    assert!(bb.x2 <= 768.0 && bb.y2 <= 576.0);
                }
            }
        }
    }
}
