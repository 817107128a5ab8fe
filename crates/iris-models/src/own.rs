//! Models of the user's own: a faster-whisper (CTranslate2) Whisper folder of any size, tiny to
//! large, converted to the ggml file both Whisper engines load and listed in
//! `$IRIS_HOME/catalog.local.toml` beside the built-in catalog, pinned by the sha256 of the
//! converted file. Existing faster-whisper users keep their models.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, FileEntry, ModelEntry};
use crate::convert::{self, ConvertError, ExternalConverter};
use crate::digest::sha256_file;
use crate::store::{is_safe_name, write_atomic};
use crate::{ModelsError, Progress, Store};

pub const LOCAL_CATALOG: &str = "catalog.local.toml";
const FILE: &str = "ggml-model.bin";

fn local_path(store: &Store) -> PathBuf {
    store.home().join(LOCAL_CATALOG)
}

fn read_local(store: &Store) -> Result<Vec<ModelEntry>, ModelsError> {
    let path = local_path(store);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Catalog::parse_local(&text, &path)?.models),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ModelsError::io(&path, e)),
    }
}

/// `catalog` with the user's own models added.
pub fn with_local(mut catalog: Catalog, store: &Store) -> Result<Catalog, ModelsError> {
    for m in read_local(store)? {
        if catalog.get(&m.id).is_some() {
            let path = local_path(store);
            return Err(ModelsError::Catalog(format!("{}: `{}` is also a built-in model; rename yours", path.display(), m.id)));
        }
        catalog.models.push(m);
    }
    Ok(catalog)
}

pub fn is_own(model: &ModelEntry) -> bool {
    model.sources.is_empty()
}

/// Converts the faster-whisper folder `dir` into the model `id` and lists it.
pub fn import_whisper(store: &Store, catalog: &Catalog, dir: &Path, id: &str, progress: &dyn Progress) -> Result<ModelEntry, ModelsError> {
    let bad = |m: String| ModelsError::Import(m);
    if !is_safe_name(id) {
        return Err(bad(format!("`{id}` cannot name a model: use letters, digits, '.', '-' or '_'")));
    }
    if catalog.get(id).is_some_and(|m| !is_own(m)) {
        return Err(bad(format!("`{id}` is a built-in model; choose another name for yours")));
    }
    let (model_bin, tokenizer) = (dir.join("model.bin"), dir.join("tokenizer.json"));
    if !model_bin.is_file() || !tokenizer.is_file() {
        return Err(bad(format!("{}: not a faster-whisper folder (it needs model.bin and tokenizer.json)", dir.display())));
    }
    let staging = store.staging_dir().join(format!("own-{id}-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| ModelsError::io(&staging, e))?;
    let result = (|| {
        let out = staging.join(FILE);
        progress.note(&format!("converting {} to {FILE}", dir.display()));
        convert::run("ct2-whisper-ggml", &[model_bin.clone(), tokenizer.clone()], &[out.clone()], &NoExternal)
            .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
        let size = std::fs::metadata(&out).map_err(|e| ModelsError::io(&out, e))?.len();
        let sha256 = sha256_file(&out, progress)?;
        let entry = ModelEntry {
            id: id.to_owned(),
            task: "asr".into(),
            format: "ggml (whisper.cpp legacy), f16".into(),
            licence: "as its source says".into(),
            description: format!(
                "your own Whisper, converted from {}",
                std::fs::canonicalize(dir).unwrap_or_else(|_| dir.into()).display()
            ),
            files: vec![FileEntry { name: FILE.into(), size, sha256 }],
            sources: Vec::new(),
            arch: None,
        };
        store.install(&entry, &[out])?;
        let mut own: Vec<ModelEntry> = read_local(store)?.into_iter().filter(|m| m.id != id).collect();
        own.push(entry.clone());
        write_local(store, &own)?;
        Ok(entry)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Drops `id` from the user's list (after `iris models remove`).
pub fn forget(store: &Store, id: &str) -> Result<(), ModelsError> {
    let own = read_local(store)?;
    if own.iter().any(|m| m.id == id) {
        write_local(store, &own.into_iter().filter(|m| m.id != id).collect::<Vec<_>>())?;
    }
    Ok(())
}

fn write_local(store: &Store, own: &[ModelEntry]) -> Result<(), ModelsError> {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut text = String::from("# Your own models, written by `iris models import DIR --as ID`.\n");
    for m in own {
        text.push_str(&format!(
            "\n[[model]]\nid = {}\ntask = {}\nformat = {}\nlicence = {}\ndescription = {}\nsource = []\n",
            q(&m.id),
            q(&m.task),
            q(&m.format),
            q(&m.licence),
            q(&m.description)
        ));
        for f in &m.files {
            text.push_str(&format!("[[model.file]]\nname = {}\nsize = {}\nsha256 = {}\n", q(&f.name), f.size, q(&f.sha256)));
        }
    }
    let path = local_path(store);
    write_atomic(&path, text.as_bytes()).map_err(|e| ModelsError::io(&path, e))
}

struct NoExternal;

impl ExternalConverter for NoExternal {
    fn convert(&self, kind: &str, _: &[PathBuf], _: &[PathBuf]) -> Result<(), ConvertError> {
        Err(ConvertError::Invalid(format!("{kind} is not a Whisper conversion")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::whisper_ggml::tests::{tiny_ct2, tiny_ct2_broken};
    use crate::Quiet;

    fn folder(root: &Path, ct2: &[u8], vocab: &str) -> PathBuf {
        let dir = root.join("faster-whisper-mine");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.bin"), ct2).unwrap();
        std::fs::write(dir.join("tokenizer.json"), vocab).unwrap();
        dir
    }

    #[test]
    fn a_faster_whisper_folder_becomes_a_listed_pinned_model() {
        let root = std::env::temp_dir().join(format!("iris-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = Store::new(root.join("home"));
        let builtin = Catalog::parse(include_str!("../../../models/catalog.toml"), Path::new("catalog.toml")).unwrap();
        let dir = folder(&root, &tiny_ct2(4, 5), r#"{"model": {"vocab": {"!": 0, "a": 1}}}"#);
        let entry = import_whisper(&store, &builtin, &dir, "whisper-mine", &Quiet).unwrap();
        let catalog = with_local(builtin.clone(), &store).unwrap();
        let listed = catalog.get("whisper-mine").expect("listed");
        assert_eq!(listed.files[0].sha256, entry.files[0].sha256);
        assert!(store.verified_file(listed, FILE).is_ok());
        // A built-in name is refused; a damaged folder leaves nothing behind.
        assert!(import_whisper(&store, &builtin, &dir, "whisper-tiny.en", &Quiet).unwrap_err().to_string().contains("built-in"));
        let broken = folder(&root.join("b"), &tiny_ct2_broken(4, 5, "encoder/conv2/weight"), r#"{"model": {"vocab": {"!": 0}}}"#);
        let err = import_whisper(&store, &builtin, &broken, "whisper-broken", &Quiet).unwrap_err().to_string();
        assert!(err.contains("encoder/conv2/weight"), "{err}");
        assert!(with_local(builtin.clone(), &store).unwrap().get("whisper-broken").is_none());
        assert!(!store.model_dir("whisper-broken").join(FILE).exists());
        forget(&store, "whisper-mine").unwrap();
        assert!(with_local(builtin, &store).unwrap().get("whisper-mine").is_none());
        let _ = std::fs::remove_dir_all(&root);
    }
}
