//! Model latencies: every detector the grid names, timed on this machine on the first frame of
//! the first video at the grid's input sizes and the fit sizes, scaled to the device class, and
//! fitted against pixel count; and the detectors themselves, loaded once and shared by the passes.
//!
//! It never scores accuracy and never reads past the first frame: the passes over the videos
//! measure the cells.

use super::{median, progress, ProfileRequest};
use crate::devices::DeviceClass;
use crate::energy::EnergyMeter;
use crate::grid::{Grid, ModelAt};
use crate::{fit, LabError};
use deepoffload_assets::Store;
use deepoffload_core::profile::{ModelKey, ModelLatency, PixelFit};
use deepoffload_core::RgbBuffer;
use deepoffload_detect::{Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector};
use deepoffload_video::OpenOptions;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// Detectors by model and input size, created on demand, so each network is loaded once a run.
pub(super) struct Detectors<'a> {
    store: &'a Store,
    threads: usize,
    loaded: HashMap<ModelAt, (YoloDetector, f64)>,
}

impl<'a> Detectors<'a> {
    /// Nothing loaded yet; every detector will run on `threads` ONNX Runtime threads.
    pub(super) fn new(store: &'a Store, threads: usize) -> Self {
        Self {
            store,
            threads,
            loaded: HashMap::new(),
        }
    }

    /// The detector of `key`, loaded on first use.
    pub(super) fn get(&mut self, key: &ModelAt) -> Result<&mut YoloDetector, LabError> {
        if !self.loaded.contains_key(key) {
            let model = ImportedModel::load(
                self.store,
                &key.model,
                Some(key.size as usize),
                &ModelOverrides::default(),
            )?;
            let gflops = model.network.bflops();
            let detector = YoloDetector::new(
                &model,
                DetectorOptions {
                    threads: self.threads,
                    ..Default::default()
                },
            )?;
            self.loaded.insert(key.clone(), (detector, gflops));
        }
        Ok(&mut self.loaded.get_mut(key).expect("inserted").0)
    }

    /// The network's GFLOPs at `key`'s input size, what latencies are scaled by.
    fn gflops(&mut self, key: &ModelAt) -> Result<f64, LabError> {
        self.get(key)?;
        Ok(self.loaded[key].1)
    }
}

/// One model's figures on this machine.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Median milliseconds of one detection.
    ms: f64,
    gflops: f64,
    /// Measured joules of one detection, where the machine has a meter.
    joules: Option<f64>,
}

/// Every model's latency on this machine, and how the device compares.
pub(super) struct Latencies {
    measured: BTreeMap<ModelAt, Measured>,
    /// How many times slower than this machine the device is: stages the profiler times on
    /// this machine (resize, encode) are multiplied by it.
    pub(super) speed_factor: f64,
}

