//! `deepoffload models list | fetch | verify | info | export`.

use crate::args::ModelsCommand;
use anyhow::{Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::{Asset, CopyState, Request, Store};
use deepoffload_detect::catalogue::{find_model, ModelSpec, Role, MODELS, ONNXRUNTIME_LIB};
use deepoffload_detect::darknet::{LayerKind, Network};
use deepoffload_detect::OrtModel;
use deepoffload_video::source::{find_ffmpeg, FFMPEG};
use deepoffload_video::DefaultVideo;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

pub fn run(command: ModelsCommand) -> Result<ExitCode> {
    let store = Store::from_env();
    match command {
        ModelsCommand::List { json } => list(&store, json),
        ModelsCommand::Fetch { models, all } => fetch(&store, &models, all),
        ModelsCommand::Verify { models, json } => verify(&store, &models, json),
        ModelsCommand::Info { name, model, json } => info(&store, &model.named(name), json),
        ModelsCommand::Export {
            name,
            model,
            onnx,
            check,
            runtime,
        } => export(&store, &model.named(name), &onnx, check, &runtime),
    }
}

/// The models and default videos named on the command line (`yolov4-tiny`, `vtest`).
fn selected(names: &[String]) -> Result<(Vec<&'static ModelSpec>, Vec<DefaultVideo>)> {
    let mut models = Vec::new();
    let mut videos = Vec::new();
    for n in names {
        match DefaultVideo::from_name(n) {
            Some(v) => videos.push(v),
            None => models.push(find_model(n).map_err(|e| {
                anyhow::anyhow!(
                    "{e} (or a default video: {})",
                    DefaultVideo::ALL.map(DefaultVideo::name).join(", ")
                )
            })?),
        }
    }
    Ok((models, videos))
}

#[derive(Serialize)]
struct ListRow {
    name: &'static str,
    role: Role,
    default_size: usize,
    bflops: Option<f64>,
    files_here: bool,
    description: &'static str,
}

fn list(store: &Store, json: bool) -> Result<ExitCode> {
    let rows: Vec<ListRow> = MODELS
        .iter()
        .map(|m| {
            let here = m.assets().iter().all(|a| store.locate(a).is_some());
            // BFLOPs need only the cfg, which is small; computed when it is here.
            let bflops = store.locate(&m.cfg).and_then(|f| {
                let text = std::fs::read_to_string(&f.path).ok()?;
                let size = Some((m.default_size, m.default_size));
                Some(Network::parse(&text, m.cfg.file_name, size).ok()?.bflops())
            });
            ListRow {
                name: m.name,
                role: m.role,
                default_size: m.default_size,
                bflops,
                files_here: here,
                description: m.description,
            }
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(["model", "role", "size", "BFLOPs", "files", "description"]);
    for r in &rows {
        table.add_row([
            r.name.to_string(),
            format!("{:?}", r.role).to_lowercase(),
            r.default_size.to_string(),
            r.bflops.map_or("-".into(), |b| format!("{b:.2}")),
            if r.files_here { "here" } else { "fetch needed" }.to_string(),
            r.description.to_string(),
        ]);
    }
    outln!("{table}");
    let rt = store.locate(&ONNXRUNTIME_LIB);
    outln!(
        "runtime: {} — {}",
        ONNXRUNTIME_LIB.description,
        rt.map_or("fetch needed".to_string(), |f| f.path.display().to_string())
    );
    for video in DefaultVideo::ALL {
        let asset = video.asset();
        outln!(
            "video {}: {}, from {} — {}",
            video.name(),
            asset.description,
            asset.source,
            store
                .locate(asset)
                .map_or("fetch needed".to_string(), |f| f.path.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(store: &Store, names: &[String], all: bool) -> Result<ExitCode> {
    let (models, videos): (Vec<&ModelSpec>, Vec<DefaultVideo>) = if all {
        (MODELS.iter().collect(), DefaultVideo::ALL.to_vec())
    } else if names.is_empty() {
        (
            MODELS.iter().filter(|m| m.role != Role::Extra).collect(),
            DefaultVideo::ALL.to_vec(),
        )
    } else {
        selected(names)?
    };
    let mut assets: Vec<&Asset> = models.iter().flat_map(|m| m.assets()).collect();
    assets.push(&ONNXRUNTIME_LIB);
    // The default videos of demo, profile and the study (the shared copies where present).
    assets.extend(videos.iter().map(|v| v.asset()));
    let mut failed = 0;
    for asset in assets {
        match store.resolve(Request::new(asset)) {
            Ok(found) => outln!(
                "{:<40} {:<8} {}",
                asset.key(),
                found.location,
                found.path.display()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    // Video readers need ffmpeg for files openh264 cannot decode: the one on PATH, else ours.
    match find_ffmpeg(store, None) {
        Ok(path) => outln!("{:<40} {:<8} {}", "ffmpeg", "tool", path.display()),
        Err(e) => {
            failed += 1;
            eprintln!("error: {e}");
        }
    }
    Ok(super::exit_code(failed == 0))
}

#[derive(Serialize)]
struct VerifyRow {
    file: String,
    place: &'static str,
    path: String,
    state: String,
}

fn verify(store: &Store, names: &[String], json: bool) -> Result<ExitCode> {
    let (models, videos): (Vec<&ModelSpec>, Vec<DefaultVideo>) = if names.is_empty() {
        (MODELS.iter().collect(), DefaultVideo::ALL.to_vec())
    } else {
        selected(names)?
    };
    let mut assets: Vec<&Asset> = models.iter().flat_map(|m| m.assets()).collect();
    if names.is_empty() {
        assets.extend([&ONNXRUNTIME_LIB, &FFMPEG]);
    }
    assets.extend(videos.iter().map(|v| v.asset()));
    let mut rows = Vec::new();
    let mut corrupt = 0;
    for asset in assets {
        let places = [
            ("shared", store.shared_path(asset)),
            ("cache", Some(store.cache_path(asset))),
        ];
        for (place, path) in places {
            let Some(path) = path else { continue };
            let state = match store.check(asset, &path) {
                CopyState::Absent => "absent".to_string(),
                CopyState::Verified => "ok".to_string(),
                CopyState::Corrupt { actual } => {
                    corrupt += 1;
                    format!("CORRUPT ({actual})")
                }
            };
            rows.push(VerifyRow {
                file: asset.key(),
                place,
                path: path.display().to_string(),
                state,
            });
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header(["file", "where", "state", "path"]);
        for r in &rows {
            table.add_row([&r.file, r.place, &r.state, &r.path]);
        }
        outln!("{table}");
        if corrupt > 0 {
            eprintln!("{corrupt} corrupt copies: delete them, then `deepoffload models fetch` gets fresh ones");
        }
    }
    Ok(super::exit_code(corrupt == 0))
}

#[derive(Serialize)]
struct LayerRow {
    index: usize,
    kind: &'static str,
    input: String,
    output: String,
    detail: String,
}

fn info(store: &Store, model: &crate::args::ModelArgs, json: bool) -> Result<ExitCode> {
    // Only the cfg is needed for shapes.
    let cfg = match (&model.cfg, find_model(model.name())) {
        (Some(path), _) => path.clone(),
        (None, Ok(spec)) => {
            store
                .resolve(Request {
                    asset: &spec.cfg,
                    explicit: None,
                    flag: "--cfg",
                })?
                .path
        }
        (None, Err(e)) => anyhow::bail!(e),
    };
    let text = std::fs::read_to_string(&cfg).with_context(|| format!("{}", cfg.display()))?;
    let size = model
        .size
        .or_else(|| find_model(model.name()).ok().map(|m| m.default_size));
    let net = Network::parse(&text, &cfg.display().to_string(), size.map(|s| (s, s)))?;
    let rows: Vec<LayerRow> = net
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            index: i,
            kind: l.kind.name(),
            input: l.input.to_string(),
            output: l.output.to_string(),
            detail: match &l.kind {
                LayerKind::Convolutional {
                    filters,
                    size,
                    stride,
                    activation,
                    batch_normalize,
                    ..
                } => {
                    format!(
                        "{filters} × {size}x{size}/{stride} {activation:?}{}",
                        if *batch_normalize { " bn" } else { "" }
                    )
                }
                LayerKind::MaxPool { size, stride, .. } => format!("{size}x{size}/{stride}"),
                LayerKind::Route {
                    layers,
                    groups,
                    group_id,
                } => {
                    format!(
                        "layers {layers:?}{}",
                        if *groups > 1 {
                            format!(" group {group_id}/{groups}")
                        } else {
                            String::new()
                        }
                    )
                }
                LayerKind::Shortcut { from, .. } => format!("+ layer {from}"),
                LayerKind::Upsample { stride, .. } => format!("×{stride}"),
                LayerKind::Reorg { stride } => format!("/{stride}"),
                LayerKind::Dropout => String::new(),
                LayerKind::Head(h) => format!("{} anchors, {} classes", h.anchors.len(), h.classes),
            },
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(["#", "layer", "input", "output", ""]);
    for r in &rows {
        table.add_row([
            r.index.to_string(),
            r.kind.to_string(),
            r.input.clone(),
            r.output.clone(),
            r.detail.clone(),
        ]);
    }
    outln!("{table}");
    outln!(
        "{}: input {}, {} parameters, {:.2} BFLOPs, {} heads",
        cfg.display(),
        net.input,
        net.parameter_count(),
        net.bflops(),
        net.heads().len()
    );
    Ok(ExitCode::SUCCESS)
}

fn export(
    store: &Store,
    model: &crate::args::ModelArgs,
    onnx: &Path,
    check: bool,
    runtime: &crate::args::RuntimeArgs,
) -> Result<ExitCode> {
    let imported = model.load(store)?;
    std::fs::write(onnx, &imported.onnx).with_context(|| format!("writing {}", onnx.display()))?;
    let (w, h) = imported.input_size();
    outln!(
        "{}: {} at {w}x{h}, {:.1} MB, input `images` [N,3,{h},{w}], outputs {}",
        onnx.display(),
        imported.name,
        imported.onnx.len() as f64 / 1e6,
        imported
            .network
            .layers
            .iter()
            .filter(|l| matches!(l.kind, LayerKind::Head(_)))
            .enumerate()
            .map(|(k, l)| format!("head_{k} [N,{},{},{}]", l.output.c, l.output.h, l.output.w))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if check {
        runtime.init(store)?;
        let bytes = std::fs::read(onnx)?;
        let mut session = OrtModel::from_bytes(&bytes, runtime.threads)?;
        let input = vec![0.5f32; 3 * w * h];
        let sizes = session.run(&input, [1, 3, h, w], |outs| {
            outs.iter().map(|o| o.len()).collect::<Vec<_>>()
        })?;
        outln!(
            "check: ONNX Runtime loaded {} and produced outputs of {sizes:?} values",
            onnx.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
