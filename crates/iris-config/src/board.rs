//! Board profiles: per edge board (`firmware/boards/`), the model pack, threads and audio
//! settings that suit it, what runs where and the latency to expect, built into the binary.
//! `iris doctor` recognises the board it runs on by what the board calls itself and suggests
//! its profile; `iris board apply NAME` lays its settings over the settings file's. A board file
//! is checked as a profile is: its settings must be keys the settings file takes, in range.

use serde::Deserialize;

use crate::profile::merge;
use crate::Config;

const FILES: &[(&str, &str)] = &[
    ("rpi5", include_str!("../../../firmware/boards/rpi5.toml")),
    ("rk3588", include_str!("../../../firmware/boards/rk3588.toml")),
    ("jetson-orin-nano", include_str!("../../../firmware/boards/jetson-orin-nano.toml")),
    ("intel-n100", include_str!("../../../firmware/boards/intel-n100.toml")),
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub title: String,
    /// Substrings of what the board calls itself (the device tree's model on ARM, the CPU's
    /// model name on x86); any one recognises it.
    pub matches: Vec<String>,
    /// The build it needs: "aarch64" or "x86_64".
    pub arch: String,
    pub cpu: String,
    /// What of its NPU or GPU is used, and what is not and why.
    pub accelerators: String,
    /// Measured end of speech to first audio, or "not measured" and why.
    pub latency: String,
    #[serde(default)]
    pub settings: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no board profile named {name:?}; the boards are {known}")]
    Unknown { name: String, known: String },
    #[error("board profile {name}: {problem}")]
    Invalid { name: String, problem: String },
}

impl Board {
    /// Every built-in board, each checked.
    pub fn all() -> Result<Vec<Board>, BoardError> {
        FILES.iter().map(|(name, text)| Self::parse(name, text)).collect()
    }

    pub fn named(name: &str) -> Result<Board, BoardError> {
        match FILES.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Self::parse(n, text),
            None => Err(BoardError::Unknown {
                name: name.chars().take(64).collect(),
                known: FILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The board whose profile matches what this machine calls itself.
    pub fn recognise(model: &str) -> Option<Board> {
        Self::all().ok()?.into_iter().find(|b| b.matches.iter().any(|m| model.contains(m.as_str())))
    }

    pub fn parse(name: &str, text: &str) -> Result<Board, BoardError> {
        let bad = |problem: String| BoardError::Invalid { name: name.to_owned(), problem };
        let b: Board = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        if b.name != name {
            return Err(bad(format!("its file says name = {:?}", b.name)));
        }
        if !["aarch64", "x86_64"].contains(&b.arch.as_str()) {
            return Err(bad(format!("arch = {:?}; use \"aarch64\" or \"x86_64\"", b.arch)));
        }
        if b.matches.iter().any(|m| m.trim().is_empty()) || b.matches.is_empty() {
            return Err(bad("matches must name what the board calls itself".into()));
        }
        b.apply(&Config::default())?;
        Ok(b)
    }

    /// `base` with this board's settings laid over it, checked.
    pub fn apply(&self, base: &Config) -> Result<Config, BoardError> {
        let bad = |problem: String| BoardError::Invalid { name: self.name.clone(), problem };
        let mut table = toml::Table::try_from(base).map_err(|e| bad(e.to_string()))?;
        merge(&mut table, &self.settings);
        let config: Config = table.try_into().map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
        config.validate(std::path::Path::new("its settings")).map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    /// Whether `config` already has every setting this board's profile sets.
    pub fn applied_in(&self, config: &Config) -> bool {
        self.apply(config).is_ok_and(|c| c.to_toml() == config.to_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_is_valid_and_recognised_by_its_own_name() {
        let boards = Board::all().unwrap();
        assert_eq!(boards.len(), FILES.len());
        for b in &boards {
            for m in &b.matches {
                assert_eq!(Board::recognise(&format!("x {m} y")).map(|r| r.name), Some(b.name.clone()), "{m}");
            }
            let applied = b.apply(&Config::default()).unwrap();
            assert!(b.applied_in(&applied) && applied.threads > 0, "{}", b.name);
        }
        assert_eq!(Board::recognise("Raspberry Pi 5 Model B Rev 1.0").unwrap().name, "rpi5");
        assert_eq!(Board::recognise("Intel(R) N100").unwrap().name, "intel-n100");
        assert!(Board::recognise("Raspberry Pi 4 Model B Rev 1.4").is_none());
        assert!(matches!(Board::named("pi9"), Err(BoardError::Unknown { .. })));
    }

    #[test]
    fn a_board_with_a_setting_out_of_range_is_refused() {
        let text = FILES[0].1.replace("wake_runtime = \"tflite\"", "wake_runtime = \"npu\"");
        let e = Board::parse("rpi5", &text).unwrap_err().to_string();
        assert!(e.contains("wake_runtime"), "{e}");
    }
}
