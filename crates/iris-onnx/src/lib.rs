//! ONNX Runtime, loaded at run time (`ort` with `load-dynamic`).
//!
//! ONNX Runtime allows one environment per process, so it lives in a process-wide cell made on
//! first use from the library path Iris was given: the `onnxruntime` catalog entry (the shared
//! library from the `onnxruntime` pip wheel) or `ORT_DYLIB_PATH`. Every ONNX backend (Piper,
//! Silero, and later OCR and wake words) opens its sessions through [`open_session`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

mod providers;
pub use providers::{
    assignments, chosen, chosen_for, clear_model_providers, offered, placement, set_model_providers, use_providers, use_providers_for,
    Assignment, Provider,
};

pub use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
pub use ort::session::Session;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot load ONNX Runtime from {path}: {message}. Run `iris models pull onnxruntime`, or point ORT_DYLIB_PATH at libonnxruntime.so (>= 1.31)")]
    Runtime { path: PathBuf, message: String },
    #[error("ONNX Runtime was already started from {loaded}, not {wanted}")]
    OtherRuntime { loaded: PathBuf, wanted: PathBuf },
    #[error("cannot open ONNX model {path}: {message}. Check it with `iris models verify`")]
    Model { path: PathBuf, message: String },
    /// An execution provider asked for in `[onnx] providers` that cannot be used.
    #[error("{0}")]
    Provider(String),
}

static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `library` once per process.
pub fn init(library: &Path) -> Result<&'static Environment, OnnxError> {
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((loaded, env)) = ENVIRONMENT.get() {
        if loaded != library {
            return Err(OnnxError::OtherRuntime { loaded: loaded.clone(), wanted: library.into() });
        }
        return Ok(env);
    }
    if !library.is_file() {
        return Err(OnnxError::Runtime { path: library.into(), message: "no such file".into() });
    }
    let runtime_error = |message: String| OnnxError::Runtime { path: library.into(), message };
    let env = ort::init_from(library)
        .map_err(|e| runtime_error(e.to_string()))?
        .with_name("iris")
        .build()
        .map_err(|e| runtime_error(e.to_string()))?;
    let (_, env) = ENVIRONMENT.get_or_init(|| (library.to_owned(), env));
    Ok(env)
}

/// The library path: `ORT_DYLIB_PATH` when set, else `default`.
pub fn library_path(default: &Path) -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| default.to_owned())
}

/// Opens a model with `threads` intra-op threads, on the providers asked for (the CPU by default).
pub fn open_session(env: &Environment, model: &Path, threads: usize) -> Result<Session, OnnxError> {
    let fail = |message: String| OnnxError::Model { path: model.into(), message };
    if !model.is_file() {
        return Err(fail("no such file".into()));
    }
    let open = |cpu_alone: bool| -> Result<Session, OnnxError> {
        let builder = Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| fail(e.to_string()))?;
        providers::builder_with_providers(env, builder, model, cpu_alone)
            .map_err(|e| fail(format!("the providers in [onnx] providers (or [onnx.models]): {e}")))?
            .commit_from_file(model)
            .map_err(|e| fail(e.to_string()))
    };
    match (open(false), providers::plugins_before_cpu(model)) {
        (Ok(session), _) => {
            providers::record(model, &session, None);
            Ok(session)
        }
        // A plugin that took the model and then could not compile it (OpenVINO 2026.4 and
        // Silero VAD's `If` branches, whose tensors have no static rank) fails the whole
        // session; where the list goes on to the CPU provider, it runs the model, and the
        // status line and the log say so.
        (Err(OnnxError::Model { message, .. }), Some(plugins)) => {
            // OpenVINO's report ends with the operators it could not convert.
            let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let why = lines
                .iter()
                .rev()
                .find(|l| l.contains("failed for"))
                .or(lines.first())
                .map_or("no reason given", |l| l.trim_start_matches("-- "));
            eprintln!(
                "onnx: {plugins} could not build a session for {} ({why}); the CPU provider, next in its list, runs it",
                model.display()
            );
            let session = open(true)?;
            providers::record(model, &session, Some(format!("{plugins} could not compile this model")));
            Ok(session)
        }
        (Err(e), _) => Err(e),
    }
}
