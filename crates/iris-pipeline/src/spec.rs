//! Pipeline files (`pipelines/*.toml`) and their checks.
//!
//! A file names its stages in order, the kinds it takes in and must give out, and per stage the
//! edge that feeds it. Loading checks it against the stages this build knows, before any model
//! is loaded: an unknown stage, or a stage that would never receive a kind it takes, is an error
//! naming the stage and the kinds.

use std::path::{Path, PathBuf};

use iris_frames::{FrameKind, KindSet};
use serde::Deserialize;

use crate::edge::Overflow;

/// What the runtime knows of a stage kind without building it.
#[derive(Clone, Copy, Debug)]
pub struct StageInfo {
    pub name: &'static str,
    pub accepts: KindSet,
    pub emits: KindSet,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("pipeline file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("pipeline {pipeline}: unknown stage `{stage}` (this build has: {known})")]
    UnknownStage { pipeline: String, stage: String, known: String },
    #[error("pipeline {pipeline}: unknown frame kind `{kind}`")]
    UnknownKind { pipeline: String, kind: String },
    #[error("pipeline {pipeline}: stage `{stage}` takes {takes} but receives only {receives}")]
    KindMismatch { pipeline: String, stage: String, takes: KindSet, receives: KindSet },
    #[error("pipeline {pipeline}: it must give {kind}, but no stage produces it")]
    MissingOutput { pipeline: String, kind: FrameKind },
    #[error("pipeline {pipeline} has no stages")]
    Empty { pipeline: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    input: Vec<String>,
    output: Vec<String>,
    #[serde(default, rename = "stage")]
    stages: Vec<RawStage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    #[serde(rename = "use")]
    kind: String,
    #[serde(default = "default_capacity")]
    capacity: usize,
    #[serde(default = "default_policy")]
    policy: Overflow,
}

fn default_capacity() -> usize {
    256
}

fn default_policy() -> Overflow {
    Overflow::Block
}

/// The edge feeding a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeSpec {
    pub capacity: usize,
    pub policy: Overflow,
}

#[derive(Clone, Debug)]
pub struct StageSpec {
    pub info: StageInfo,
    pub input: EdgeSpec,
}

/// A checked pipeline: every stage known, every stage fed.
#[derive(Clone, Debug)]
pub struct PipelineSpec {
    pub name: String,
    pub input: KindSet,
    pub output: KindSet,
    pub stages: Vec<StageSpec>,
}

impl PipelineSpec {
    pub fn load(path: &Path, known: &[StageInfo]) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
        Self::parse(&text, known).map_err(|e| match e {
            SpecError::Parse { message, .. } => SpecError::Parse { path: path.into(), message },
            other => other,
        })
    }

    pub fn parse(text: &str, known: &[StageInfo]) -> Result<Self, SpecError> {
        let raw: RawSpec =
            toml::from_str(text).map_err(|e| SpecError::Parse { path: PathBuf::from("<text>"), message: e.message().to_owned() })?;
        let kinds = |names: &[String]| -> Result<KindSet, SpecError> {
            let mut set = KindSet::EMPTY;
            for n in names {
                let k = FrameKind::from_name(n).ok_or_else(|| SpecError::UnknownKind { pipeline: raw.name.clone(), kind: n.clone() })?;
                set = set.union(KindSet::of(&[k]));
            }
            Ok(set)
        };
        let input = kinds(&raw.input)?;
        let output = kinds(&raw.output)?;
        if raw.stages.is_empty() {
            return Err(SpecError::Empty { pipeline: raw.name });
        }
        let mut stages = Vec::new();
        let mut flowing = input;
        for st in &raw.stages {
            let info = *known.iter().find(|i| i.name == st.kind).ok_or_else(|| SpecError::UnknownStage {
                pipeline: raw.name.clone(),
                stage: st.kind.clone(),
                known: known.iter().map(|i| i.name).collect::<Vec<_>>().join(", "),
            })?;
            if info.accepts.intersection(flowing).is_empty() {
                return Err(SpecError::KindMismatch {
                    pipeline: raw.name.clone(),
                    stage: st.kind.clone(),
                    takes: info.accepts,
                    receives: flowing,
                });
            }
            // A stage consumes what it takes and forwards the rest.
            flowing = flowing.minus(info.accepts).union(info.emits);
            stages.push(StageSpec { info, input: EdgeSpec { capacity: st.capacity, policy: st.policy } });
        }
        if let Some(kind) = output.minus(flowing).iter().next() {
            return Err(SpecError::MissingOutput { pipeline: raw.name, kind });
        }
        Ok(Self { name: raw.name, input, output, stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::BUILTIN;

    const GOOD: &str = r#"
        name = "t"
        input = ["audio"]
        output = ["transcript", "audio"]
        [[stage]]
        use = "vad"
        policy = "drop_oldest"
        capacity = 50
        [[stage]]
        use = "asr"
        [[stage]]
        use = "llm"
        [[stage]]
        use = "sentences"
        [[stage]]
        use = "tts"
    "#;

    #[test]
    fn a_good_pipeline_loads() {
        let spec = PipelineSpec::parse(GOOD, BUILTIN).unwrap();
        assert_eq!(spec.stages.len(), 5);
        assert_eq!(spec.stages[0].input, EdgeSpec { capacity: 50, policy: Overflow::DropOldest });
    }

    #[test]
    fn an_unknown_stage_is_named() {
        let text = GOOD.replace("use = \"llm\"", "use = \"llama\"");
        let err = PipelineSpec::parse(&text, BUILTIN).unwrap_err().to_string();
        assert!(err.contains("unknown stage `llama`"), "{err}");
    }

    #[test]
    fn a_kind_mismatch_is_named() {
        // The splitter takes text deltas; first in line it receives only audio.
        let text = GOOD.replace("use = \"vad\"", "use = \"sentences\"");
        let err = PipelineSpec::parse(&text, BUILTIN).unwrap_err().to_string();
        assert!(err.contains("stage `sentences` takes"), "{err}");
        let text = "name = \"x\"\ninput = [\"text_delta\"]\noutput = []\n[[stage]]\nuse = \"tts\"\n";
        let err = PipelineSpec::parse(text, BUILTIN).unwrap_err().to_string();
        assert_eq!(err, "pipeline x: stage `tts` takes [transcript, sentence] but receives only [text_delta]");
    }

    #[test]
    fn a_missing_output_is_named() {
        let text = "name = \"x\"\ninput = [\"audio\"]\noutput = [\"sentence\"]\n[[stage]]\nuse = \"asr\"\n";
        let err = PipelineSpec::parse(text, BUILTIN).unwrap_err().to_string();
        assert!(err.contains("must give sentence"), "{err}");
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let err = PipelineSpec::parse("name = \"x\"\ninput = [\"smell\"]\noutput = []\n[[stage]]\nuse = \"asr\"", BUILTIN);
        assert!(err.unwrap_err().to_string().contains("unknown frame kind `smell`"));
        let err = PipelineSpec::parse(&GOOD.replace("capacity = 50", "capacty = 50"), BUILTIN);
        assert!(matches!(err, Err(SpecError::Parse { .. })));
    }
}
