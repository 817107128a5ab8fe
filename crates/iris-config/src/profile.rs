//! Profiles: the settings for each of Iris's uses (`home`, `vision-aid`, `kiosk`, `headless`),
//! as files in `pipelines/profiles/`, built into the binary. Choosing one (at setup or on the
//! Settings page) lays its settings over the current ones; every other setting is kept. A
//! profile is checked when it loads: its settings must be keys the settings file takes, with
//! values in range.

use serde::Deserialize;

use crate::Config;

/// The profiles, in the order the panel offers them.
const FILES: &[(&str, &str)] = &[
    ("home", include_str!("../../../pipelines/profiles/home.toml")),
    ("vision-aid", include_str!("../../../pipelines/profiles/vision-aid.toml")),
    ("kiosk", include_str!("../../../pipelines/profiles/kiosk.toml")),
    ("headless", include_str!("../../../pipelines/profiles/headless.toml")),
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub title: String,
    pub description: String,
    /// The stage pipeline it runs (`pipelines/<name>.toml`): `listen` for the room's loop, `ask`
    /// for questions from the panel and the APIs only.
    pub pipeline: String,
    /// Settings laid over the current ones, in the settings file's own shape.
    #[serde(default)]
    pub settings: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no profile named {name:?}; the profiles are {known}")]
    Unknown { name: String, known: String },
    #[error("profile {name}: {problem}")]
    Invalid { name: String, problem: String },
}

impl Profile {
    /// Every built-in profile, each checked.
    pub fn all() -> Result<Vec<Profile>, ProfileError> {
        FILES.iter().map(|(name, text)| Self::parse(name, text)).collect()
    }

    /// Whether a built-in profile has this name.
    pub fn exists(name: &str) -> bool {
        FILES.iter().any(|(n, _)| *n == name)
    }

    pub fn named(name: &str) -> Result<Profile, ProfileError> {
        match FILES.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Self::parse(n, text),
            None => Err(ProfileError::Unknown {
                name: name.chars().take(64).collect(),
                known: FILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Reads a profile file and checks it: its name, its pipeline, and its settings laid over
    /// the defaults.
    pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
        let bad = |problem: String| ProfileError::Invalid { name: name.to_owned(), problem };
        let p: Profile = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        if p.name != name {
            return Err(bad(format!("its file says name = {:?}", p.name)));
        }
        if !["listen", "ask"].contains(&p.pipeline.as_str()) {
            return Err(bad(format!("pipeline = {:?}; use \"listen\" or \"ask\"", p.pipeline)));
        }
        p.apply(&Config::default())?;
        Ok(p)
    }

    /// `base` with this profile's settings laid over it, checked, and the profile's name kept.
    pub fn apply(&self, base: &Config) -> Result<Config, ProfileError> {
        let bad = |problem: String| ProfileError::Invalid { name: self.name.clone(), problem };
        let mut table = toml::Table::try_from(base).map_err(|e| bad(e.to_string()))?;
        merge(&mut table, &self.settings);
        table.insert("profile".into(), toml::Value::String(self.name.clone()));
        let config: Config = table.try_into().map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
        config.validate(std::path::Path::new("its settings")).map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }
}

/// Lays `over` onto `base`, table by table; values replace.
pub(crate) fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}
