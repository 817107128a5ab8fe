//! What a pull checks before it starts: that no other pull of the same model is running (two
//! would share one download and one staging folder), and that the disk can hold it, since a
//! full disk mid-download leaves nothing usable.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{ModelEntry, ModelsError, Store};

/// Held while a model is being pulled; the lock file goes with it.
pub struct PullLock {
    path: PathBuf,
}

impl Drop for PullLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the model's pull lock, or says who holds it. A lock left by a process that is gone
/// (killed mid-pull) is taken over.
pub fn lock(store: &Store, model: &ModelEntry) -> Result<PullLock, ModelsError> {
    let dir = store.staging_dir();
    std::fs::create_dir_all(&dir).map_err(|e| ModelsError::io(&dir, e))?;
    let path = dir.join(format!("{}.lock", model.id));
    for _ in 0..2 {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                return Ok(PullLock { path });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path).ok().and_then(|p| p.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                        return Err(ModelsError::Fetch {
                            id: model.id.clone(),
                            attempts: vec![format!("it is already being fetched (process {pid}); wait for that to finish")],
                        });
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(e) => return Err(ModelsError::io(&path, e)),
        }
    }
    Err(ModelsError::io(&path, "cannot take the pull lock"))
}

/// Refuses a pull the disk cannot hold: the download and the installed copy can both exist
/// for a moment, so twice the catalog's size, plus a margin.
pub fn check_space(store: &Store, model: &ModelEntry) -> Result<(), ModelsError> {
    let needed: u64 = model.files.iter().map(|f| f.size).sum::<u64>().saturating_mul(2).saturating_add(16 << 20);
    let home = store.home();
    let Some(free) = free_bytes(home) else { return Ok(()) };
    if free < needed {
        return Err(ModelsError::Fetch {
            id: model.id.clone(),
            attempts: vec![format!(
                "{} has {} MB free and this needs about {} MB; free some space (or remove models you do not use) first",
                home.display(),
                free >> 20,
                needed >> 20
            )],
        });
    }
    Ok(())
}

#[repr(C)]
struct StatVfs {
    bsize: u64,
    frsize: u64,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    favail: u64,
    fsid: u64,
    flag: u64,
    namemax: u64,
    spare: [i32; 6],
}

extern "C" {
    fn statvfs(path: *const std::ffi::c_char, buf: *mut StatVfs) -> std::ffi::c_int;
}

/// Bytes an unprivileged process may still write on the filesystem holding `path` (the
/// nearest existing folder up from it), on 64-bit Linux.
pub fn free_bytes(path: &Path) -> Option<u64> {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        return None;
    }
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut buf = std::mem::MaybeUninit::<StatVfs>::zeroed();
    // SAFETY: a NUL-terminated path and a buffer of glibc's `struct statvfs` layout on LP64.
    let rc = unsafe { statvfs(c.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: filled by a successful statvfs.
    let s = unsafe { buf.assume_init() };
    Some(s.bavail.saturating_mul(s.frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileEntry;

    fn model(size: u64) -> ModelEntry {
        ModelEntry {
            id: "tiny".into(),
            task: "llm".into(),
            format: "gguf".into(),
            licence: "MIT".into(),
            description: String::new(),
            files: vec![FileEntry { name: "tiny.gguf".into(), size, sha256: "0".repeat(64) }],
            sources: Vec::new(),
            arch: None,
        }
    }

    #[test]
    fn a_second_pull_of_one_model_is_told_the_first_is_running() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path());
        let held = lock(&store, &model(1)).unwrap();
        let e = lock(&store, &model(1)).err().unwrap().to_string();
        assert!(e.contains("already being fetched"), "{e}");
        drop(held);
        assert!(lock(&store, &model(1)).is_ok(), "the lock goes with its holder");
        // Left by a process that is gone: taken over.
        std::fs::write(store.staging_dir().join("tiny.lock"), "4194303999").unwrap();
        assert!(lock(&store, &model(1)).is_ok());
    }

    #[test]
    fn a_pull_the_disk_cannot_hold_is_refused_before_it_starts() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path());
        let free = free_bytes(home.path()).expect("statvfs");
        assert!(free > 0);
        assert!(check_space(&store, &model(1 << 20)).is_ok());
        let e = check_space(&store, &model(free)).unwrap_err().to_string();
        assert!(e.contains("MB free") && e.contains("free some space"), "{e}");
    }
}
