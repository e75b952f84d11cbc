//! ONNX Runtime: loading the pinned library once per process, and sessions over our graphs.

use crate::catalogue::ONNXRUNTIME_LIB;
use crate::DetectError;
use deepoffload_assets::{Request, Store};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Environment variable that names a `libonnxruntime.so` to use instead of the pinned one.
pub const ENV_ORT_LIB: &str = "DEEPOFFLOAD_ORT_LIB";

struct Loaded {
    path: PathBuf,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Loaded> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime (once per process): an explicit library path, else `DEEPOFFLOAD_ORT_LIB`,
/// else the pinned library from the asset store (fetched from the `onnxruntime` wheel if
/// needed). Returns the library path in use.
pub fn init_runtime(store: &Store, explicit: Option<&Path>) -> Result<PathBuf, DetectError> {
    if let Some(loaded) = RUNTIME.get() {
        return Ok(loaded.path.clone());
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = RUNTIME.get() {
        return Ok(loaded.path.clone());
    }
    let from_env = std::env::var_os(ENV_ORT_LIB)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let explicit = explicit.map(Path::to_path_buf).or(from_env);
    let found = store.resolve(Request {
        asset: &ONNXRUNTIME_LIB,
        explicit: explicit.as_deref(),
        flag: &format!("--ort-lib or {ENV_ORT_LIB}"),
    })?;
    let path = found.path;
    let runtime_error =
        |e: &dyn std::fmt::Display| DetectError::Runtime(format!("{}: {e}", path.display()));
    let builder = ort::init_from(&path).map_err(|e| runtime_error(&e))?;
    let env = builder
        .with_name("deepoffload")
        .build()
        .map_err(|e| runtime_error(&e))?;
    tracing::debug!("ONNX Runtime loaded from {}", path.display());
    let _ = RUNTIME.set(Loaded {
        path: path.clone(),
        env,
    });
    Ok(path)
}

/// One ONNX model ready to run on the CPU with a fixed number of threads.
pub struct OrtModel {
    session: Session,
    output_names: Vec<String>,
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel")
            .field("outputs", &self.output_names)
            .finish()
    }
}

fn ort_error(context: &str) -> impl Fn(ort::Error) -> DetectError + '_ {
    move |e| DetectError::Runtime(format!("{context}: {e}"))
}

impl OrtModel {
    /// Builds a session from ONNX bytes. `threads` = intra-op threads (0 = ONNX Runtime's
    /// default: one per core). [`init_runtime`] must have succeeded first.
    pub fn from_bytes(onnx: &[u8], threads: usize) -> Result<Self, DetectError> {
        let Some(runtime) = RUNTIME.get() else {
            return Err(DetectError::Runtime(
                "ONNX Runtime is not loaded; call init_runtime first".into(),
            ));
        };
        let e = ort_error("creating an ONNX Runtime session");
        let mut builder = Session::builder(&runtime.env)
            .map_err(&e)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|err| e(err.into()))?
            .with_inter_threads(1)
            .map_err(|err| e(err.into()))?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(|err| e(err.into()))?;
        }
        let session = builder.commit_from_memory(onnx).map_err(&e)?;
        let output_names = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(Self {
            session,
            output_names,
        })
    }

    /// Runs the model on one NCHW float input and hands every output (in graph order) to `f`
    /// without copying.
    pub fn run<R>(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        f: impl FnOnce(&[&[f32]]) -> R,
    ) -> Result<R, DetectError> {
        let e = ort_error("running the model");
        let tensor = TensorRef::from_array_view((shape.map(|d| d as i64), input)).map_err(&e)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(&e)?;
        let mut views: Vec<&[f32]> = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let (_, data) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(&e)?;
            views.push(data);
        }
        Ok(f(&views))
    }
}
