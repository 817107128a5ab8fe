//! The installed models on disk, and their verification.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::digest::sha256_file;
use crate::{FileEntry, ModelEntry, ModelsError, Progress, Quiet};

const STAMP: &str = ".verified";

pub struct Store {
    home: PathBuf,
}

/// A file name or id that cannot escape its directory.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        // '+': libc++'s soname, which QNN's libraries name as they need it.
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

#[derive(Debug, PartialEq, Eq)]
pub enum InstallState {
    Missing,
    /// Some files are there, not all.
    Partial,
    Installed {
        bytes: u64,
    },
}

impl Store {
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into() }
    }

    /// `$IRIS_HOME`, else `$XDG_DATA_HOME/iris`, else `~/.local/share/iris`.
    pub fn from_env() -> Result<Self, ModelsError> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("IRIS_HOME")
            .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("iris")))
            .or_else(|| var("HOME").map(|h| h.join(".local/share/iris")))
            .ok_or_else(|| ModelsError::Io { path: PathBuf::from("~"), message: "no HOME; set IRIS_HOME".into() })?;
        Ok(Self::new(home))
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.home.join("models").join(id)
    }

    /// Where an entry's files go: its id's folder, or for a runtime library of another
    /// architecture (fetched to bundle it for a board) `ID.ARCH`, beside this machine's own.
    pub fn entry_dir(&self, model: &ModelEntry) -> PathBuf {
        match model.arch.as_deref() {
            Some(arch) if arch != std::env::consts::ARCH => self.model_dir(&format!("{}.{arch}", model.id)),
            _ => self.model_dir(&model.id),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.home.join("staging")
    }

    pub fn state(&self, model: &ModelEntry) -> InstallState {
        let sizes: Vec<Option<u64>> =
            model.files.iter().map(|f| std::fs::metadata(self.entry_dir(model).join(&f.name)).ok().map(|m| m.len())).collect();
        match sizes.iter().filter(|s| s.is_some()).count() {
            0 => InstallState::Missing,
            n if n == sizes.len() => InstallState::Installed { bytes: sizes.iter().flatten().sum() },
            _ => InstallState::Partial,
        }
    }

    /// The path of an installed file, checked against its sha256. The digest is remembered
    /// with the file's size, modification and change times and inode, so it is recomputed
    /// whenever any of those change: a file rewritten with its mtime put back still has a new
    /// change time (which no user-space call can set). What is trusted is a file untouched
    /// since it was last hashed whole.
    pub fn verified_file(&self, model: &ModelEntry, name: &str) -> Result<PathBuf, ModelsError> {
        let file = model
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| ModelsError::Catalog(format!("model `{}` has no file `{name}`", model.id)))?;
        self.check_file(model, file, false, &Quiet)
    }

    /// The model's first (main) file, verified.
    pub fn main_file(&self, model: &ModelEntry) -> Result<PathBuf, ModelsError> {
        self.verified_file(model, &model.files[0].name)
    }

    /// Checks every file of `model`; `force` ignores remembered digests.
    pub fn verify(&self, model: &ModelEntry, force: bool, progress: &dyn Progress) -> Result<(), ModelsError> {
        for f in &model.files {
            self.check_file(model, f, force, progress)?;
        }
        Ok(())
    }

    fn check_file(&self, model: &ModelEntry, file: &FileEntry, force: bool, progress: &dyn Progress) -> Result<PathBuf, ModelsError> {
        let dir = self.entry_dir(model);
        let path = dir.join(&file.name);
        let meta = std::fs::metadata(&path).map_err(|_| ModelsError::NotInstalled { id: model.id.clone(), path: path.clone() })?;
        let key = stamp_key(&file.name, &meta);
        let stamps = read_stamps(&dir);
        if !force && stamps.iter().any(|line| *line == format!("{key} {}", file.sha256)) {
            return Ok(path);
        }
        progress.start(&format!("verify {}", file.name), Some(meta.len()));
        let actual = sha256_file(&path, progress)?;
        progress.finish();
        let mut stamps: Vec<String> = stamps.into_iter().filter(|l| !l.starts_with(&format!("{} ", file.name))).collect();
        if actual != file.sha256 {
            // Forgotten at once, so no later load trusts it on the strength of an old check.
            let _ = write_atomic(&dir.join(STAMP), stamps.join("\n").as_bytes());
            return Err(ModelsError::Corrupt { id: model.id.clone(), path, expected: file.sha256.clone(), actual });
        }
        stamps.push(format!("{key} {}", file.sha256));
        // A stamp is only a cache: failing to write it costs a re-hash next time, nothing more.
        let _ = write_atomic(&dir.join(STAMP), stamps.join("\n").as_bytes());
        Ok(path)
    }

    /// Moves verified files from staging into place. Each file must already match its sha256.
    pub fn install(&self, model: &ModelEntry, staged: &[PathBuf]) -> Result<(), ModelsError> {
        let dir = self.entry_dir(model);
        std::fs::create_dir_all(&dir).map_err(|e| ModelsError::io(&dir, e))?;
        let mut stamps = Vec::new();
        for (file, src) in model.files.iter().zip(staged) {
            let dst = dir.join(&file.name);
            std::fs::rename(src, &dst).or_else(|_| std::fs::copy(src, &dst).map(|_| ())).map_err(|e| ModelsError::io(&dst, e))?;
            if let Ok(meta) = std::fs::metadata(&dst) {
                stamps.push(format!("{} {}", stamp_key(&file.name, &meta), file.sha256));
            }
        }
        let _ = write_atomic(&dir.join(STAMP), stamps.join("\n").as_bytes());
        Ok(())
    }

    /// Removes an installed model; returns the bytes freed.
    pub fn remove(&self, model: &ModelEntry) -> Result<u64, ModelsError> {
        let dir = self.entry_dir(model);
        let bytes = match self.state(model) {
            InstallState::Installed { bytes } => bytes,
            _ => 0,
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| ModelsError::io(&dir, e))?;
        }
        Ok(bytes)
    }
}

