//! Energy: real meters where the machine has them, and the documented models otherwise.
//!
//! Radio power follows Huang et al., "A Close Examination of Performance and Power
//! Characteristics of 4G LTE Networks", MobiSys 2012 (Table 3): while transferring,
//! P = αu·(uplink Mbit/s) + αd·(downlink Mbit/s) + β, with, in mW:
//!
//! | radio | αu | αd | β |
//! |---|---|---|---|
//! | LTE | 438.39 | 51.97 | 1288.04 |
//! | WiFi | 283.17 | 137.01 | 132.86 |
//! | 3G | 868.98 | 122.12 | 817.88 |
//!
//! After the last packet LTE stays in its high-power state for the ~11.6 s tail (1060 mW),
//! so a stream of frames more often than every 11.6 s keeps the radio in the transfer state
//! all the time: its average power is P at the stream's average rates. That is how a
//! configuration's radio power is computed here (continuous use). Compute energy is the
//! device's active power × busy time plus idle power, from its declared class.

use crate::devices::DeviceClass;
use deepoffload_core::profile::{CellEnergy, EnergyModelInfo};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// (αu mW per Mbit/s, αd mW per Mbit/s, β mW) of each radio technology.
pub const RADIOS: [(&str, [f64; 3]); 3] = [
    ("lte", [438.39, 51.97, 1288.04]),
    ("wifi", [283.17, 137.01, 132.86]),
    ("3g", [868.98, 122.12, 817.88]),
];

/// LTE's high-power tail after the last packet, seconds, and its power, watts.
pub const LTE_TAIL_S: f64 = 11.576;
pub const LTE_TAIL_W: f64 = 1.060;

pub const CITATION: &str = "J. Huang, F. Qian, A. Gerber, Z. M. Mao, S. Sen, O. Spatscheck: A Close Examination of Performance and Power Characteristics of 4G LTE Networks. ACM MobiSys 2012, Table 3.";

/// Average radio power (W) while streaming at these rates continuously.
pub fn radio_power_w(radio: &str, up_mbps: f64, down_mbps: f64) -> Option<f64> {
    let [au, ad, beta] = RADIOS.iter().find(|(r, _)| *r == radio)?.1;
    Some((au * up_mbps + ad * down_mbps + beta) / 1000.0)
}

/// Energy of one burst on LTE that is followed by silence: transfer plus the full tail.
pub fn lte_burst_joules(up_bytes: f64, down_bytes: f64, up_mbps: f64, down_mbps: f64) -> f64 {
    let t_up = up_bytes * 8.0 / (up_mbps * 1e6);
    let t_down = down_bytes * 8.0 / (down_mbps * 1e6);
    let p = |up: f64, down: f64| radio_power_w("lte", up, down).expect("lte is known");
    p(up_mbps, 0.0) * t_up + p(0.0, down_mbps) * t_down + LTE_TAIL_W * LTE_TAIL_S
}

/// The energy-model description written into profiles.
pub fn model_info(backend: &str) -> EnergyModelInfo {
    EnergyModelInfo {
        backend: backend.to_string(),
        description: "compute: device active power × busy fraction + idle power (device class); radio: P = αu·up + αd·down + β at the configuration's average rates, continuous use keeps LTE out of its tail".into(),
        radio: RADIOS.iter().map(|(r, c)| (r.to_string(), *c)).collect::<BTreeMap<_, _>>(),
        citation: CITATION.into(),
    }
}

/// Power and energy per frame of a configuration run continuously on `device`, under both
/// models above: compute busy `device_compute_ms` a frame at `achieved_fps`, radio at the
/// configuration's average rates (none when it sends nothing).
pub(crate) fn cell_energy(
    device: &DeviceClass,
    backend: &str,
    device_compute_ms: f64,
    achieved_fps: f64,
    up_bps: f64,
    down_bps: f64,
) -> CellEnergy {
    let busy = (device_compute_ms * achieved_fps / 1e3).min(1.0);
    let compute_w = device.idle_w + (device.active_w - device.idle_w).max(0.0) * busy;
    let mut radio_w = BTreeMap::new();
    let mut joules_per_frame = BTreeMap::new();
    for (radio, _) in RADIOS {
        let w = if up_bps > 0.0 {
            radio_power_w(radio, up_bps / 1e6, down_bps / 1e6).expect("known radio")
        } else {
            0.0
        };
        radio_w.insert(radio.to_string(), w);
        joules_per_frame.insert(
            radio.to_string(),
            if achieved_fps > 0.0 {
                (compute_w + w) / achieved_fps
            } else {
                0.0
            },
        );
    }
    CellEnergy {
        backend: backend.to_string(),
        compute_w,
        radio_w,
        joules_per_frame,
    }
}

