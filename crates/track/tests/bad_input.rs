//! Whatever a camera or a peer hands over, the tracker answers with an error or drops the box:
//! it never panics.

mod support;

use deepoffload_core::{BBox, RgbImageRef};
use deepoffload_track::{
    FrameError, GreyFrame, PushError, ResultError, SettingsError, Tracker, TrackerSettings,
};
use support::{detection, render, Texture};

fn textured(width: u32, height: u32) -> Vec<u8> {
    render(width, height, &Texture::new(3, 5.0), (0.0, 0.0), &[])
}

#[test]
fn bad_frames_are_errors() {
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    // Zero-sized.
    assert_eq!(
        GreyFrame::from_luma(0, 0, 0, &[], 320).unwrap_err(),
        FrameError::Empty {
            width: 0,
            height: 0
        }
    );
    // Tiny.
    let tiny = textured(8, 6);
    assert!(matches!(
        tracker.push_rgb(0, 0.0, RgbImageRef::new(8, 6, &tiny).unwrap()),
        Err(PushError::Frame(FrameError::TooSmall { .. }))
    ));
    assert_eq!(tracker.newest_frame(), None);
    // Mismatched sizes.
    let big = textured(640, 480);
    let small = textured(320, 240);
    tracker
        .push_rgb(0, 0.0, RgbImageRef::new(640, 480, &big).unwrap())
        .unwrap();
    assert!(matches!(
        tracker.push_rgb(1, 0.1, RgbImageRef::new(320, 240, &small).unwrap()),
        Err(PushError::SizeChanged { .. })
    ));
    // Out of order, and time that is not finite or goes back.
    let image = RgbImageRef::new(640, 480, &big).unwrap();
    assert!(matches!(
        tracker.push_rgb(0, 0.2, image),
        Err(PushError::OutOfOrder { .. })
    ));
    assert!(matches!(
        tracker.push_rgb(1, f64::NAN, image),
        Err(PushError::BadTime { .. })
    ));
    assert!(matches!(
        tracker.push_rgb(1, -1.0, image),
        Err(PushError::BadTime { .. })
    ));
    assert_eq!(tracker.newest_frame(), Some(0));
    // After a reset the new size is fine.
    tracker.reset();
    tracker
        .push_rgb(5, 0.0, RgbImageRef::new(320, 240, &small).unwrap())
        .unwrap();
}

#[test]
fn result_before_any_frame_is_an_error() {
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    assert_eq!(tracker.set_result(0, &[]), Err(ResultError::NoFrames));
}

#[test]
fn bad_settings_are_errors() {
    let bad = |settings: TrackerSettings| Tracker::new(settings).err().unwrap();
    let base = TrackerSettings::default();
    assert_eq!(
        bad(TrackerSettings {
            window_size: 10,
            ..base.clone()
        }),
        SettingsError::WindowSize(10)
    );
    assert_eq!(
        bad(TrackerSettings {
            ring_len: 0,
            ..base.clone()
        }),
        SettingsError::EmptyRing
    );
    assert!(matches!(
        bad(TrackerSettings {
            fb_threshold_px: f32::NAN,
            ..base.clone()
        }),
        SettingsError::FbThreshold(_)
    ));
    assert!(matches!(
        bad(TrackerSettings {
            confidence_half_life_s: 0.0,
            ..base.clone()
        }),
        SettingsError::HalfLife(_)
    ));
    assert!(matches!(
        bad(TrackerSettings {
            max_working_side: 4,
            ..base
        }),
        SettingsError::WorkingSide(_)
    ));
}

#[test]
fn bad_boxes_are_dropped_or_clipped() {
    let (width, height) = (640u32, 480u32);
    let data = textured(width, height);
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let image = RgbImageRef::new(width, height, &data).unwrap();
    tracker.push_rgb(0, 0.0, image).unwrap();
    tracker.push_rgb(1, 0.1, image).unwrap();

    assert_eq!(tracker.set_result(0, &[]).unwrap().kept, 0);

    let b = |x1, y1, x2, y2| BBox { x1, y1, x2, y2 };
    let given = [
        b(f32::NAN, 10.0, 50.0, 50.0),
        b(10.0, 10.0, f32::INFINITY, 50.0),
        b(10.0, f32::NEG_INFINITY, 50.0, 50.0),
        b(50.0, 10.0, 10.0, 50.0),       // inverted
        b(10.0, 10.0, 10.0, 50.0),       // no width
        b(700.0, 10.0, 800.0, 50.0),     // right of the frame
        b(-100.0, -100.0, -10.0, -10.0), // above-left of the frame
        b(-1e30, -1e30, 1e30, 1e30),     // huge: clipped to the frame
        b(-40.0, 300.0, 100.0, 520.0),   // partly outside: clipped
        b(200.0, 200.0, 200.5, 200.5),   // under a working pixel
    ];
    let mut detections: Vec<_> = given.iter().map(|&bbox| detection(bbox, 0.7)).collect();
    let mut nan_score = detection(b(100.0, 100.0, 200.0, 200.0), 0.7);
    nan_score.score = f32::NAN;
    detections.push(nan_score);

    let result = tracker.set_result(0, &detections).unwrap();
    assert_eq!(result.rejected, 9, "{result:?}");
    assert_eq!(result.frames, 1);
    let boxes = tracker.boxes();
    assert_eq!(boxes.len(), 2, "{boxes:?}");
    for tracked in boxes {
        let bbox = tracked.detection.bbox;
        assert!(bbox.x1 >= 0.0 && bbox.y1 >= 0.0, "{bbox:?}");
        assert!(
            bbox.x2 <= width as f32 && bbox.y2 <= height as f32,
            "{bbox:?}"
        );
        assert!(tracked.confidence.is_finite());
    }
    // The static scene leaves the clipped boxes where they were.
    let partly = boxes[1].detection.bbox;
    for (got, want) in [
        (partly.x1, 0.0),
        (partly.y1, 300.0),
        (partly.x2, 100.0),
        (partly.y2, 480.0),
    ] {
        assert!((got - want).abs() < 0.5, "{partly:?}");
    }
}

#[test]
fn flat_frames_drop_boxes_without_panicking() {
    // Nothing to track on a uniform grey frame: the box goes, nothing breaks.
    let data = vec![128u8; 320 * 240 * 3];
    let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
    let image = RgbImageRef::new(320, 240, &data).unwrap();
    tracker.push_rgb(0, 0.0, image).unwrap();
    tracker.push_rgb(1, 0.1, image).unwrap();
    let result = tracker
        .set_result(
            0,
            &[detection(
                BBox {
                    x1: 10.0,
                    y1: 10.0,
                    x2: 100.0,
                    y2: 100.0,
                },
                0.9,
            )],
        )
        .unwrap();
    assert_eq!((result.kept, result.lost), (0, 1));
}

#[test]
fn smallest_frames_and_boxes_do_not_panic() {
    let data = textured(16, 16);
    let mut tracker = Tracker::new(TrackerSettings {
        max_working_side: 16,
        pyramid_levels: 8,
        window_size: 63,
        ..TrackerSettings::default()
    })
    .unwrap();
    let image = RgbImageRef::new(16, 16, &data).unwrap();
    for i in 0..3 {
        tracker.push_rgb(i, i as f64, image).unwrap();
    }
    let boxes = [0.0f32, 1.0, 7.5, 15.0].map(|x| {
        detection(
            BBox {
                x1: x,
                y1: x,
                x2: x + 1.0,
                y2: x + 1.0,
            },
            0.5,
        )
    });
    tracker.set_result(0, &boxes).unwrap();
    let _ = tracker.boxes();
}
