//! Device classes: declared speed and power of devices other than this machine.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The device classes shipped with deepoffload (`configs/devices.toml`).
pub const BUILT_IN: &str = include_str!("../../../configs/devices.toml");

/// A declared model latency on a device.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeclaredModel {
    pub latency_ms: f64,
    pub at_size: u32,
}

/// One device class.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeviceClass {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub models: BTreeMap<String, DeclaredModel>,
    /// How many times slower than this machine for work not declared per model.
    pub speed_factor: Option<f64>,
    /// Power while computing, watts.
    pub active_w: f64,
    /// Power otherwise (radio and screen excluded), watts.
    pub idle_w: f64,
}

impl DeviceClass {
    /// The local detector as this device would run it: this machine's detector as is, or padded
    /// to the device's time for the model (its declared latency scaled by FLOPs, or this
    /// machine's measured time × `speed_factor`). Returns it with the device's label for records.
    pub fn emulate(
        &self,
        model: &deepoffload_detect::ImportedModel,
        mut detector: Box<dyn deepoffload_detect::Detector>,
    ) -> Result<(Box<dyn deepoffload_detect::Detector>, String), String> {
        if self.is_this_machine() {
            return Ok((detector, self.name.clone()));
        }
        let size = model.input_size().0 as u32;
        let ms = match self.models.get(&model.name) {
            Some(declared) => {
                let cfg = &model.network.source;
                let text = std::fs::read_to_string(cfg).map_err(|e| format!("{cfg}: {e}"))?;
                let at = deepoffload_detect::darknet::Network::parse(
                    &text,
                    cfg,
                    Some((declared.at_size as usize, declared.at_size as usize)),
                )
                .map_err(|e| e.to_string())?;
                declared.latency_ms * model.network.bflops() / at.bflops()
            }
            None => {
                let Some(factor) = self.speed_factor else {
                    return Err(format!("device {} declares no latency for {} and no speed_factor: add one to its devices file", self.name, model.name));
                };
                let probe =
                    deepoffload_core::RgbBuffer::new(size, size).map_err(|e| e.to_string())?;
                detector.detect(probe.view()).map_err(|e| e.to_string())?;
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    detector.detect(probe.view()).map_err(|e| e.to_string())?;
                }
                t.elapsed().as_secs_f64() * 1e3 / 3.0 * factor
            }
        };
        let label = format!("{} (emulated)", self.name);
        tracing::info!("emulating {label}: local inference padded to {ms:.0} ms");
        Ok((
            Box::new(deepoffload_detect::PaddedDetector::new(
                detector,
                std::time::Duration::from_secs_f64(ms / 1e3),
                &self.name,
            )),
            label,
        ))
    }
}

#[derive(Debug, Deserialize)]
struct DeviceFile {
    device: Vec<DeviceClass>,
}

/// Parses a devices TOML file.
pub fn parse_devices(text: &str, source: &str) -> Result<Vec<DeviceClass>, String> {
    let file: DeviceFile = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
    for d in &file.device {
        if d.active_w < 0.0 || d.idle_w < 0.0 || d.speed_factor.is_some_and(|f| f <= 0.0) {
            return Err(format!(
                "{source}: device `{}` has a negative power or a non-positive speed factor",
                d.name
            ));
        }
        if let Some((m, bad)) = d
            .models
            .iter()
            .find(|(_, m)| m.latency_ms <= 0.0 || m.at_size == 0)
        {
            return Err(format!(
                "{source}: device `{}` declares model `{m}` with latency {} ms at size {}",
                d.name, bad.latency_ms, bad.at_size
            ));
        }
    }
    Ok(file.device)
}

/// Finds a device by name among the built-in classes and an optional user file.
pub fn find_device(name: &str, user_file: Option<&std::path::Path>) -> Result<DeviceClass, String> {
    let mut all = parse_devices(BUILT_IN, "configs/devices.toml")?;
    if let Some(path) = user_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mine = parse_devices(&text, &path.display().to_string())?;
        all.retain(|d| !mine.iter().any(|m| m.name == d.name));
        all.extend(mine);
    }
    let names: Vec<String> = all.iter().map(|d| d.name.clone()).collect();
    all.into_iter().find(|d| d.name == name).ok_or_else(|| {
        format!(
            "unknown device `{name}`; known: {} (declare others with --devices FILE)",
            names.join(", ")
        )
    })
}

impl DeviceClass {
    /// Whether this is the measuring machine itself (nothing scaled).
    pub fn is_this_machine(&self) -> bool {
        self.name == "this-machine"
    }

    /// Latency of `model` at `size` on this device, from its declaration (scaled by FLOPs)
    /// or from this machine's measurement times the speed factor.
    pub fn model_ms(
        &self,
        model: &str,
        size: u32,
        measured_ms: f64,
        mut gflops: impl FnMut(u32) -> f64,
        speed_factor: f64,
    ) -> f64 {
        match self.models.get(model) {
            Some(d) => d.latency_ms * gflops(size) / gflops(d.at_size),
            None => measured_ms * speed_factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_classes_parse_and_scale() {
        let phone = find_device("oneplus-3t", None).unwrap();
        assert_eq!(phone.models["yolov3-tiny"].latency_ms, 600.0);
        // Twice the FLOPs, twice the time.
        let ms = phone.model_ms(
            "yolov3-tiny",
            608,
            0.0,
            |s| if s == 608 { 2.0 } else { 1.0 },
            1.0,
        );
        assert_eq!(ms, 1200.0);
        assert!(find_device("this-machine", None).unwrap().is_this_machine());
        assert!(find_device("toaster", None)
            .unwrap_err()
            .contains("known: this-machine"));
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(parse_devices("[[device]]\nname = 'x'\n", "f")
            .unwrap_err()
            .contains("active_w"));
        let bad = "[[device]]\nname='x'\nactive_w=1\nidle_w=1\n[device.models.m]\nlatency_ms=-1\nat_size=416\n";
        assert!(parse_devices(bad, "f").unwrap_err().contains("latency -1"));
    }
}
