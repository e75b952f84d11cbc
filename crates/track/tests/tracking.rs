//! The tracker against synthetic sequences with known motion: a textured box moving over a
//! moving textured background must be recovered within 1 source pixel.

mod support;

use deepoffload_core::{BBox, RgbImageRef};
use deepoffload_track::{ResultError, Tracker, TrackerSettings};
use support::{corner_error, detection, render, Object, Placement, Texture};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

struct Scene {
    background: Texture,
    object: Object,
}

impl Scene {
    fn new() -> Self {
        Self {
            background: Texture::new(1, 5.0),
            object: Object {
                texture: Texture::new(2, 5.0),
                width: 120.0,
                height: 90.0,
            },
        }
    }

    fn frame(&self, at: Placement, background_shift: (f32, f32)) -> Vec<u8> {
        self.frame_at(WIDTH, HEIGHT, at, background_shift)
    }

    fn frame_at(
        &self,
        width: u32,
        height: u32,
        at: Placement,
        background_shift: (f32, f32),
    ) -> Vec<u8> {
        render(
            width,
            height,
            &self.background,
            background_shift,
            &[(&self.object, at)],
        )
    }
}

/// Plays `frames` frames where the object is at `path(i)` and the background shifted by
/// `(-0.8 i, 0.5 i)`; the detector's result (the true box) is for frame 0, given at once.
/// Returns the worst corner error over the frames.
fn follow(path: impl Fn(usize) -> Placement, frames: usize) -> f32 {
    follow_at(WIDTH, HEIGHT, Scene::new(), path, frames)
}

fn follow_at(
    width: u32,
    height: u32,
    scene: Scene,
    path: impl Fn(usize) -> Placement,
    frames: usize,
) -> f32 {
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let mut worst = 0.0f32;
    for i in 0..frames {
        let at = path(i);
        let data = scene.frame_at(width, height, at, (-0.8 * i as f32, 0.5 * i as f32));
        let image = RgbImageRef::new(width, height, &data).unwrap();
        let boxes = tracker.push_rgb(i as u64, i as f64 / 30.0, image).unwrap();
        if i == 0 {
            assert!(boxes.is_empty());
            let truth = scene.object.bbox(at);
            let catch_up = tracker.set_result(0, &[detection(truth, 0.9)]).unwrap();
            assert_eq!((catch_up.frames, catch_up.kept), (0, 1));
            continue;
        }
        assert_eq!(boxes.len(), 1, "box lost at frame {i}");
        let error = corner_error(boxes[0].detection.bbox, scene.object.bbox(at));
        worst = worst.max(error);
    }
    worst
}

#[test]
fn follows_integer_shifts() {
    let worst = follow(
        |i| Placement {
            cx: 200.0 + 3.0 * i as f32,
            cy: 240.0 - 2.0 * i as f32,
            scale: 1.0,
        },
        15,
    );
    assert!(worst < 1.0, "worst corner error {worst} px");
}

#[test]
fn follows_sub_pixel_shifts() {
    let worst = follow(
        |i| Placement {
            cx: 300.0 + 0.7 * i as f32,
            cy: 200.0 + 0.35 * i as f32,
            scale: 1.0,
        },
        15,
    );
    assert!(worst < 1.0, "worst corner error {worst} px");
}

#[test]
fn follows_scale() {
    // Approaching the camera: 1.5% larger per frame, 1.23× after 14 frames, drifting right.
    let worst = follow(
        |i| Placement {
            cx: 320.0 + 1.5 * i as f32,
            cy: 240.0,
            scale: 1.015f32.powi(i as i32),
        },
        15,
    );
    assert!(worst < 1.0, "worst corner error {worst} px");
}

#[test]
fn follows_shrinking() {
    let worst = follow(
        |i| Placement {
            cx: 320.0 - 1.2 * i as f32,
            cy: 240.0 + 0.6 * i as f32,
            scale: 0.985f32.powi(i as i32),
        },
        15,
    );
    assert!(worst < 1.0, "worst corner error {worst} px");
}

#[test]
fn follows_at_720p() {
    // Working frames are a quarter of the source here, so 1 source px is 0.25 working px.
    let scene = Scene {
        background: Texture::new(4, 8.0),
        object: Object {
            texture: Texture::new(5, 8.0),
            width: 240.0,
            height: 180.0,
        },
    };
    let worst = follow_at(
        1280,
        720,
        scene,
        |i| Placement {
            cx: 500.0 + 4.3 * i as f32,
            cy: 360.0 - 2.6 * i as f32,
            scale: 1.0,
        },
        12,
    );
    assert!(worst < 1.0, "worst corner error {worst} px");
}