fn stamp_key(name: &str, meta: &std::fs::Metadata) -> String {
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        format!("{}.{:09}:{}", meta.ctime(), meta.ctime_nsec(), meta.ino())
    };
    #[cfg(not(unix))]
    let changed = "";
    format!("{name} {} {mtime}:{changed}", meta.len())
}

fn read_stamps(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(STAMP)).unwrap_or_default().lines().map(str::to_owned).collect()
}

pub use iris_config::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14.11: a file changed with its mtime put back was loaded on the strength of an
    /// old check, even after `verify` had found it corrupt.
    #[test]
    fn a_file_changed_behind_the_stamp_is_caught() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path());
        let bytes = b"weights of a tiny model".to_vec();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let model = ModelEntry {
            id: "tiny".into(),
            task: "llm".into(),
            format: "gguf".into(),
            licence: "MIT".into(),
            description: String::new(),
            files: vec![FileEntry { name: "tiny.gguf".into(), size: bytes.len() as u64, sha256 }],
            sources: Vec::new(),
            arch: None,
        };
        let staged = home.path().join("staged");
        std::fs::write(&staged, &bytes).unwrap();
        store.install(&model, &[staged]).unwrap();
        let path = store.main_file(&model).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut garbled = bytes.clone();
        garbled[3] ^= 0x20;
        std::fs::write(&path, &garbled).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        assert!(matches!(store.main_file(&model), Err(ModelsError::Corrupt { .. })), "loaded a changed file");
        assert!(matches!(store.verify(&model, true, &Quiet), Err(ModelsError::Corrupt { .. })));
        assert!(matches!(store.main_file(&model), Err(ModelsError::Corrupt { .. })), "a failed verify left it trusted");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "x y", "a\\b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        for good in ["whisper-tiny.en", "en_US-joe-medium.onnx", "model.bin"] {
            assert!(is_safe_name(good), "{good}");
        }
    }
}
