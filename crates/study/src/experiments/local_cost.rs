//! Study: "Energy and latency increase with pixels²" (local detection on the phone).

use super::{profile_conditions, write_csv};
use crate::{Outcome, Study, Verdict};
use anyhow::Result;
use deepoffload_plot::{line_chart, LineChart, Mark, Series};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Row {
    model: String,
    input_side: u32,
    input_pixels: u64,
    gflops: f64,
    measured_ms: f64,
    device_ms: f64,
    device_joules: f64,
}

/// Least-squares slope of log(y) against log(x): the power law's exponent.
fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    deepoffload_lab::fit::polyfit(&logs, 1).map(|(c, _)| c[1])
}

pub fn run(study: &mut Study, dir: &Path) -> Result<Outcome> {
    deepoffload_plot::init_font(&study.store)?;
    let profile = study.profile()?.clone();
    let mut rows: Vec<Row> = profile
        .models
        .iter()
        .map(|m| Row {
            model: m.key.model.clone(),
            input_side: m.key.input_size,
            input_pixels: m.pixels,
            gflops: m.gflops,
            measured_ms: m.measured_ms,
            device_ms: m.device_ms,
            device_joules: m.device_joules,
        })
        .collect();
    rows.sort_by(|a, b| (&a.model, a.input_side).cmp(&(&b.model, b.input_side)));
    write_csv(&dir.join("local-cost.csv"), &rows)?;
    let mut models: Vec<String> = rows.iter().map(|r| r.model.clone()).collect();
    models.dedup();

    let kpx = |p: f64| p / 1e3;
    let chart = |quantity: &str,
                 pick: fn(&Row) -> f64,
                 title: &str,
                 y: &str,
                 note: String,
                 points: &str| {
        let mut series = Vec::new();
        for (k, model) in models.iter().enumerate() {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| &r.model == model)
                .map(|r| (kpx(r.input_pixels as f64), pick(r)))
                .collect();
            series.push(Series {
                name: format!("{model} ({points})"),
                points: pts.clone(),
                mark: Mark::Points,
                color: k,
            });
            if let Some(fit) = profile
                .fits
                .iter()
                .find(|f| f.quantity == format!("{quantity} {model}"))
            {
                let (lo, hi) = pts
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
                let c = fit.coefficients;
                let curve = (0..=40)
                    .map(|i| {
                        let x = lo + (hi - lo) * i as f64 / 40.0;
                        let px = x * 1e3;
                        (x, c[0] + c[1] * px + c[2] * px * px)
                    })
                    .collect();
                series.push(Series {
                    name: format!("{model} quadratic fit (R² {:.4})", fit.r2),
                    points: curve,
                    mark: Mark::Dashed,
                    color: k,
                });
            }
        }
        LineChart {
            title: title.into(),
            x_label: "network input (thousand pixels, side²)".into(),
            y_label: y.into(),
            series,
            markers: Vec::new(),
            note: Some(note),
            log_y: false,
        }
    };
    let device = format!(
        "{}{}",
        profile.device.name,
        if profile.device.emulated {
            " (emulated)"
        } else {
            ""
        }
    );
    line_chart(
        &dir.join("latency-this-machine.png"),
        &chart(
            "measured latency_ms",
            |r| r.measured_ms,
            "Local detection latency against input pixels (measured)",
            "latency per frame (ms)",
            format!("ONNX Runtime on {}", profile.device.measured_on),
            "measured",
        ),
    )?;
    line_chart(
        &dir.join("latency-device.png"),
        &chart(
            "device latency_ms",
            |r| r.device_ms,
            &format!("Local detection latency on {device}"),
            "latency per frame (ms)",
            "declared device time at one size, scaled by each input's FLOPs".into(),
            "device class",
        ),
    )?;
    line_chart(
        &dir.join("energy-device.png"),
        &chart(
            "device energy_joules",
            |r| r.device_joules,
            &format!("Local detection energy per frame on {device}"),
            "energy per frame (J)",
            format!("energy backend: {}", profile.energy_model.backend),
            "device class",
        ),
    )?;

    let mut parts = Vec::new();
    let mut numbers = serde_json::Map::new();
    let mut all_quadratic = true;
    for model in &models {
        let of: Vec<&Row> = rows.iter().filter(|r| &r.model == model).collect();
        let side: Vec<(f64, f64)> = of
            .iter()
            .map(|r| (r.input_side as f64, r.measured_ms))
            .collect();
        let e = exponent(&side).unwrap_or(f64::NAN);
        let fit = profile
            .fits
            .iter()
            .find(|f| f.quantity == format!("measured latency_ms {model}"));
        let (first, last) = (of.first(), of.last());
        if let (Some(a), Some(b), Some(fit)) = (first, last, fit) {
            parts.push(format!(
                "{model}: {:.1} → {:.1} ms from {}² to {}² input (latency ∝ side^{e:.2}; quadratic fit in pixels R² {:.4}, straight line {:.4})",
                a.measured_ms, b.measured_ms, a.input_side, b.input_side, fit.r2, fit.linear_r2
            ));
            numbers.insert(
                model.clone(),
                serde_json::json!({"exponent_in_side": e, "r2": fit.r2, "linear_r2": fit.linear_r2,
                    "ms_smallest": a.measured_ms, "ms_largest": b.measured_ms}),
            );
        }
        all_quadratic &= (1.5..=2.6).contains(&e);
    }
    let energy_note = format!(
        "Energy per frame follows the same curve (energy = device power × time, {}).",
        profile.energy_model.backend
    );
    Ok(Outcome {
        name: "local-cost".into(),
        title: "Local latency and energy against resolution".into(),
        claim: "Energy and latency increase with pixels² (local detection, OnePlus 3T)".into(),
        finding: format!(
            "On this machine, latency grows with the square of the input side — in proportion to its pixel count. {}. {energy_note}",
            parts.join("; ")
        ),
        verdict: if all_quadratic {
            Verdict::Agrees
        } else {
            Verdict::Partly
        },
        conditions: profile_conditions(&profile),
        figures: vec![
            "latency-this-machine.png".into(),
            "latency-device.png".into(),
            "energy-device.png".into(),
        ],
        tables: vec!["local-cost.csv".into()],
        command: "deepoffload experiment local-cost".into(),
        numbers: numbers.into(),
        seconds: 0.0,
    })
}