/// A result for frame `newest - k` ends at the box's true position in the newest frame.
fn catch_up(k: u64, step: (f32, f32)) {
    let scene = Scene::new();
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let at = |i: u64| Placement {
        cx: 250.0 + step.0 * i as f32,
        cy: 220.0 + step.1 * i as f32,
        scale: 1.0,
    };
    let newest = 20;
    for i in 0..=newest {
        let data = scene.frame(at(i), (0.6 * i as f32, -0.4 * i as f32));
        let image = RgbImageRef::new(WIDTH, HEIGHT, &data).unwrap();
        tracker.push_rgb(i, i as f64 / 30.0, image).unwrap();
    }
    let old = newest - k;
    let result = tracker
        .set_result(old, &[detection(scene.object.bbox(at(old)), 0.8)])
        .unwrap();
    assert_eq!(result.frames, k as usize);
    assert_eq!(result.kept, 1);
    let shown = &tracker.boxes()[0];
    assert_eq!(shown.age_frames, k);
    assert!((shown.age_s - k as f64 / 30.0).abs() < 1e-9);
    let error = corner_error(shown.detection.bbox, scene.object.bbox(at(newest)));
    assert!(error < 1.0, "after catching up {k} frames: {error} px");
}

#[test]
fn catches_up_3_frames() {
    catch_up(3, (2.5, 1.25));
}

#[test]
fn catches_up_9_frames() {
    catch_up(9, (1.3, -0.9));
}

#[test]
fn catches_up_18_frames() {
    // A local result ~600 ms late at 30 fps.
    catch_up(18, (0.9, 0.6));
}

#[test]
fn result_older_than_the_ring_is_refused() {
    let scene = Scene::new();
    let settings = TrackerSettings {
        ring_len: 4,
        ..TrackerSettings::default()
    };
    let mut tracker = Tracker::new(settings).unwrap();
    let at = Placement {
        cx: 300.0,
        cy: 200.0,
        scale: 1.0,
    };
    let data = scene.frame(at, (0.0, 0.0));
    for i in 0..10 {
        let image = RgbImageRef::new(WIDTH, HEIGHT, &data).unwrap();
        tracker.push_rgb(i, i as f64 * 0.1, image).unwrap();
    }
    let truth = [detection(scene.object.bbox(at), 0.5)];
    assert_eq!(
        tracker.set_result(5, &truth),
        Err(ResultError::TooOld {
            frame_index: 5,
            oldest: 6
        })
    );
    assert!(matches!(
        tracker.set_result(11, &truth),
        Err(ResultError::UnknownFrame { .. })
    ));
    assert!(tracker.boxes().is_empty());
    // Oldest in the ring is fine; then an older result than the one shown is refused.
    assert_eq!(tracker.set_result(7, &truth).unwrap().kept, 1);
    assert_eq!(
        tracker.set_result(6, &truth),
        Err(ResultError::Superseded {
            frame_index: 6,
            shown: 7
        })
    );
    assert_eq!(tracker.set_result(9, &[]).unwrap().kept, 0);
    assert!(tracker.boxes().is_empty());
}

#[test]
fn confidence_halves_each_half_life() {
    let scene = Scene::new();
    let mut tracker = Tracker::new(TrackerSettings {
        confidence_half_life_s: 0.5,
        ..TrackerSettings::default()
    })
    .unwrap();
    let at = Placement {
        cx: 300.0,
        cy: 200.0,
        scale: 1.0,
    };
    let data = scene.frame(at, (0.0, 0.0));
    let image = RgbImageRef::new(WIDTH, HEIGHT, &data).unwrap();
    tracker.push_rgb(0, 10.0, image).unwrap();
    tracker
        .set_result(0, &[detection(scene.object.bbox(at), 0.8)])
        .unwrap();
    assert!((tracker.boxes()[0].confidence - 0.8).abs() < 1e-6);
    let boxes = tracker.push_rgb(10, 11.0, image).unwrap();
    assert_eq!(boxes[0].age_frames, 10);
    assert!((boxes[0].confidence - 0.2).abs() < 1e-6, "{boxes:?}");
}

