//! Findings generated from a profile: which of the study's trends hold on our data, with numbers.

use deepoffload_core::profile::{Cell, Profile};
use deepoffload_core::Placement;

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn verdict(holds: bool) -> &'static str {
    if holds {
        "holds"
    } else {
        "does not hold"
    }
}

/// `tracked / untracked` as "1.23× untracked", or why there is no ratio.
fn ratio(tracked: f64, untracked: f64) -> String {
    if untracked > 0.0 {
        format!("{:.2}× untracked", tracked / untracked)
    } else {
        "untracked is 0".to_string()
    }
}

/// The mean of `tracked[k] / untracked[k]` over the lags k ≥ 1 where untracked is positive.
fn mean_ratio(tracked: &[f64], untracked: &[f64]) -> String {
    mean(
        tracked
            .iter()
            .zip(untracked)
            .skip(1)
            .filter(|(_, &u)| u > 0.0)
            .map(|(t, u)| t / u),
    )
    .map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}×"))
}

/// Markdown lines, one finding each.
pub fn findings(p: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    let mut models: Vec<(String, u32)> = p
        .cells
        .iter()
        .map(|c| (c.config.model.clone(), c.config.input_size))
        .collect();
    models.sort_by_key(|(m, s)| {
        (
            p.models
                .iter()
                .find(|l| &l.key.model == m && l.key.input_size == *s)
                .map_or(0, |l| (l.gflops * 1000.0) as u64),
            m.clone(),
        )
    });
    models.dedup();
    for v in &p.videos {
        let cells: Vec<&Cell> = p.cells_of(&v.name).collect();
        // Bigger model vs smaller at equal resolution (and bit rate, frame rate, placement).
        if models.len() >= 2 {
            let (small, big) = (&models[0], &models[models.len() - 1]);
            let mut pairs = Vec::new();
            for c in cells
                .iter()
                .filter(|c| (&c.config.model, c.config.input_size) == (&small.0, small.1))
            {
                if let Some(b) = cells.iter().find(|b| {
                    (&b.config.model, b.config.input_size) == (&big.0, big.1)
                        && b.config.placement == c.config.placement
                        && (b.config.width, b.config.height, b.config.bitrate_bps)
                            == (c.config.width, c.config.height, c.config.bitrate_bps)
                        && b.config.fps == c.config.fps
                }) {
                    pairs.push((c.accuracy.f1, b.accuracy.f1));
                }
            }
            if !pairs.is_empty() {
                let wins = pairs.iter().filter(|(s, b)| b > s).count();
                let (ms, mb) = (
                    mean(pairs.iter().map(|p| p.0)).unwrap_or(0.0),
                    mean(pairs.iter().map(|p| p.1)).unwrap_or(0.0),
                );
                out.push(format!(
                    "**{}** — bigger model, higher accuracy: {}@{} F1 {mb:.3} vs {}@{} {ms:.3} on average at equal resolution; the bigger model wins {wins} of {} paired configurations — {}.",
                    v.name, big.0, big.1, small.0, small.1, pairs.len(), verdict(mb > ms)
                ));
            }
        }
        // Accuracy against bit rate (remote), per model and resolution.
        let mut rising = 0;
        let mut series = 0;
        let mut lows = Vec::new();
        let mut highs = Vec::new();
        let mut keys: Vec<(String, u32, u32, u32)> = cells
            .iter()
            .filter(|c| c.config.placement == Placement::Remote)
            .map(|c| {
                (
                    c.config.model.clone(),
                    c.config.input_size,
                    c.config.width,
                    c.config.height,
                )
            })
            .collect();
        keys.sort();
        keys.dedup();
        for (m, s, w, h) in &keys {
            let mut by_rate: Vec<(u64, f64)> = Vec::new();
            let rates = deepoffload_core::profile::remote_bitrates(cells.iter().copied());
            for r in rates {
                let f1 = mean(
                    cells
                        .iter()
                        .filter(|c| {
                            c.config.placement == Placement::Remote
                                && &c.config.model == m
                                && c.config.input_size == *s
                                && (c.config.width, c.config.height) == (*w, *h)
                                && c.config.bitrate_bps == r
                        })
                        .map(|c| c.accuracy.f1),
                );
                if let Some(f1) = f1 {
                    by_rate.push((r, f1));
                }
            }
            if by_rate.len() >= 2 {
                series += 1;
                lows.push(by_rate[0].1);
                highs.push(by_rate[by_rate.len() - 1].1);
                if by_rate.last().unwrap().1 >= by_rate[0].1 {
                    rising += 1;
                }
            }
        }
        if series > 0 {
            let (lo, hi) = (
                mean(lows.into_iter()).unwrap_or(0.0),
                mean(highs.into_iter()).unwrap_or(0.0),
            );
            out.push(format!(
                "**{}** — accuracy rises with bit rate: remote F1 averages {lo:.3} at the lowest and {hi:.3} at the highest bit rate; higher in {rising} of {series} model × resolution series — {}.",
                v.name,
                verdict(hi > lo)
            ));
        }
        // Accuracy against resolution (local, largest vs smallest).
        let local: Vec<&&Cell> = cells
            .iter()
            .filter(|c| c.config.placement == Placement::Local)
            .collect();
        if let (Some(big), Some(small)) = (
            local.iter().map(|c| c.config.width).max(),
            local.iter().map(|c| c.config.width).min(),
        ) {
            if big != small {
                let at = |w: u32| {
                    mean(
                        local
                            .iter()
                            .filter(|c| c.config.width == w)
                            .map(|c| c.accuracy.f1),
                    )
                    .unwrap_or(0.0)
                };
                out.push(format!(
                    "**{}** — accuracy rises with resolution: local F1 {:.3} at width {big} vs {:.3} at width {small} — {}.",
                    v.name,
                    at(big),
                    at(small),
                    verdict(at(big) > at(small))
                ));
            }
        }
        // Staleness: how much a late result costs on this video.
        if let (Some(&f0), Some(fk)) = (
            v.reference_staleness_f1.first(),
            v.reference_staleness_f1.last(),
        ) {
            let k = v.reference_staleness_f1.len() - 1;
            let tracked = match v.reference_tracked_staleness_f1.get(k) {
                Some(&tk) => format!(
                    "; tracked forward by the on-device tracker it matches {tk:.3} ({}; mean ratio {} over lags 1..={k})",
                    ratio(tk, *fk),
                    mean_ratio(&v.reference_tracked_staleness_f1, &v.reference_staleness_f1)
                ),
                None => String::new(),
            };
            out.push(format!(
                "**{}** — late results lose accuracy: the reference itself matches {:.3} F1 when shown {k} frames ({:.2} s) late, against {f0:.3} on time{tracked}.",
                v.name,
                fk,
                k as f64 / v.fps.max(1e-9)
            ));
        }
        // Tracking late results forward, over the configurations.
        let lagged: Vec<(f64, f64)> = cells
            .iter()
            .filter_map(|c| {
                let k = c.staleness_f1.len().checked_sub(1).filter(|&k| k > 0)?;
                Some((c.staleness_f1[k], *c.tracked_staleness_f1.get(k)?))
            })
            .collect();
        if let (Some(untracked), Some(tracked)) = (
            mean(lagged.iter().map(|p| p.0)),
            mean(lagged.iter().map(|p| p.1)),
        ) {
            let k = v.reference_staleness_f1.len().saturating_sub(1);
            let wins = lagged.iter().filter(|(u, t)| t > u).count();
            out.push(format!(
                "**{}** — tracking a late result forward helps: at {k} frames late the configurations' F1 averages {tracked:.3} tracked against {untracked:.3} shown as is ({}); tracking wins in {wins} of {} configurations — {}.",
                v.name,
                ratio(tracked, untracked),
                lagged.len(),
                verdict(tracked > untracked)
            ));
        }
    }
    // Latency and energy against pixels.
    for f in &p.fits {
        let quadratic_matters = f.r2 - f.linear_r2 > 0.01;
        out.push(format!(
            "{} against pixel count: quadratic fit R² {:.4} (straight line R² {:.4}); {} ({} points from {} to {} pixels) — growth with pixels {}.",
            f.quantity,
            f.r2,
            f.linear_r2,
            if quadratic_matters { "the square term adds to the fit" } else { "it is essentially linear in pixels (quadratic in the side length)" },
            f.points.len(),
            f.points.first().map_or(0, |p| p.0),
            f.points.last().map_or(0, |p| p.0),
            verdict(f.points.windows(2).all(|w| w[1].1 >= w[0].1 * 0.95))
        ));
    }
    // Offloading vs local on this device.
    let best = |placement: Placement| {
        p.cells
            .iter()
            .filter(|c| c.config.placement == placement)
            .max_by(|a, b| a.achieved_fps.total_cmp(&b.achieved_fps))
    };
    if let (Some(l), Some(r)) = (best(Placement::Local), best(Placement::Remote)) {
        out.push(format!(
            "On {} ({}), local analysis reaches {:.2} fps at best ({} at {}x{}, {:.0} ms per frame) while offloaded configurations deliver up to {:.2} fps of encoded frames (network permitting).",
            p.device.name,
            if p.device.emulated { "emulated from this machine" } else { "this machine" },
            l.achieved_fps,
            l.config.model,
            l.config.width,
            l.config.height,
            l.latency_ms.device_compute,
            r.achieved_fps
        ));
    }
    out
}
