//! sha256 of files, streamed.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{ModelsError, Progress};

pub fn sha256_file(path: &Path, progress: &dyn Progress) -> Result<String, ModelsError> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelsError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelsError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress.advance(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
