//! The wake words' files and runtimes: the `openwakeword` (ONNX) set or the
//! `openwakeword-tflite` set, as `[audio] wake_runtime` says; a word only one set has runs there.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use iris_models::ModelEntry;

use crate::backends::Models;

pub const ONNX_SET: &str = "openwakeword";
pub const TFLITE_SET: &str = "openwakeword-tflite";
pub const TFLITE_RUNTIME: &str = "tflite";
pub const MICRO_SET: &str = "microwakeword";

/// The wake-word engine `[audio]` names, with its words.
pub fn load_engine(models: &Models, onnx: &iris_onnx::Environment) -> Result<Box<dyn iris_backend::WakeWord>> {
    let a = &models.config.audio;
    if a.wake_engine != MICRO_SET {
        return Ok(Box::new(load(models, &a.wake_words, &a.wake_runtime, onnx)?));
    }
    let entry = models.catalog.get(MICRO_SET).with_context(|| format!("the {MICRO_SET} model is not in the catalog"))?;
    let jsons = a
        .wake_words
        .iter()
        .map(|w| {
            // The model file beside each description is verified too.
            models.store.verified_file(entry, &format!("{w}.tflite"))?;
            models.store.verified_file(entry, &format!("{w}.json"))
        })
        .collect::<Result<Vec<PathBuf>, _>>()
        .with_context(|| format!("the microWakeWord models; fetch them with `iris models pull {MICRO_SET}`"))?;
    let rt = tflite_runtime(models)?;
    eprintln!("wake word: microWakeWord on TensorFlow Lite {} on {}", rt.version(), rt.delegate(1));
    let words: Vec<(String, &std::path::Path)> = a.wake_words.iter().cloned().zip(jsons.iter().map(|p| p.as_path())).collect();
    Ok(Box::new(iris_wakeword::MicroWakeWord::load(&rt, &words)?))
}

/// The file a word's classifier comes from in each set.
fn onnx_name(word: &str) -> String {
    format!("{word}_v0.1.onnx")
}

fn tflite_name(word: &str) -> String {
    format!("{word}.tflite")
}

fn has(entry: Option<&ModelEntry>, name: &str) -> bool {
    entry.is_some_and(|e| e.files.iter().any(|f| f.name == name))
}

/// Loads openWakeWord for `words`, the shared networks on `runtime` ("onnx" or "tflite").
pub fn load(models: &Models, words: &[String], runtime: &str, onnx: &iris_onnx::Environment) -> Result<iris_wakeword::OpenWakeWord> {
    let onnx_set = models.catalog.get(ONNX_SET);
    let tflite_set = models.catalog.get(TFLITE_SET);
    let prefer_tflite = runtime == "tflite";
    // (set, file) for each network: the shared ones first, then one per word.
    let mut files: Vec<(&str, String)> = if prefer_tflite {
        vec![(TFLITE_SET, "melspectrogram.tflite".into()), (TFLITE_SET, "embedding_model.tflite".into())]
    } else {
        vec![(ONNX_SET, "melspectrogram.onnx".into()), (ONNX_SET, "embedding_model.onnx".into())]
    };
    for w in words {
        let in_onnx = has(onnx_set, &onnx_name(w));
        let in_tflite = has(tflite_set, &tflite_name(w));
        files.push(match (in_onnx, in_tflite) {
            (true, true) if prefer_tflite => (TFLITE_SET, tflite_name(w)),
            (true, _) => (ONNX_SET, onnx_name(w)),
            (false, true) => (TFLITE_SET, tflite_name(w)),
            (false, false) => anyhow::bail!("the wake word {w:?} is in neither {ONNX_SET} nor {TFLITE_SET} (see `iris models list`)"),
        });
    }
    let paths = files
        .iter()
        .map(|(set, name)| {
            let entry = models.catalog.get(set).with_context(|| format!("the {set} model is not in the catalog"))?;
            models.store.verified_file(entry, name).with_context(|| format!("the wake word model; fetch it with `iris models pull {set}`"))
        })
        .collect::<Result<Vec<PathBuf>>>()?;
    let tflite = if files.iter().any(|(set, _)| *set == TFLITE_SET) { Some(tflite_runtime(models)?) } else { None };
    if let Some(rt) = &tflite {
        // Where the words run, said once in the log (the doctor says it too).
        eprintln!("wake word: TensorFlow Lite {} on {}", rt.version(), rt.delegate(1));
    }
    let runtimes = iris_wakeword::Runtimes { onnx: Some(onnx), tflite: tflite.as_ref() };
    let words: Vec<(String, &std::path::Path)> = words.iter().cloned().zip(paths[2..].iter().map(|p| p.as_path())).collect();
    Ok(iris_wakeword::OpenWakeWord::load(runtimes, &paths[0], &paths[1], &words)?)
}

/// TensorFlow Lite's C library: `IRIS_TFLITE_LIB` when set (a board's own build), else the
/// catalog's `tflite` entry; on the delegate `[tflite]` names.
pub fn tflite_runtime(models: &Models) -> Result<Arc<iris_tflite::Runtime>> {
    let path = match std::env::var_os("IRIS_TFLITE_LIB") {
        Some(p) => PathBuf::from(p),
        None => models.file(TFLITE_RUNTIME, "runtime").context("TensorFlow Lite for the .tflite wake words")?,
    };
    Ok(iris_tflite::Runtime::load_with(&path, delegate(&models.config.tflite))?)
}

/// `[tflite]` as the runtime takes it.
pub fn delegate(t: &iris_config::Tflite) -> iris_tflite::Delegate {
    if t.delegate == "external" {
        let options = t.external_options.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        iris_tflite::Delegate::External { library: PathBuf::from(&t.external_library), options }
    } else if t.delegate == "xnnpack" {
        iris_tflite::Delegate::Xnnpack { threads: t.threads }
    } else {
        iris_tflite::Delegate::Default
    }
}
