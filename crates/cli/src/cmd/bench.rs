//! `deepoffload bench detect`: forward pass and whole detect step per model × size × threads,
//! printed beside `../shared/reference/anchors.md` and, with `--python`, beside ONNX Runtime's
//! Python API timed on our own exported `.onnx` in the same rounds.

use crate::args::BenchDetectArgs;
use crate::cmd::detect::load_image;
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_core::{RgbImageRef, Summary};
use deepoffload_detect::{
    init_runtime, Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The Python side of the comparison; kept as a file in the repository so it can be read and
/// run on its own.
const PYTHON_SCRIPT: &str = include_str!("../../../../scripts/ort_python_forward.py");

/// (median, p90) in ms from `anchors.md`, keyed by (table, model, size, column).
type Anchors = HashMap<(String, String, usize, String), (f64, f64)>;

/// Reads the two timing tables of `anchors.md` ("Forward pass only", "Including pre- and
/// post-processing"); columns are named as in its header row (e.g. "ORT 2T").
fn read_anchors(path: &Path) -> Option<Anchors> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut anchors = Anchors::new();
    let mut table = String::new();
    let mut header: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            table = if title.starts_with("Forward") {
                "forward".into()
            } else if title.starts_with("Including") {
                "detect".into()
            } else {
                String::new()
            };
            header.clear();
            continue;
        }
        if table.is_empty() || !line.starts_with('|') || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if header.is_empty() {
            header = cells;
            continue;
        }
        let (Some(model), Some(size)) = (
            cells.first(),
            cells.get(1).and_then(|s| s.split('x').next()?.parse().ok()),
        ) else {
            continue;
        };
        for (col, cell) in header.iter().zip(&cells).skip(3) {
            if let Some((m, p)) = cell.split_once('/') {
                if let (Ok(m), Ok(p)) = (m.trim().parse(), p.trim().parse()) {
                    let col = col.replace("OpenCV DNN", "OpenCV");
                    anchors.insert((table.clone(), model.clone(), size, col), (m, p));
                }
            }
        }
    }
    Some(anchors)
}

#[derive(Debug, Serialize)]
struct Cell {
    model: String,
    size: usize,
    threads: usize,
    forward_ms: Summary,
    detect_ms: Summary,
    /// detect median / forward median − 1.
    detect_overhead: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    python_forward_ms: Option<Summary>,
    /// our forward median / Python's − 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_python: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_ort_forward_ms: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_ort_detect_ms: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_opencv_forward_ms: Option<(f64, f64)>,
}

