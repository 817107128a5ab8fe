//! `iris models pull`: try each source in order until one yields files whose sha256 match.

use std::path::PathBuf;

use crate::convert::{self, ExternalConverter};
use crate::digest::sha256_file;
use crate::store::InstallState;
use crate::{fetch, ModelEntry, ModelsError, Progress, Source, Store};

#[derive(Debug, PartialEq, Eq)]
pub enum Pulled {
    AlreadyInstalled,
    Installed { from: String },
}

pub fn pull(store: &Store, model: &ModelEntry, external: &dyn ExternalConverter, progress: &dyn Progress) -> Result<Pulled, ModelsError> {
    if let InstallState::Installed { .. } = store.state(model) {
        match store.verify(model, false, progress) {
            Ok(()) => return Ok(Pulled::AlreadyInstalled),
            Err(e) => progress.note(&format!("{e}; fetching it again")),
        }
    }
    // Before anything is downloaded: one pull of a model at a time, and room for it.
    let _lock = crate::guard::lock(store, model)?;
    crate::guard::check_space(store, model)?;
    if crate::own::is_own(model) {
        return Err(ModelsError::Import(format!(
            "`{}` is your own model, converted from a folder: import it again with `iris models import DIR --as {}`",
            model.id, model.id
        )));
    }
    let mut attempts = Vec::new();
    for source in &model.sources {
        match try_source(store, model, source, external, progress) {
            Ok(()) => {
                if let Some(dir) = fetch::cache_of(source, &store.cache_dir()) {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Ok(Pulled::Installed { from: source.describe() });
            }
            Err(e) => {
                progress.note(&format!("{}: {e}; trying the next source", source.describe()));
                attempts.push(format!("{}: {e}", source.describe()));
            }
        }
    }
    Err(ModelsError::Fetch { id: model.id.clone(), attempts })
}

fn try_source(
    store: &Store,
    model: &ModelEntry,
    source: &Source,
    external: &dyn ExternalConverter,
    progress: &dyn Progress,
) -> Result<(), String> {
    let inputs = fetch::fetch(source, &store.cache_dir(), progress)?;
    let result = convert_and_install(store, model, &source.convert, &inputs, external, progress);
    if result.is_err() {
        // A bad download must not be reused by the next attempt.
        if let Some(dir) = fetch::cache_of(source, &store.cache_dir()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

/// Converts `inputs` into the model's files in a private staging folder, checks every sha256,
/// and only then moves them into place. Nothing unverified is left behind.
pub fn convert_and_install(
    store: &Store,
    model: &ModelEntry,
    conversion: &str,
    inputs: &[PathBuf],
    external: &dyn ExternalConverter,
    progress: &dyn Progress,
) -> Result<(), String> {
    let staging = store.staging_dir().join(format!("{}-{}", model.id, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let result = (|| {
        let outputs: Vec<PathBuf> = model.files.iter().map(|f| staging.join(&f.name)).collect();
        if conversion != "copy" {
            progress.note(&format!("converting to {} ({conversion})", model.files[0].name));
        }
        convert::run(conversion, inputs, &outputs, external).map_err(|e| e.to_string())?;
        for (file, out) in model.files.iter().zip(&outputs) {
            progress.start(&format!("sha256 {}", file.name), std::fs::metadata(out).ok().map(|m| m.len()));
            let actual = sha256_file(out, progress).map_err(|e| e.to_string())?;
            progress.finish();
            if actual != file.sha256 {
                return Err(format!("{}: sha256 mismatch: expected {}, got {}; the file was discarded", file.name, file.sha256, actual));
            }
        }
        store.install(model, &outputs).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
