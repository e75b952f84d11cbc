//! The bit-rate knob is real: encoding vtest at 640x480, 10 fps holds each target within ±10%
//! (constant bit rate), counts skipped frames, and quality (PSNR) rises with the bit rate.

mod common;

use deepoffload_video::{
    open, EncoderSettings, FrameKind, H264Decoder, H264Encoder, OpenOptions, RateControl, Resizer,
    Sampler,
};

struct Run {
    target: u32,
    encoder: H264Encoder,
    decoder: H264Decoder,
    bytes: u64,
    skipped: u64,
    encoded: u64,
    psnr_sum: f64,
}

#[test]
fn vtest_640x480_at_10_fps_holds_each_target_bitrate() {
    let mut source = open(
        &common::video("vtest.mp4"),
        &common::store(),
        &OpenOptions::default(),
    )
    .unwrap();
    let mut sampler = Sampler::new(10.0);
    let mut resizer = Resizer::new();
    let mut runs: Vec<Run> = [250_000u32, 500_000, 1_000_000, 2_000_000]
        .into_iter()
        .map(|target| Run {
            target,
            encoder: H264Encoder::new(EncoderSettings {
                bitrate_bps: target,
                max_fps: 10.0,
                rate_control: RateControl::Cbr,
                allow_skip: true,
                measure_psnr: true,
                ..EncoderSettings::default()
            })
            .unwrap(),
            decoder: H264Decoder::new().unwrap(),
            bytes: 0,
            skipped: 0,
            encoded: 0,
            psnr_sum: 0.0,
        })
        .collect();
    let mut frames = 0u64;
    while let Some(frame) = source.next_frame().unwrap() {
        if !sampler.keep(frame.pts) {
            continue;
        }
        frames += 1;
        let small = resizer.resize(frame.image.view(), 640, 480).unwrap();
        for run in &mut runs {
            let out = run.encoder.encode(small.view(), frame.pts).unwrap();
            if out.kind == FrameKind::Skipped {
                run.skipped += 1;
                assert!(out.data.is_empty());
                continue;
            }
            run.encoded += 1;
            run.bytes += out.data.len() as u64;
            run.psnr_sum += out.psnr_y.expect("PSNR measured");
            // What a receiver gets decodes, frame by frame.
            assert!(run.decoder.decode(&out.data).unwrap().is_some());
        }
    }
    assert_eq!(frames, 795);
    let seconds = frames as f64 / 10.0;
    let mut last_psnr = 0.0;
    for run in &runs {
        let actual = run.bytes as f64 * 8.0 / seconds;
        let psnr = run.psnr_sum / run.encoded as f64;
        eprintln!(
            "target {:>8} bps: actual {:>9.0} bps ({:+.1}%), {} encoded, {} skipped, mean PSNR-Y {psnr:.2} dB",
            run.target,
            actual,
            (actual / run.target as f64 - 1.0) * 100.0,
            run.encoded,
            run.skipped
        );
        assert_eq!(run.encoded + run.skipped, frames);
        assert!(
            (actual / run.target as f64 - 1.0).abs() <= 0.10,
            "target {}: actual {actual:.0}",
            run.target
        );
        assert!(
            psnr > last_psnr,
            "PSNR must rise with bit rate: {psnr:.2} after {last_psnr:.2}"
        );
        last_psnr = psnr;
    }
}

/// CBR holds targets far above what a small picture needs (filler data makes up the rest),
/// and what it sends still decodes frame by frame: 384x288 at 2 fps and 2 Mbit/s is 125 kB a
/// frame, more than openh264's own padding can write.
#[test]
fn cbr_pads_small_pictures_to_high_targets() {
    let mut source = open(
        &common::video("vtest.mp4"),
        &common::store(),
        &OpenOptions::default(),
    )
    .unwrap();
    let mut sampler = Sampler::new(2.0);
    let mut resizer = Resizer::new();
    let mut encoder = H264Encoder::new(EncoderSettings {
        bitrate_bps: 2_000_000,
        max_fps: 2.0,
        rate_control: RateControl::Cbr,
        ..EncoderSettings::default()
    })
    .unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let (mut frames, mut bytes) = (0u64, 0u64);
    while let Some(frame) = source.next_frame().unwrap() {
        if !sampler.keep(frame.pts) {
            continue;
        }
        frames += 1;
        let small = resizer.resize(frame.image.view(), 384, 288).unwrap();
        let out = encoder.encode(small.view(), frame.pts).unwrap();
        bytes += out.data.len() as u64;
        if out.kind != FrameKind::Skipped {
            let picture = decoder.decode(&out.data).unwrap().expect("a picture");
            assert_eq!((picture.width(), picture.height()), (384, 288));
        }
        if frames == 40 {
            break;
        }
    }
    let actual = bytes as f64 * 8.0 / (frames as f64 / 2.0);
    assert!(
        (actual / 2_000_000.0 - 1.0).abs() < 0.01,
        "{actual:.0} bps for a 2 Mbit/s target"
    );
}
