//! The one way Iris replaces a file it owns (settings, the panel's passwords and tokens, the
//! model store's records): write a temporary file beside it, flush it to the disk, rename it
//! over the old one, flush the folder. A process killed at any point, a full disk or a power cut
//! leaves the old file or the new one, whole, never a mix; a failed write leaves no temporary
//! file behind. Files are the owner's only (mode 600). Each writer has its own temporary name, so two saves at once cannot interleave.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files start with this, so a start-up can tell its own leftovers.
pub const TEMP_PREFIX: &str = ".iris-tmp-";

static NEXT: AtomicU64 = AtomicU64::new(0);

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!("{TEMP_PREFIX}{name}.{}.{n}", std::process::id()))
}

/// Replaces `path` with `bytes`, whole or not at all.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_beside(path);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Settings hold a webhook token and the panel file password hashes: the owner's only,
        // from the first byte (not made private after a moment of being readable).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename itself reaches the disk with the folder's entry.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A failed write in words with the fix, for the owner: "the disk is full: free some space".
pub fn why_not_written(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "the disk is full: free some space and save again".to_owned(),
        ErrorKind::ReadOnlyFilesystem => "the folder is on a read-only disk: make it writable and save again".to_owned(),
        ErrorKind::PermissionDenied => "Iris may not write in that folder: give it back to Iris's user and save again".to_owned(),
        _ => e.to_string(),
    }
}

/// Removes temporary files that an interrupted write (a process killed mid-save) left in `dir`;
/// returns their names, for the log.
pub fn remove_leftovers(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A write that cannot finish (the target is a folder) leaves the old state and no temp.
        let folder = dir.path().join("sub");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("x"), b"x").unwrap();
        assert!(write_atomic(&folder, b"y").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn leftovers_of_a_killed_write_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{TEMP_PREFIX}config.toml.42.0")), b"half").unwrap();
        std::fs::write(dir.path().join("config.toml"), b"whole").unwrap();
        assert_eq!(remove_leftovers(dir.path()), [format!("{TEMP_PREFIX}config.toml.42.0")]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