impl Latencies {
    /// Times every model of the grid (and each at the fit sizes) on the first frame of the
    /// first video; `meter`, where there is one, measures their energy too.
    pub(super) fn measure(
        store: &Store,
        request: &ProfileRequest,
        detectors: &mut Detectors,
        meter: &mut Option<Box<dyn EnergyMeter>>,
    ) -> Result<Self, LabError> {
        let grid = &request.grid;
        let first = open_first_frame(store, &request.videos[0])?;
        let keys = latency_keys(grid);
        let bar = progress(keys.len() as u64, "measuring model latency".into());
        let mut measured = BTreeMap::new();
        for key in &keys {
            let gflops = detectors.gflops(key)?;
            let det = detectors.get(key)?;
            for _ in 0..2 {
                det.detect(first.view())?;
            }
            let mut times = Vec::with_capacity(grid.latency_runs);
            let before = meter.as_mut().and_then(|m| m.joules());
            for _ in 0..grid.latency_runs {
                let t = Instant::now();
                det.detect(first.view())?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let joules = match (before, meter.as_mut().and_then(|m| m.joules())) {
                (Some(a), Some(b)) if b > a => Some((b - a) / grid.latency_runs as f64),
                _ => None,
            };
            let ms = median(&mut times);
            measured.insert(key.clone(), Measured { ms, gflops, joules });
            bar.inc(1);
        }
        bar.finish_and_clear();
        let speed_factor = device_speed_factor(&request.device, &measured, detectors)?;
        Ok(Self {
            measured,
            speed_factor,
        })
    }

    /// Median milliseconds of one detection of `key` on this machine (what the server takes).
    pub(super) fn measured_ms(&self, key: &ModelAt) -> f64 {
        self.measured[key].ms
    }

    /// Milliseconds of one detection of `key` on the device: its declared latency scaled by
    /// FLOPs, else this machine's scaled by the speed factor.
    pub(super) fn device_ms(
        &self,
        device: &DeviceClass,
        key: &ModelAt,
        detectors: &mut Detectors,
    ) -> f64 {
        let mut gflops_of = |s: u32| {
            detectors
                .gflops(&ModelAt {
                    model: key.model.clone(),
                    size: s,
                })
                .unwrap_or(1.0)
        };
        device.model_ms(
            &key.model,
            key.size,
            self.measured_ms(key),
            &mut gflops_of,
            self.speed_factor,
        )
    }

    /// The profile's model table: every measured model on this machine and on the device.
    pub(super) fn models(
        &self,
        device: &DeviceClass,
        detectors: &mut Detectors,
    ) -> Vec<ModelLatency> {
        self.measured
            .iter()
            .map(|(key, m)| {
                let dms = self.device_ms(device, key, detectors);
                let device_joules = match m.joules {
                    Some(j) if device.is_this_machine() => j,
                    _ => dms / 1e3 * device.active_w,
                };
                ModelLatency {
                    key: ModelKey {
                        model: key.model.clone(),
                        input_size: key.size,
                    },
                    pixels: key.size as u64 * key.size as u64,
                    gflops: m.gflops,
                    measured_ms: m.ms,
                    device_ms: dms,
                    device_joules,
                }
            })
            .collect()
    }
}

/// The grid's models (local and device-only) and each grid model at the fit sizes, in order.
fn latency_keys(grid: &Grid) -> Vec<ModelAt> {
    let mut keys: Vec<ModelAt> = grid.models.clone();
    keys.extend(grid.device_models.iter().cloned());
    for m in &grid.models {
        for &size in &grid.latency_sizes {
            keys.push(ModelAt {
                model: m.model.clone(),
                size,
            });
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// How many times slower than this machine the device is: declared, or derived from its
/// first declared model latency, else 1.
fn device_speed_factor(
    device: &DeviceClass,
    measured: &BTreeMap<ModelAt, Measured>,
    detectors: &mut Detectors,
) -> Result<f64, LabError> {
    if let Some(f) = device.speed_factor {
        return Ok(f);
    }
    for (model, declared) in &device.models {
        let key = ModelAt {
            model: model.clone(),
            size: declared.at_size,
        };
        let ms = match measured.get(&key) {
            Some(m) => m.ms,
            None => {
                // Not measured at the declared size: scale the nearest measurement by FLOPs.
                let Some((_, m)) = measured.iter().find(|(k, _)| &k.model == model) else {
                    continue;
                };
                m.ms * detectors.gflops(&key)? / m.gflops
            }
        };
        return Ok(declared.latency_ms / ms);
    }
    Ok(1.0)
}

fn open_first_frame(store: &Store, path: &Path) -> Result<RgbBuffer, LabError> {
    let mut source = deepoffload_video::open(path, store, &OpenOptions::default())?;
    source
        .next_frame()?
        .map(|f| f.image)
        .ok_or_else(|| LabError::Usage(format!("{}: the video has no frames", path.display())))
}

/// Device latency and energy of each model against pixel count: quadratic fits with R².
pub(super) fn pixel_fits(models: &[ModelLatency]) -> Vec<PixelFit> {
    let mut fits = Vec::new();
    let mut names: Vec<&str> = models.iter().map(|m| m.key.model.as_str()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let of_model: Vec<&ModelLatency> = models.iter().filter(|m| m.key.model == name).collect();
        for (quantity, value) in [
            ("device latency_ms", 0),
            ("device energy_joules", 1),
            ("measured latency_ms", 2),
        ] {
            let points: Vec<(u64, f64)> = of_model
                .iter()
                .map(|m| {
                    (
                        m.pixels,
                        [m.device_ms, m.device_joules, m.measured_ms][value],
                    )
                })
                .collect();
            let xy: Vec<(f64, f64)> = points.iter().map(|&(p, v)| (p as f64, v)).collect();
            let (Some((c, r2)), Some((_, linear_r2))) =
                (fit::polyfit(&xy, 2), fit::polyfit(&xy, 1))
            else {
                continue;
            };
            fits.push(PixelFit {
                quantity: format!("{quantity} {name}"),
                coefficients: [c[0], c[1], c[2]],
                r2,
                linear_r2,
                points,
            });
        }
    }
    fits
}
