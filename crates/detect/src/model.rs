//! From a model name (or your own files) to an imported network and its ONNX bytes.

use crate::catalogue::{find_model, ModelSpec};
use crate::darknet::{to_onnx, Head, Network, Weights};
use crate::DetectError;
use deepoffload_assets::{AssetError, Found, Request, Store};
use prost::Message;
use std::path::{Path, PathBuf};

/// Files a user may supply instead of the catalogue's.
#[derive(Debug, Clone, Default)]
pub struct ModelOverrides {
    pub cfg: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub names: Option<PathBuf>,
}

/// The three files of a Darknet model, found or fetched.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub cfg: Found,
    pub weights: Found,
    pub names: Found,
}

impl ModelFiles {
    /// Finds (or fetches) a catalogue model's files, honouring overrides. When several are
    /// missing, the error lists all of them, not just the first.
    pub fn resolve(
        store: &Store,
        spec: &ModelSpec,
        overrides: &ModelOverrides,
    ) -> Result<Self, DetectError> {
        let get = |asset, explicit: &Option<PathBuf>, flag| {
            store.resolve(Request {
                asset,
                explicit: explicit.as_deref(),
                flag,
            })
        };
        let results = [
            get(&spec.cfg, &overrides.cfg, "--cfg"),
            get(&spec.weights, &overrides.weights, "--weights"),
            get(&spec.names, &overrides.names, "--names"),
        ];
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect();
        match results {
            [Ok(cfg), Ok(weights), Ok(names)] => Ok(Self {
                cfg,
                weights,
                names,
            }),
            _ => Err(AssetError::Missing(errors.join("\n\n")).into()),
        }
    }
}

/// A Darknet model imported at one input size.
#[derive(Debug, Clone)]
pub struct ImportedModel {
    pub name: String,
    pub network: Network,
    pub class_names: Vec<String>,
    /// The equivalent ONNX model, serialised.
    pub onnx: Vec<u8>,
}

impl ImportedModel {
    /// Input width and height in pixels.
    pub fn input_size(&self) -> (usize, usize) {
        (self.network.input.w, self.network.input.h)
    }

    pub fn heads(&self) -> Vec<Head> {
        self.network.heads()
    }

    /// Loads a catalogue model by name at `size` (its default if `None`), fetching what is
    /// missing.
    pub fn load(
        store: &Store,
        name: &str,
        size: Option<usize>,
        overrides: &ModelOverrides,
    ) -> Result<Self, DetectError> {
        let spec = find_model(name).map_err(DetectError::Usage)?;
        let files = ModelFiles::resolve(store, spec, overrides)?;
        let size = size.unwrap_or(spec.default_size);
        Self::from_files(
            name,
            &files.cfg.path,
            &files.weights.path,
            &files.names.path,
            size,
        )
    }

    /// Imports a Darknet model from its files at a square input of `size` pixels.
    pub fn from_files(
        name: &str,
        cfg: &Path,
        weights: &Path,
        names: &Path,
        size: usize,
    ) -> Result<Self, DetectError> {
        let cfg_name = cfg.display().to_string();
        let text = read_text(cfg)?;
        let network = Network::parse(&text, &cfg_name, Some((size, size)))?;
        let weights = Weights::read(weights, network.parameter_count(), &cfg_name)?;
        let class_names = read_names(names)?;
        let classes = network.heads().iter().map(|h| h.classes).max().unwrap_or(0);
        if class_names.len() < classes {
            return Err(DetectError::Usage(format!(
                "{}: lists {} class names but {cfg_name} predicts {classes} classes; pass the names file that belongs to these weights with --names",
                names.display(),
                class_names.len()
            )));
        }
        let onnx = to_onnx(&network, &weights, name, &class_names).encode_to_vec();
        Ok(Self {
            name: name.to_string(),
            network,
            class_names,
            onnx,
        })
    }
}

fn read_text(path: &Path) -> Result<String, DetectError> {
    let bytes = std::fs::read(path).map_err(|source| DetectError::Io {
        file: path.display().to_string(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| {
        DetectError::Usage(format!(
            "{}: is not a text file (a Darknet cfg or names file is plain text)",
            path.display()
        ))
    })
}

/// Reads a Darknet `.names` file: one class name per line.
pub fn read_names(path: &Path) -> Result<Vec<String>, DetectError> {
    Ok(read_text(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
