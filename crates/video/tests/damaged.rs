//! Damaged input gives errors — never a panic, never a hang: files cut at several offsets,
//! random bytes under every supported extension, and corrupted H.264 payloads.

mod common;

use deepoffload_video::{open, H264Decoder, OpenOptions};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Opens and reads a file to the end on another thread; returns the first error, or the
/// number of frames if it read cleanly. Fails the test if it takes over a minute.
fn read_with_deadline(path: &Path) -> Result<u64, String> {
    read_some_with_deadline(path, u64::MAX)
}

/// As [`read_with_deadline`], stopping after `max_frames`.
fn read_some_with_deadline(path: &Path, max_frames: u64) -> Result<u64, String> {
    let path = path.to_path_buf();
    let reading = path.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = (|| {
            let mut source = open(&reading, &common::store(), &OpenOptions::default())
                .map_err(|e| e.to_string())?;
            let mut n = 0;
            while n < max_frames && source.next_frame().map_err(|e| e.to_string())?.is_some() {
                n += 1;
            }
            Ok(n)
        })();
        let _ = tx.send(result);
    });
    let started = std::time::Instant::now();
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "reading {} hung (no answer after {:.0?})",
            path.display(),
            started.elapsed()
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("reading {} panicked (see above)", path.display())
        }
    }
}

fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn cut_files_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["vtest.mp4", "bikes.mp4"] {
        let bytes = std::fs::read(common::video(name)).unwrap();
        let len = bytes.len();
        for cut in [0, 7, 40, 1000, 4316, len / 3, len / 2, len - 4096, len - 1] {
            let path = dir.path().join(format!("cut_{cut}_{name}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            match read_with_deadline(&path) {
                Err(e) => assert!(
                    e.contains(path.file_name().unwrap().to_str().unwrap()),
                    "error must name the file: {e}"
                ),
                Ok(n) => panic!("{name} cut at {cut} of {len} bytes read cleanly ({n} frames)"),
            }
        }
    }
}

#[test]
fn random_bytes_give_errors_under_every_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (i, ext) in ["mp4", "mov", "y4m", "avi", "mkv", "h264", "bin"]
        .iter()
        .enumerate()
    {
        for len in [0usize, 3, 4096, 200_000] {
            let path = dir.path().join(format!("random_{len}.{ext}"));
            std::fs::write(&path, random_bytes(len, i as u32 * 7 + len as u32)).unwrap();
            if let Ok(n) = read_with_deadline(&path) {
                panic!("{len} random bytes as .{ext} read as a video of {n} frames");
            }
        }
    }
    // A Y4M header followed by too few bytes for one frame.
    let path = dir.path().join("short.y4m");
    let mut data = b"YUV4MPEG2 W64 H48 F10:1 C420\nFRAME\n".to_vec();
    data.extend(random_bytes(1000, 3));
    std::fs::write(&path, data).unwrap();
    let err = read_with_deadline(&path).unwrap_err();
    assert!(err.contains("cut off"), "{err}");
}

#[test]
fn corrupted_h264_never_panics_the_decoder() {
    // Real access units from vtest, with bytes flipped after the header: errors or pictures,
    // but the decoder survives and keeps decoding the next key frame.
    let mut source = open(
        &common::video("vtest.mp4"),
        &common::store(),
        &OpenOptions::default(),
    )
    .unwrap();
    let first = source.next_frame().unwrap().unwrap();
    let mut encoder = deepoffload_video::H264Encoder::new(Default::default()).unwrap();
    let au = encoder.encode(first.image.view(), first.pts).unwrap().data;
    let mut errors = 0;
    for seed in 0..50u32 {
        let mut damaged = au.clone();
        for (k, b) in random_bytes(8, seed).iter().enumerate() {
            let at = 40 + (seed as usize * 131 + k * 977) % (damaged.len() - 40);
            damaged[at] ^= b | 1;
        }
        let mut decoder = H264Decoder::new().unwrap();
        if decoder.decode(&damaged).is_err() {
            errors += 1;
        }
        // The same decoder still decodes an intact key frame afterwards.
        assert!(
            decoder.decode(&au).unwrap().is_some(),
            "decoder unusable after damage (seed {seed})"
        );
    }
    eprintln!("{errors} of 50 damaged key frames were reported as errors");
}

#[test]
fn mutated_mp4_headers_never_panic_or_hang() {
    // Flip bytes inside the `moov` box of both files (sample tables, codec configuration).
    let dir = tempfile::tempdir().unwrap();
    for (name, moov_start, moov_len) in [
        ("bikes.mp4", 506_141usize, 3727usize),
        ("vtest.mp4", 32, 4276),
    ] {
        let bytes = std::fs::read(common::video(name)).unwrap();
        for seed in 0..40u32 {
            let mut damaged = bytes.clone();
            for (k, b) in random_bytes(4, seed).iter().enumerate() {
                let at = moov_start + 8 + (seed as usize * 7919 + k * 104_729) % (moov_len - 8);
                damaged[at] ^= b | 1;
            }
            let path = dir.path().join(format!("mutated_{seed}_{name}"));
            std::fs::write(&path, &damaged).unwrap();
            // Either outcome is fine; what matters is that it returns.
            let _ = read_some_with_deadline(&path, 60);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