fn python_times(
    python: &str,
    script: &Path,
    onnx: &Path,
    threads: usize,
    warmup: usize,
    runs: usize,
) -> Result<Vec<f64>> {
    let out = Command::new(python)
        .arg(script)
        .arg(onnx)
        .args([
            "--threads",
            &threads.to_string(),
            "--warmup",
            &warmup.to_string(),
            "--runs",
            &runs.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {python}"))?;
    if !out.status.success() {
        bail!(
            "{python} {}: {}\nInstall the same ONNX Runtime for that interpreter: `{python} -m pip install onnxruntime=={} numpy`, or pass --python PATH",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim(),
            deepoffload_detect::catalogue::ONNXRUNTIME_VERSION
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the script's JSON")?;
    let version = v["onnxruntime"].as_str().unwrap_or("?");
    if version != deepoffload_detect::catalogue::ONNXRUNTIME_VERSION {
        tracing::warn!(
            "Python has onnxruntime {version}, we load {}: the comparison is between versions",
            deepoffload_detect::catalogue::ONNXRUNTIME_VERSION
        );
    }
    Ok(v["times_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default())
}

fn fmt(s: Option<(f64, f64)>) -> String {
    s.map_or("-".into(), |(m, p)| format!("{m:.1} / {p:.1}"))
}

pub fn run(args: BenchDetectArgs) -> Result<ExitCode> {
    if args.runs == 0 || args.rounds == 0 {
        bail!("--runs and --rounds must be at least 1");
    }
    let store = Store::from_env();
    init_runtime(&store, args.ort_lib.as_deref())?;
    let shared = store.config().shared.clone();
    let image = match (&args.image, &shared) {
        (Some(p), _) => load_image(p)?,
        (None, Some(dir)) => load_image(&dir.join("fixtures/images/dog.png"))?,
        (None, None) => bail!(
            "no image to detect on: pass --image FILE (the reference numbers use a 768x576 photo)"
        ),
    };
    let view = RgbImageRef::new(image.width(), image.height(), image.as_raw())?;
    let anchors = shared
        .as_ref()
        .and_then(|d| read_anchors(&d.join("reference/anchors.md")));
    if anchors.is_none() {
        tracing::warn!("reference/anchors.md not found: printing our numbers only");
    }
    let workdir = tempfile::tempdir()?;
    let script = workdir.path().join("ort_python_forward.py");
    if args.python.is_some() {
        std::fs::write(&script, PYTHON_SCRIPT)?;
    }
    let total = (args.models.len() * args.sizes.len() * args.threads.len() * args.rounds) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} {msg:28} [{bar:30}] {pos}/{len} rounds, {elapsed}")
            .unwrap()
            .progress_chars("=> "),
    );
    let mut cells = Vec::new();
    for model_name in &args.models {
        for &size in &args.sizes {
            let model =
                ImportedModel::load(&store, model_name, Some(size), &ModelOverrides::default())?;
            let onnx = workdir.path().join(format!("{model_name}_{size}.onnx"));
            if args.python.is_some() {
                std::fs::write(&onnx, &model.onnx)?;
            }
            for &threads in &args.threads {
                bar.set_message(format!("{model_name}@{size} {threads}T"));
                let (mut forward, mut detect, mut python) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..args.rounds {
                    // A fresh session per round, as the Python side gets a fresh process.
                    let options = DetectorOptions {
                        threads,
                        ..DetectorOptions::default()
                    };
                    let mut detector = YoloDetector::new(&model, options)?;
                    for _ in 0..args.warmup {
                        detector.detect(view)?;
                    }
                    let tensor = detector.last_input().to_vec();
                    for _ in 0..args.runs {
                        let t = Instant::now();
                        detector.forward(&tensor)?;
                        forward.push(t.elapsed().as_secs_f64() * 1e3);
                        let t = Instant::now();
                        detector.detect(view)?;
                        detect.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    drop(detector);
                    if let Some(py) = &args.python {
                        python.extend(python_times(
                            py,
                            &script,
                            &onnx,
                            threads,
                            args.warmup,
                            args.runs,
                        )?);
                    }
                    bar.inc(1);
                }
                let forward_ms = Summary::of(&forward).expect("runs ≥ 1");
                let detect_ms = Summary::of(&detect).expect("runs ≥ 1");
                let python_forward_ms = Summary::of(&python);
                let anchor = |table: &str, col: &str| {
                    anchors
                        .as_ref()?
                        .get(&(table.to_string(), model_name.clone(), size, col.to_string()))
                        .copied()
                };
                cells.push(Cell {
                    model: model_name.clone(),
                    size,
                    threads,
                    forward_ms,
                    detect_ms,
                    detect_overhead: detect_ms.median / forward_ms.median - 1.0,
                    vs_python: python_forward_ms.map(|p| forward_ms.median / p.median - 1.0),
                    python_forward_ms,
                    reference_ort_forward_ms: anchor("forward", &format!("ORT {threads}T")),
                    reference_ort_detect_ms: anchor("detect", &format!("ORT {threads}T")),
                    reference_opencv_forward_ms: anchor("forward", &format!("OpenCV {threads}T")),
                });
            }
        }
    }
    bar.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&cells)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "model",
        "input",
        "thr",
        "forward",
        "forward py-ORT",
        "ours vs py",
        "detect",
        "detect vs fwd",
        "ref ORT fwd",
        "ref ORT detect",
        "ref OpenCV fwd",
    ]);
    for c in &cells {
        table.add_row([
            c.model.clone(),
            c.size.to_string(),
            c.threads.to_string(),
            fmt(Some((c.forward_ms.median, c.forward_ms.p90))),
            fmt(c.python_forward_ms.map(|p| (p.median, p.p90))),
            c.vs_python
                .map_or("-".into(), |v| format!("{:+.1}%", v * 100.0)),
            fmt(Some((c.detect_ms.median, c.detect_ms.p90))),
            format!("{:+.1}%", c.detect_overhead * 100.0),
            fmt(c.reference_ort_forward_ms),
            fmt(c.reference_ort_detect_ms),
            fmt(c.reference_opencv_forward_ms),
        ]);
    }
    outln!("{table}");
    outln!(
        "ms, median / p90 over {} rounds × {} runs ({} warm-up) on a {}x{} image; \"ref\" = ../shared/reference/anchors.md \
(measured on this kind of machine, a different run: compare within one run, ±10-15%). \
forward = network only; detect = resize + inference + decode + NMS.",
        args.rounds,
        args.runs,
        args.warmup,
        image.width(),
        image.height()
    );
    Ok(ExitCode::SUCCESS)
}
