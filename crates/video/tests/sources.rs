//! Real videos through every reader: counts, sizes, timestamps and pixels.

mod common;

use deepoffload_video::pixels::psnr;
use deepoffload_video::source::{find_ffmpeg, probe_mp4, FfmpegSource};
use deepoffload_video::{open, OpenOptions, VideoSource};
use std::time::Duration;

/// Reads every frame, checking timestamps against `index / fps`, and returns the frame
/// picked by `keep` as RGB bytes.
fn read_all(source: &mut dyn VideoSource, fps: f64, keep: u64) -> (u64, Vec<u8>) {
    let (mut count, mut kept) = (0, Vec::new());
    while let Some(frame) = source.next_frame().unwrap() {
        assert_eq!(frame.index, count);
        let want = Duration::from_secs_f64(count as f64 / fps);
        let diff = frame.pts.abs_diff(want);
        assert!(
            diff < Duration::from_millis(1),
            "frame {count}: pts {:?}, expected {want:?}",
            frame.pts
        );
        if count == keep {
            kept = frame.image.data().to_vec();
        }
        count += 1;
    }
    (count, kept)
}

fn fixture_png(name: &str) -> Vec<u8> {
    image::open(common::shared_dir().join("fixtures/images").join(name))
        .unwrap()
        .to_rgb8()
        .into_raw()
}

#[test]
fn vtest_reads_natively_795_frames_at_10_fps() {
    let path = common::video("vtest.mp4");
    let probe = probe_mp4(&path).unwrap();
    assert!(probe.native_ok(), "{:?}", probe.why_not_native());
    let mut source = open(&path, &common::store(), &OpenOptions::default()).unwrap();
    let info = source.info().clone();
    assert_eq!(
        (info.width, info.height, info.decoder.as_str()),
        (768, 576, "openh264")
    );
    assert!((info.fps - 10.0).abs() < 1e-9, "{}", info.fps);
    assert_eq!(info.frames, Some(795));
    // Frame 400 (40 s) is the fixture image OpenCV decoded from the same file.
    let (count, at_40s) = read_all(source.as_mut(), 10.0, 400);
    assert_eq!(count, 795);
    let p = psnr(&at_40s, &fixture_png("vtest_40s.png"));
    assert!(
        p > 35.0,
        "frame at 40 s differs from OpenCV's decode: PSNR {p:.1} dB"
    );
}

#[test]
fn bikes_with_b_frames_reads_through_ffmpeg_250_frames_at_25_fps() {
    let path = common::video("bikes.mp4");
    let probe = probe_mp4(&path).unwrap();
    assert!(probe.info.reordered, "bikes.mp4 has B-frames");
    assert_eq!(
        probe.why_not_native(),
        Some("H.264 with B-frames (reordered frames)")
    );
    let mut source = open(&path, &common::store(), &OpenOptions::default()).unwrap();
    let info = source.info().clone();
    assert_eq!(
        (info.width, info.height, info.decoder.as_str()),
        (640, 272, "ffmpeg")
    );
    assert!((info.fps - 25.0).abs() < 1e-9, "{}", info.fps);
    let (count, at_3s) = read_all(source.as_mut(), 25.0, 75);
    assert_eq!(count, 250);
    let p = psnr(&at_3s, &fixture_png("bikes_3s.png"));
    assert!(
        p > 35.0,
        "frame at 3 s differs from OpenCV's decode: PSNR {p:.1} dB"
    );
}

#[test]
fn native_and_ffmpeg_decodes_of_vtest_agree() {
    let path = common::video("vtest.mp4");
    let ffmpeg = find_ffmpeg(&common::store(), None).unwrap();
    let mut native = open(&path, &common::store(), &OpenOptions::default()).unwrap();
    let mut via_ffmpeg = FfmpegSource::open(&path, &ffmpeg).unwrap();
    for _ in 0..30 {
        let (a, b) = (
            native.next_frame().unwrap().unwrap(),
            via_ffmpeg.next_frame().unwrap().unwrap(),
        );
        assert_eq!((a.index, a.pts), (b.index, b.pts));
        let p = psnr(a.image.data(), b.image.data());
        assert!(p > 35.0, "frame {}: PSNR {p:.1}", a.index);
    }
}

#[test]
fn y4m_and_image_folders_read_with_timestamps() {
    // Make both from the first frames of vtest, with ffmpeg.
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = find_ffmpeg(&common::store(), None).unwrap();
    let y4m = dir.path().join("clip.y4m");
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for args in [
        vec![
            "-frames:v",
            "12",
            "-pix_fmt",
            "yuv420p",
            y4m.to_str().unwrap(),
        ],
        vec!["-frames:v", "5", frames.join("f%03d.png").to_str().unwrap()],
    ] {
        let status = std::process::Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(common::video("vtest.mp4"))
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut source = open(&y4m, &common::store(), &OpenOptions::default()).unwrap();
    assert_eq!(source.info().decoder, "y4m");
    assert_eq!((source.info().width, source.info().height), (768, 576));
    let (count, _) = read_all(source.as_mut(), 10.0, 0);
    assert_eq!(count, 12);

    let options = OpenOptions {
        image_fps: 4.0,
        ..OpenOptions::default()
    };
    let mut source = open(&frames, &common::store(), &options).unwrap();
    assert_eq!(source.info().frames, Some(5));
    let (count, _) = read_all(source.as_mut(), 4.0, 0);
    assert_eq!(count, 5);
}