/// A source of measured energy.
pub trait EnergyMeter: Send {
    /// Name written next to every figure it produced.
    fn name(&self) -> &str;
    /// Joules consumed since the meter was created (monotonic).
    fn joules(&mut self) -> Option<f64>;
}

/// Intel RAPL through powercap (`/sys/class/powercap/intel-rapl:*/energy_uj`): package energy.
pub struct RaplMeter {
    zones: Vec<(PathBuf, u64)>,
    total_uj: f64,
}

impl RaplMeter {
    /// Available when at least one package zone is readable.
    pub fn open() -> Option<Self> {
        let mut zones = Vec::new();
        for entry in std::fs::read_dir("/sys/class/powercap").ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Top-level packages only (intel-rapl:0, not intel-rapl:0:0) to avoid double counting.
            if name.starts_with("intel-rapl:") && name.matches(':').count() == 1 {
                let path = entry.path().join("energy_uj");
                if let Some(v) = read_u64(&path) {
                    zones.push((path, v));
                }
            }
        }
        (!zones.is_empty()).then_some(Self {
            zones,
            total_uj: 0.0,
        })
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl EnergyMeter for RaplMeter {
    fn name(&self) -> &str {
        "rapl"
    }

    fn joules(&mut self) -> Option<f64> {
        for (path, last) in &mut self.zones {
            let now = read_u64(path)?;
            // The counter wraps; a decrease means one wrap (max_energy_range_uj is large).
            let delta = now.wrapping_sub(*last);
            self.total_uj += delta as f64;
            *last = now;
        }
        Some(self.total_uj / 1e6)
    }
}

/// A battery's power draw (`/sys/class/power_supply/BAT*/power_now`), integrated over time.
pub struct BatteryMeter {
    path: PathBuf,
    last: Instant,
    joules: f64,
}

impl BatteryMeter {
    pub fn open() -> Option<Self> {
        let dir = std::fs::read_dir("/sys/class/power_supply").ok()?;
        for entry in dir.flatten() {
            let path = entry.path().join("power_now");
            if entry.file_name().to_string_lossy().starts_with("BAT") && read_u64(&path).is_some() {
                return Some(Self {
                    path,
                    last: Instant::now(),
                    joules: 0.0,
                });
            }
        }
        None
    }
}

impl EnergyMeter for BatteryMeter {
    fn name(&self) -> &str {
        "battery"
    }

    fn joules(&mut self) -> Option<f64> {
        let microwatts = read_u64(&self.path)? as f64;
        let now = Instant::now();
        self.joules += microwatts / 1e6 * (now - self.last).as_secs_f64();
        self.last = now;
        Some(self.joules)
    }
}

/// The best real meter on this machine, if any.
pub fn open_meter() -> Option<Box<dyn EnergyMeter>> {
    if let Some(m) = RaplMeter::open() {
        return Some(Box::new(m));
    }
    BatteryMeter::open().map(|m| Box::new(m) as Box<dyn EnergyMeter>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radio_model_values() {
        // Idle-rate transfer state costs β.
        assert!((radio_power_w("lte", 0.0, 0.0).unwrap() - 1.28804).abs() < 1e-9);
        // 1 Mbit/s up on LTE: 438.39 + 1288.04 mW.
        assert!((radio_power_w("lte", 1.0, 0.0).unwrap() - 1.72643).abs() < 1e-9);
        assert!(
            (radio_power_w("wifi", 2.0, 1.0).unwrap() - (2.0 * 283.17 + 137.01 + 132.86) / 1000.0)
                .abs()
                < 1e-9
        );
        assert_eq!(radio_power_w("5g", 1.0, 1.0), None);
        // A 125 kB burst at 1 Mbit/s: 1 s at 1.726 W plus the 11.576 s tail at 1.06 W.
        let j = lte_burst_joules(125_000.0, 0.0, 1.0, 10.0);
        assert!((j - (1.72643 + 11.576 * 1.06)).abs() < 1e-6, "{j}");
    }
}
