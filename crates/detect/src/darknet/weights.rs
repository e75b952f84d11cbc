//! Darknet `.weights` files: a small header, then every convolution's floats in cfg order.

use super::network::{LayerKind, Network};
use super::DarknetError;
use std::io::Read;
use std::path::Path;

/// The version header at the start of a weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsHeader {
    pub major: i32,
    pub minor: i32,
    pub revision: i32,
    /// Images seen in training.
    pub seen: u64,
    /// Header length in bytes (16 or 20, depending on the version).
    pub len: usize,
}

impl WeightsHeader {
    /// Reads the header as Darknet does (`parser.c:load_weights_upto`): `seen` is 64-bit from
    /// version 0.2 on.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let int = |i: usize| -> Option<i32> {
            Some(i32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
        };
        let (major, minor, revision) = (int(0)?, int(4)?, int(8)?);
        let wide = (major * 10 + minor) >= 2 && major < 1000 && minor < 1000;
        let (seen, len) = if wide {
            (u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?), 20)
        } else {
            (int(12)? as u32 as u64, 16)
        };
        Some(Self {
            major,
            minor,
            revision,
            seen,
            len,
        })
    }
}

/// All parameters of a network, in file order.
#[derive(Debug, Clone)]
pub struct Weights {
    pub header: WeightsHeader,
    pub values: Vec<f32>,
}

impl Weights {
    /// Reads a weights file and checks that it holds exactly `parameters` floats, naming the
    /// expected and actual sizes otherwise (a truncated download, or weights of another cfg).
    pub fn read(path: &Path, parameters: usize, cfg_name: &str) -> Result<Weights, DarknetError> {
        let file = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| DarknetError::Io {
                file: file.clone(),
                source,
            })?;
        Self::from_bytes(&bytes, parameters, &file, cfg_name)
    }

    /// As [`Weights::read`], from bytes already in memory.
    pub fn from_bytes(
        bytes: &[u8],
        parameters: usize,
        file: &str,
        cfg_name: &str,
    ) -> Result<Weights, DarknetError> {
        let header = WeightsHeader::parse(bytes).ok_or_else(|| DarknetError::Weights {
            file: file.into(),
            message: format!(
                "{} bytes is too short for a Darknet weights header (16 or 20 bytes)",
                bytes.len()
            ),
        })?;
        let expected = parameters.saturating_mul(4).saturating_add(header.len);
        if bytes.len() != expected {
            let hint = if bytes.len() < expected {
                "the file is truncated or belongs to a smaller network"
            } else {
                "the file belongs to a larger network"
            };
            return Err(DarknetError::Weights {
                file: file.into(),
                message: format!(
                    "size is {} bytes, but {cfg_name} needs {expected} bytes ({}-byte header + {parameters} parameters × 4): {hint}; use the weights that were trained with this cfg",
                    bytes.len(),
                    header.len
                ),
            });
        }
        let values = bytes[header.len..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Weights { header, values })
    }

    /// Deterministic pseudo-random weights for a network whose real weights are not available
    /// (shape checks, graph tests): unit batch-norm statistics and convolution weights scaled by
    /// fan-in, so activations stay finite through deep networks. Never used for detection.
    pub fn synthetic(network: &Network, seed: u64) -> Weights {
        // A 64-bit LCG (Knuth's MMIX constants): enough to avoid degenerate tensors.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let mut values = Vec::with_capacity(network.parameter_count());
        for layer in &network.layers {
            if let LayerKind::Convolutional {
                filters,
                size,
                groups,
                batch_normalize,
                ..
            } = layer.kind
            {
                let fan_in = (layer.input.c / groups) * size * size;
                values.extend((0..filters).map(|_| 0.01 * uniform()));
                if batch_normalize {
                    values.extend(std::iter::repeat_n(1.0, filters)); // scales
                    values.extend(std::iter::repeat_n(0.0, filters)); // rolling mean
                    values.extend(std::iter::repeat_n(1.0, filters)); // rolling variance
                }
                let bound = (3.0 / fan_in as f32).sqrt();
                values.extend((0..filters * fan_in).map(|_| bound * uniform()));
            }
        }
        Weights {
            header: WeightsHeader {
                major: 0,
                minor: 2,
                revision: 0,
                seen: 0,
                len: 20,
            },
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(major: i32, minor: i32, params: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(major.to_le_bytes());
        b.extend(minor.to_le_bytes());
        b.extend(0i32.to_le_bytes());
        if major * 10 + minor >= 2 {
            b.extend(7u64.to_le_bytes());
        } else {
            b.extend(7u32.to_le_bytes());
        }
        for i in 0..params {
            b.extend((i as f32).to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_both_header_versions() {
        let w = Weights::from_bytes(&file(0, 2, 3), 3, "w", "c").unwrap();
        assert_eq!(w.header.len, 20);
        assert_eq!(w.values, vec![0.0, 1.0, 2.0]);
        let w = Weights::from_bytes(&file(0, 1, 3), 3, "w", "c").unwrap();
        assert_eq!(w.header.len, 16);
        assert_eq!(w.header.seen, 7);
    }

    #[test]
    fn wrong_size_names_expected_and_actual() {
        let mut b = file(0, 2, 3);
        b.pop();
        let e = Weights::from_bytes(&b, 3, "x.weights", "x.cfg")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("31 bytes") && e.contains("needs 32 bytes"),
            "{e}"
        );
        let e = Weights::from_bytes(&b[..10], 3, "x.weights", "x.cfg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("too short"), "{e}");
    }
}