#[test]
fn box_is_dropped_when_its_track_fails() {
    // The scene cuts to something else entirely: no point comes back under the FB check.
    let scene = Scene::new();
    let other = Scene {
        background: Texture::new(7, 5.0),
        object: Object {
            texture: Texture::new(8, 5.0),
            width: 120.0,
            height: 90.0,
        },
    };
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let at = Placement {
        cx: 300.0,
        cy: 200.0,
        scale: 1.0,
    };
    let first = scene.frame(at, (0.0, 0.0));
    tracker
        .push_rgb(0, 0.0, RgbImageRef::new(WIDTH, HEIGHT, &first).unwrap())
        .unwrap();
    tracker
        .set_result(0, &[detection(scene.object.bbox(at), 0.8)])
        .unwrap();
    let cut = other.frame(at, (0.0, 0.0));
    let boxes = tracker
        .push_rgb(1, 0.033, RgbImageRef::new(WIDTH, HEIGHT, &cut).unwrap())
        .unwrap();
    assert!(boxes.is_empty(), "{boxes:?}");
}

#[test]
fn box_leaving_the_frame_is_clipped_then_dropped() {
    let scene = Scene::new();
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let at = |i: usize| Placement {
        cx: 560.0 + 8.0 * i as f32,
        cy: 240.0,
        scale: 1.0,
    };
    let mut clipped_seen = false;
    for i in 0..40 {
        let data = scene.frame(at(i), (0.0, 0.0));
        let boxes = tracker
            .push_rgb(
                i as u64,
                i as f64 / 30.0,
                RgbImageRef::new(WIDTH, HEIGHT, &data).unwrap(),
            )
            .unwrap()
            .to_vec();
        if i == 0 {
            tracker
                .set_result(0, &[detection(scene.object.bbox(at(0)), 0.8)])
                .unwrap();
            continue;
        }
        for b in &boxes {
            let bbox: BBox = b.detection.bbox;
            assert!(bbox.x1 >= 0.0 && bbox.x2 <= WIDTH as f32, "{bbox:?}");
            clipped_seen |= bbox.x2 == WIDTH as f32;
        }
        // While a good part is visible it stays near the truth (left edge, in view).
        if let Some(b) = boxes.first() {
            let truth = scene.object.bbox(at(i));
            if truth.x1 < 600.0 {
                assert!((b.detection.bbox.x1 - truth.x1).abs() < 1.5, "frame {i}");
            }
        }
    }
    assert!(clipped_seen);
    assert!(tracker.boxes().is_empty(), "the box left the frame");
}

#[test]
fn replay_matches_live_tracking_and_shows_nothing() {
    // The same result tracked live (pushed frame by frame) and replayed through a filled ring
    // lands on the same boxes at every frame, and the replay leaves the tracker as it was.
    let scene = Scene::new();
    let at = |i: usize| Placement {
        cx: 200.0 + 2.5 * i as f32,
        cy: 240.0 - 1.5 * i as f32,
        scale: 1.0,
    };
    let mut live = Tracker::new(TrackerSettings::default()).unwrap();
    let mut ring = Tracker::new(TrackerSettings::default()).unwrap();
    let truth = detection(scene.object.bbox(at(0)), 0.9);
    let mut expected = Vec::new();
    for i in 0..10 {
        let data = scene.frame(at(i), (-0.8 * i as f32, 0.5 * i as f32));
        let image = RgbImageRef::new(WIDTH, HEIGHT, &data).unwrap();
        live.push_rgb(i as u64, i as f64 / 30.0, image).unwrap();
        if i == 0 {
            live.set_result(0, std::slice::from_ref(&truth)).unwrap();
        }
        expected.push(live.boxes()[0].detection.bbox);
        ring.push_rgb(i as u64, i as f64 / 30.0, image).unwrap();
    }
    let mut seen = Vec::new();
    let catch_up = ring
        .replay(0, std::slice::from_ref(&truth), 6, |index, boxes| {
            assert_eq!(boxes.len(), 1);
            assert_eq!(boxes[0].score, 0.9, "the score is kept");
            seen.push((index, boxes[0].bbox));
        })
        .unwrap();
    assert_eq!((catch_up.frames, catch_up.kept, catch_up.lost), (6, 1, 0));
    assert_eq!(seen.len(), 7);
    for (index, bbox) in seen {
        assert_eq!(bbox, expected[index as usize], "frame {index}");
    }
    assert!(ring.boxes().is_empty());
    assert_eq!(
        ring.replay(12, &[truth], 3, |_, _| {}).unwrap_err(),
        ResultError::UnknownFrame {
            frame_index: 12,
            oldest: 0,
            newest: 9
        }
    );
}
