//! Study: "Accuracy increases with larger model, higher resolution, higher bit rate" (IoU
//! against the big model on the raw video).

use super::{mean, profile_conditions, write_csv};
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_core::profile::{remote_bitrates, Cell};
use deepoffload_core::{format_bitrate, Placement};
use deepoffload_plot::{heatmaps, Heatmap};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Row {
    video: String,
    model: String,
    input_size: u32,
    placement: String,
    scale: f64,
    width: u32,
    height: u32,
    fps: f64,
    bitrate_bps: u64,
    f1: f64,
    mean_iou: f64,
    precision: f64,
    recall: f64,
}

/// A cell's resolution as a fraction of its video's width (two decimals, as the grid lists it).
fn scale_of(cell: &Cell, width: u32) -> f64 {
    (cell.config.width as f64 / width as f64 * 100.0).round() / 100.0
}

pub fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let profile = study.profile()?.clone();
    let width_of = |video: &str| {
        profile
            .videos
            .iter()
            .find(|v| v.name == video)
            .map_or(1, |v| v.width)
    };
    let rows: Vec<Row> = profile
        .cells
        .iter()
        .map(|c| Row {
            video: c.video.clone(),
            model: c.config.model.clone(),
            input_size: c.config.input_size,
            placement: c.config.placement.to_string(),
            scale: scale_of(c, width_of(&c.video)),
            width: c.config.width,
            height: c.config.height,
            fps: c.config.fps,
            bitrate_bps: c.config.bitrate_bps,
            f1: c.accuracy.f1,
            mean_iou: c.accuracy.mean_iou,
            precision: c.accuracy.precision,
            recall: c.accuracy.recall,
        })
        .collect();
    write_csv(&dir.join("accuracy.csv"), &rows)?;

    let rates = remote_bitrates(profile.cells.iter());
    let mut models: Vec<(String, u32)> = rows
        .iter()
        .map(|r| (r.model.clone(), r.input_size))
        .collect();
    models.sort();
    models.dedup();
    let mut scales: Vec<f64> = rows.iter().map(|r| r.scale).collect();
    scales.sort_by(f64::total_cmp);
    scales.dedup();
    // Mean over videos and frame rates of one model, scale and bit rate (0 = raw, local).
    let cell_mean = |model: &(String, u32), scale: f64, rate: u64, pick: fn(&Row) -> f64| {
        mean(
            rows.iter()
                .filter(|r| {
                    (&r.model, r.input_size) == (&model.0, model.1)
                        && (r.scale - scale).abs() < 1e-9
                        && if rate == 0 {
                            r.placement == Placement::Local.to_string()
                        } else {
                            r.placement == Placement::Remote.to_string() && r.bitrate_bps == rate
                        }
                })
                .map(pick),
        )
    };
    let mut columns = vec!["raw".to_string()];
    columns.extend(rates.iter().map(|r| format_bitrate(*r as f64)));
    let scale_label = |s: f64| format!("×{s:.2}");
    for (metric, pick, file, label) in [
        (
            "F1",
            (|r: &Row| r.f1) as fn(&Row) -> f64,
            "accuracy-f1.png",
            "F1 vs reference",
        ),
        (
            "mean IoU",
            |r: &Row| r.mean_iou,
            "accuracy-iou.png",
            "mean IoU of matches",
        ),
    ] {
        let panels: Vec<Heatmap> = models
            .iter()
            .map(|m| Heatmap {
                title: format!("{}@{}", m.0, m.1),
                x_label: "H.264 bit rate (raw: unencoded frames)".into(),
                y_label: "resolution (× source width)".into(),
                columns: columns.clone(),
                rows: scales.iter().map(|s| scale_label(*s)).collect(),
                values: scales
                    .iter()
                    .map(|&s| {
                        std::iter::once(0)
                            .chain(rates.iter().copied())
                            .map(|r| cell_mean(m, s, r, pick))
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        heatmaps(
            &dir.join(file),
            &format!("{metric} against bit rate and resolution (mean over videos and frame rates)"),
            Some(&format!(
                "reference: {}@{} on the raw video; {} videos",
                profile.reference.model,
                profile.reference.input_size,
                profile.videos.len()
            )),
            label,
            &panels,
        )?;
    }

    // The three claims, each counted over matching pairs.
    let f1 = |r: &Row| r.f1;
    let remote: Vec<&Row> = rows
        .iter()
        .filter(|r| r.placement == Placement::Remote.to_string())
        .collect();
    let mut model_wins = (0, 0);
    let mut res_wins = (0, 0);
    let mut rate_wins = (0, 0);
    for a in &remote {
        for b in &remote {
            let same_video_fps = a.video == b.video && a.fps == b.fps;
            if !same_video_fps {
                continue;
            }
            let same_rate = a.bitrate_bps == b.bitrate_bps;
            let same_scale = (a.scale - b.scale).abs() < 1e-9;
            let same_model = a.model == b.model && a.input_size == b.input_size;
            if same_rate && same_scale && !same_model && a.input_size > b.input_size {
                model_wins.1 += 1;
                model_wins.0 += usize::from(f1(a) >= f1(b));
            }
            if same_model && same_rate && a.scale > b.scale {
                res_wins.1 += 1;
                res_wins.0 += usize::from(f1(a) >= f1(b));
            }
            if same_model && same_scale && a.bitrate_bps > b.bitrate_bps {
                rate_wins.1 += 1;
                rate_wins.0 += usize::from(f1(a) >= f1(b));
            }
        }
    }
    let share = |w: (usize, usize)| w.0 as f64 / w.1.max(1) as f64;
    let lo_rate = rates.first().copied().unwrap_or(0);
    let hi_rate = rates.last().copied().unwrap_or(0);
    let by_rate = |rate: u64| {
        mean(
            remote
                .iter()
                .filter(|r| r.bitrate_bps == rate)
                .map(|r| r.f1),
        )
    };
    let by_scale = |s: f64| {
        mean(
            remote
                .iter()
                .filter(|r| (r.scale - s).abs() < 1e-9)
                .map(|r| r.f1),
        )
    };
    let (lo_s, hi_s) = (
        scales.first().copied().unwrap_or(1.0),
        scales.last().copied().unwrap_or(1.0),
    );
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    let finding = format!(
        "Offloaded (remote) cells, F1 against the reference: the bigger model is at least as accurate in {}/{} like-for-like pairs ({:.0}%); higher resolution in {}/{} ({:.0}%; mean {} at ×{lo_s:.2} → {} at ×{hi_s:.2}); higher bit rate in {}/{} ({:.0}%; mean {} at {} → {} at {}). Resolution and model matter far more than bit rate over this range.",
        model_wins.0, model_wins.1, share(model_wins) * 100.0,
        res_wins.0, res_wins.1, share(res_wins) * 100.0, fmt(by_scale(lo_s)), fmt(by_scale(hi_s)),
        rate_wins.0, rate_wins.1, share(rate_wins) * 100.0,
        fmt(by_rate(lo_rate)), format_bitrate(lo_rate as f64), fmt(by_rate(hi_rate)), format_bitrate(hi_rate as f64),
    );
    let verdict = match [model_wins, res_wins, rate_wins]
        .iter()
        .filter(|w| share(**w) > 0.5)
        .count()
    {
        3 => Verdict::Agrees,
        0 => Verdict::Differs,
        _ => Verdict::Partly,
    };
    Ok(Outcome {
        name: "accuracy".into(),
        title: "Accuracy against bit rate and resolution".into(),
        claim: "Accuracy increases with larger model, higher resolution, higher bit rate (IoU relative to big-yolo on the raw video)".into(),
        finding,
        verdict,
        conditions: profile_conditions(&profile),
        figures: vec!["accuracy-f1.png".into(), "accuracy-iou.png".into()],
        tables: vec!["accuracy.csv".into()],
        command: "deepoffload experiment accuracy".into(),
        numbers: serde_json::json!({
            "bigger_model_wins": share(model_wins),
            "higher_resolution_wins": share(res_wins),
            "higher_bitrate_wins": share(rate_wins),
        }),
        seconds: 0.0,
    })
}
