//! Offline bundles: the models (and, if asked, the Debian package) in a folder that can go on a
//! USB stick to a school with no internet, with a manifest of every file's size and sha256.
//!
//! Layout: `models/<id>/<file>`, the package at the top, and `iris-bundle.json` written last, so
//! a folder without it is a copy that did not finish. `iris models import` (and the Models
//! page) install from it; the manifest lets a short or missing file be named before anything is
//! hashed, and every file is still checked against the catalog's sha256 as it is installed.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::sha256_file;
use crate::store::{is_safe_name, InstallState};
use crate::{ModelEntry, ModelsError, Progress, Store};
use iris_config::write_atomic;

/// The manifest's file name, at the top of the bundle.
pub const MANIFEST: &str = "iris-bundle.json";
/// A manifest is a list of files: anything bigger is not one.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The Iris that made it, e.g. "iris 0.1.0".
    pub created_by: String,
    #[serde(default)]
    pub pack: Option<String>,
    pub models: Vec<BundledModel>,
    /// The Debian package, when the bundle carries one.
    #[serde(default)]
    pub package: Option<BundledFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledModel {
    pub id: String,
    pub files: Vec<BundledFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledFile {
    /// Relative to the bundle, with `/` between parts.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Writes `models` (each checked against its sha256 first) and `package` into `dir`. Files
/// already there whole are kept, so a second run after an interruption finishes the copy.
pub fn create(
    store: &Store,
    models: &[&ModelEntry],
    dir: &Path,
    pack: Option<&str>,
    package: Option<&Path>,
    created_by: &str,
    progress: &dyn Progress,
) -> Result<Manifest, ModelsError> {
    let missing: Vec<&str> =
        models.iter().filter(|m| !matches!(store.state(m), InstallState::Installed { .. })).map(|m| m.id.as_str()).collect();
    if !missing.is_empty() {
        return Err(ModelsError::Import(format!(
            "{} not installed here, so cannot be bundled: run `iris models pull {}` first",
            missing.join(", "),
            missing.join(" ")
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelsError::io(dir, e))?;
    // An old manifest would vouch for files being replaced: it goes first, and comes back last.
    let _ = std::fs::remove_file(dir.join(MANIFEST));
    let mut bundled = Vec::new();
    for m in models {
        store.verify(m, true, progress)?;
        let mut files = Vec::new();
        for f in &m.files {
            let rel = format!("models/{}/{}", m.id, f.name);
            copy_whole(&store.entry_dir(m).join(&f.name), &dir.join(&rel), f.size, progress)?;
            files.push(BundledFile { path: rel, size: f.size, sha256: f.sha256.clone() });
        }
        bundled.push(BundledModel { id: m.id.clone(), files });
    }
    let package = match package {
        Some(deb) => {
            let name = deb.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.ends_with(".deb") || !is_safe_name(&name) {
                return Err(ModelsError::Import(format!("{}: not a Debian package (a .deb file)", deb.display())));
            }
            let size = std::fs::metadata(deb).map_err(|e| ModelsError::io(deb, e))?.len();
            copy_whole(deb, &dir.join(&name), size, progress)?;
            Some(BundledFile { path: name.clone(), size, sha256: sha256_file(&dir.join(&name), progress)? })
        }
        None => None,
    };
    let manifest = Manifest { format: 1, created_by: created_by.to_owned(), pack: pack.map(str::to_owned), models: bundled, package };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| ModelsError::Import(e.to_string()))?;
    write_atomic(&dir.join("README.txt"), readme(&manifest).as_bytes()).map_err(|e| ModelsError::io(dir.join("README.txt"), e))?;
    write_atomic(&dir.join(MANIFEST), text.as_bytes()).map_err(|e| ModelsError::io(dir.join(MANIFEST), e))?;
    Ok(manifest)
}

/// Copies `from` to `to` through a temporary name, unless `to` is already there at `size`.
fn copy_whole(from: &Path, to: &Path, size: u64, progress: &dyn Progress) -> Result<(), ModelsError> {
    if std::fs::metadata(to).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ModelsError::io(parent, e))?;
    }
    let partial = to.with_extension("partial");
    progress.start(&format!("copy {}", from.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()), Some(size));
    std::fs::copy(from, &partial).map_err(|e| ModelsError::io(&partial, e))?;
    progress.advance(size);
    progress.finish();
    std::fs::rename(&partial, to).map_err(|e| ModelsError::io(to, e))
}

fn readme(m: &Manifest) -> String {
    let ids: Vec<&str> = m.models.iter().map(|x| x.id.as_str()).collect();
    let mut text = format!(
        "An offline bundle for Iris, made by {}.\n\nModels: {}.\n\nTo install them on a box with no internet:\n  \
         - on its panel's Models page, give this folder's path under \"Install from a folder\", or\n  \
         - run `iris models import PATH-OF-THIS-FOLDER`.\nEvery file is checked against its sha256 (listed in {MANIFEST}) as it is installed.\n",
        m.created_by,
        ids.join(", ")
    );
    if let Some(p) = &m.package {
        text.push_str(&format!("\nThe Iris package: `sudo apt-get install ./{}` installs it with its service.\n", p.path));
    }
    text
}

/// Reads `dir`'s manifest, if it has one, and checks that every file it lists is there at its
/// size (a cheap check that names what is missing before anything is hashed).
pub fn check(dir: &Path) -> Result<Option<Manifest>, ModelsError> {
    let path = dir.join(MANIFEST);
    let Ok(meta) = std::fs::metadata(&path) else { return Ok(None) };
    let bad = |why: String| ModelsError::Import(format!("{}: {why}", path.display()));
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(bad(format!("is {} bytes; a bundle's manifest is at most {MAX_MANIFEST_BYTES}", meta.len())));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ModelsError::io(&path, e))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(format!("not a bundle manifest ({e})")))?;
    if manifest.format != 1 {
        return Err(bad(format!("is format {}; this Iris reads format 1: make the bundle with this version", manifest.format)));
    }
    let files = manifest.models.iter().flat_map(|m| &m.files).chain(&manifest.package);
    for f in files {
        let rel = inside(&f.path).ok_or_else(|| bad(format!("lists {:?}, which is not a path inside the bundle", f.path)))?;
        match std::fs::metadata(dir.join(&rel)) {
            Ok(m) if m.len() == f.size => {}
            Ok(m) => {
                return Err(bad(format!("{} is {} bytes, not {}: the copy is incomplete; copy the bundle again", f.path, m.len(), f.size)))
            }
            Err(_) => return Err(bad(format!("{} is missing: copy the bundle again", f.path))),
        }
    }
    Ok(Some(manifest))
}

/// `rel` as a path that cannot leave the bundle (no root, no `..`).
fn inside(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    (!rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))).then(|| p.to_owned())
}
