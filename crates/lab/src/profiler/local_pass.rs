//! The local pass: one model at one resolution run on the resized raw evaluation frames, as the
//! device would analyse them, giving one cell per frame rate of the grid.
//!
//! It never encodes: local cells send nothing, so their bytes, bit rate and radio power are 0;
//! and it never decides whether a pass is needed (the checkpoint does, in `run_profile`).

use super::first_pass::VideoPass;
use super::{median, Profiler};
use crate::energy;
use crate::grid::ModelAt;
use crate::LabError;
use deepoffload_core::profile::{Cell, CellLatency};
use deepoffload_core::{Config, Placement};
use deepoffload_detect::Detector;
use deepoffload_video::Resizer;
use std::collections::BTreeMap;
use std::time::Instant;

/// The configuration of model `m` analysing `width`×`height` frames on the device at `fps`.
pub(super) fn local_config(m: &ModelAt, width: u32, height: u32, fps: f64) -> Config {
    Config {
        placement: Placement::Local,
        model: m.model.clone(),
        input_size: m.size,
        width,
        height,
        fps,
        bitrate_bps: 0,
    }
}

/// Runs `m` on the evaluation frames resized to `(w, h)` and makes the cell of each of
/// `configs` (the same model and resolution at each frame rate).
pub(super) fn local_pass(
    lab: &mut Profiler,
    pass: &VideoPass,
    resizer: &mut Resizer,
    m: &ModelAt,
    (w, h): (u32, u32),
    configs: &[Config],
) -> Result<Vec<Cell>, LabError> {
    let (mut predictions, mut resize_ms) = (BTreeMap::new(), Vec::new());
    let det = lab.detectors.get(m)?;
    for (&i, image) in &pass.eval_images {
        let t = Instant::now();
        let scaled = resizer.resize(image.view(), w, h)?;
        resize_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let out = det.detect(scaled.view())?;
        predictions.insert(i, pass.to_source(out.detections, (w, h)));
    }
    let scores = pass.score(&predictions, lab.request.grid.max_lag);
    let device = &lab.request.device;
    let inference_dev = lab.latencies.device_ms(device, m, &mut lab.detectors);
    let resize = median(&mut resize_ms);
    let cells = configs
        .iter()
        .map(|config| {
            let device_compute = resize * lab.latencies.speed_factor + inference_dev;
            // A device slower than the frame rate analyses fewer frames.
            let achieved = config.fps.min(pass.profile.fps).min(1e3 / device_compute);
            Cell {
                video: pass.profile.name.clone(),
                scale: None,
                frames_analysed: pass.frames_at(achieved),
                config: config.clone(),
                accuracy: scores.accuracy,
                map50: scores.map50,
                staleness_f1: scores.staleness.clone(),
                tracked_staleness_f1: scores.tracked_staleness.clone(),
                frames_skipped: 0,
                achieved_fps: achieved,
                bytes_per_frame: 0.0,
                actual_bps: 0.0,
                latency_ms: CellLatency {
                    resize,
                    encode: 0.0,
                    decode: 0.0,
                    inference: lab.latencies.measured_ms(m),
                    device_compute,
                },
                energy: energy::cell_energy(
                    device,
                    &lab.backend,
                    device_compute,
                    achieved,
                    0.0,
                    0.0,
                ),
            }
        })
        .collect();
    Ok(cells)
}
