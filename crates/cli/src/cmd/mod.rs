//! One module per subcommand, plus the wiring they share.

pub mod bench;
pub mod decide;
pub mod detect;
pub mod link;
pub mod models;
pub mod profile;
pub mod run;
pub mod serve;
pub mod study;
pub mod video;

use crate::args::{ModelArgs, RuntimeArgs};
use anyhow::{bail, Result};
use deepoffload_assets::Store;
use deepoffload_detect::catalogue::find_model;
use deepoffload_detect::{init_runtime, ImportedModel, ModelOverrides};
use std::process::ExitCode;

impl ModelArgs {
    /// Applies a positional model name (`models export yolov4-tiny ...`).
    pub fn named(mut self, name: Option<String>) -> Self {
        if name.is_some() {
            self.model = name;
        }
        self
    }

    /// The chosen model, or the command's default.
    pub fn name(&self) -> &str {
        self.model.as_deref().unwrap_or(self.default_model)
    }

    pub fn overrides(&self) -> ModelOverrides {
        ModelOverrides {
            cfg: self.cfg.clone(),
            weights: self.weights.clone(),
            names: self.names.clone(),
        }
    }

    /// Imports the chosen model: from the catalogue (with file overrides), or entirely from
    /// the user's own files when the name is not in the catalogue.
    pub fn load(&self, store: &Store) -> Result<ImportedModel> {
        if find_model(self.name()).is_ok() {
            return Ok(ImportedModel::load(
                store,
                self.name(),
                self.size,
                &self.overrides(),
            )?);
        }
        match (&self.cfg, &self.weights, &self.names) {
            (Some(cfg), Some(weights), Some(names)) => Ok(ImportedModel::from_files(
                self.name(),
                cfg,
                weights,
                names,
                self.size.unwrap_or(416),
            )?),
            _ => bail!("{}", find_model(self.name()).err().unwrap_or_default()),
        }
    }
}

impl RuntimeArgs {
    pub fn init(&self, store: &Store) -> Result<()> {
        init_runtime(store, self.ort_lib.as_deref())?;
        Ok(())
    }
}

/// Success when nothing failed, else exit status 1 (after all inputs were still processed).
pub fn exit_code(all_ok: bool) -> ExitCode {
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// [`prepare`] plus a detector with the chosen thread count and default thresholds.
pub fn prepare_detector(
    store: &Store,
    model: &ModelArgs,
    runtime: &RuntimeArgs,
) -> Result<(ImportedModel, deepoffload_detect::YoloDetector)> {
    let imported = prepare(store, model, runtime)?;
    let options = deepoffload_detect::DetectorOptions {
        threads: runtime.threads,
        ..Default::default()
    };
    let detector = deepoffload_detect::YoloDetector::new(&imported, options)?;
    Ok((imported, detector))
}

/// Loads the runtime and the model, reporting every missing file at once (so an offline user
/// learns all they must provide from one run).
pub fn prepare(store: &Store, model: &ModelArgs, runtime: &RuntimeArgs) -> Result<ImportedModel> {
    match (runtime.init(store), model.load(store)) {
        (Ok(()), Ok(m)) => Ok(m),
        (Err(e), Ok(_)) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => bail!("{a:#}\n\n{b:#}"),
    }
}
