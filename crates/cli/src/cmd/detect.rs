//! `deepoffload detect`: images in, detections out (table or JSON lines), optional drawings.

use crate::args::DetectArgs;
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_core::Detection;
use deepoffload_core::RgbImageRef;
use deepoffload_detect::annotate::draw_detections;
use deepoffload_detect::StageTimes;
use deepoffload_detect::{
    DetectOutput, Detector, DetectorOptions, ResizeMode, Thresholds, YoloDetector,
};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One JSON line of `detect --json`.
#[derive(Serialize)]
struct ImageResult<'a> {
    image: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    model: &'a str,
    input_size: [usize; 2],
    detections: &'a [Detection],
    #[serde(skip_serializing_if = "Option::is_none")]
    times_ms: Option<StageTimes>,
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands directories (recursively, sorted) into image files; files are kept as given.
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
        if !meta.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut stack = vec![input.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if is_image_name(&path) {
                    found.push(path);
                }
            }
        }
        if found.is_empty() {
            bail!(
                "{}: the directory holds no images ({})",
                input.display(),
                IMAGE_EXTENSIONS.join(", ")
            );
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Decodes an image file, with an error that names the file and says what is wrong.
pub fn load_image(path: &Path) -> Result<image::RgbImage> {
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("{}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}", path.display()))?;
    if reader.format().is_none() {
        bail!(
            "{}: not an image this tool can read (supported: PNG, JPEG, BMP, WebP, TIFF)",
            path.display()
        );
    }
    let img = reader
        .decode()
        .map_err(|e| anyhow::anyhow!("{}: not a valid image ({e})", path.display()))?;
    if img.width() == 0 || img.height() == 0 {
        bail!(
            "{}: the image is {}x{}: it has no pixels",
            path.display(),
            img.width(),
            img.height()
        );
    }
    Ok(img.to_rgb8())
}

/// Where the annotated copy of `input` goes.
fn annotate_target(out: &Path, input: &Path, single: bool) -> PathBuf {
    if single && is_image_name(out) {
        return out.to_path_buf();
    }
    let stem = input
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    out.join(format!("{stem}.png"))
}

fn print_table(
    path: &Path,
    img: &image::RgbImage,
    model: &str,
    size: (usize, usize),
    out: &DetectOutput,
) {
    let t = out.times;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    outln!(
        "{}  {}x{}  {model}@{}x{}  {} object{}  {:.1} ms (pre {:.1} · inference {:.1} · post {:.1})",
        path.display(),
        img.width(),
        img.height(),
        size.0,
        size.1,
        out.detections.len(),
        if out.detections.len() == 1 { "" } else { "s" },
        ms(t.total()),
        ms(t.preprocess),
        ms(t.inference),
        ms(t.postprocess)
    );
    if out.detections.is_empty() {
        return;
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(["", "class", "score", "x1", "y1", "x2", "y2"]);
    for (i, d) in out.detections.iter().enumerate() {
        let b = d.bbox;
        table.add_row([
            format!("{}", i + 1),
            d.class_name.clone(),
            format!("{:.3}", d.score),
            format!("{:.1}", b.x1),
            format!("{:.1}", b.y1),
            format!("{:.1}", b.x2),
            format!("{:.1}", b.y2),
        ]);
    }
    outln!("{table}\n");
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&args.conf) {
        bail!("--conf {} must be in [0, 1)", args.conf);
    }
    if !(0.0..=1.0).contains(&args.nms) {
        bail!("--nms {} must be in [0, 1]", args.nms);
    }
    let inputs = expand_inputs(&args.inputs)?;
    let store = Store::from_env();
    let model = super::prepare(&store, &args.model, &args.runtime)?;
    let options = DetectorOptions {
        threads: args.runtime.threads,
        thresholds: Thresholds {
            confidence: args.conf,
            nms_iou: args.nms,
        },
        resize: if args.letterbox {
            ResizeMode::Letterbox
        } else {
            ResizeMode::Stretch
        },
    };
    let mut detector = YoloDetector::new(&model, options)?;
    let (input_w, input_h) = model.input_size();
    if let Some(out) = &args.annotate {
        let dir = if inputs.len() == 1 && is_image_name(out) {
            out.parent().unwrap_or(Path::new(""))
        } else {
            out.as_path()
        };
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let stdout = std::io::stdout();
    let mut failures = 0;
    for path in &inputs {
        let result = load_image(path).and_then(|img| {
            let view = RgbImageRef::new(img.width(), img.height(), img.as_raw())?;
            let out = detector.detect(view)?;
            Ok((img, out))
        });
        let (mut img, out) = match result {
            Ok(v) => v,
            Err(e) => {
                failures += 1;
                eprintln!("error: {e:#}");
                if args.json {
                    let line = ImageResult {
                        image: path,
                        error: Some(format!("{e:#}")),
                        width: None,
                        height: None,
                        model: &model.name,
                        input_size: [input_w, input_h],
                        detections: &[],
                        times_ms: None,
                    };
                    writeln!(stdout.lock(), "{}", serde_json::to_string(&line)?)?;
                }
                continue;
            }
        };
        if args.json {
            let line = ImageResult {
                image: path,
                error: None,
                width: Some(img.width()),
                height: Some(img.height()),
                model: &model.name,
                input_size: [input_w, input_h],
                detections: &out.detections,
                times_ms: Some(out.times),
            };
            writeln!(stdout.lock(), "{}", serde_json::to_string(&line)?)?;
        } else {
            print_table(path, &img, &model.name, (input_w, input_h), &out);
        }
        if let Some(dir) = &args.annotate {
            let target = annotate_target(dir, path, inputs.len() == 1);
            draw_detections(&mut img, &out.detections);
            img.save(&target)
                .with_context(|| format!("writing {}", target.display()))?;
            tracing::info!("annotated image written to {}", target.display());
        }
    }
    if failures > 0 {
        eprintln!("{failures} of {} images failed", inputs.len());
    }
    Ok(super::exit_code(failures == 0))
}
