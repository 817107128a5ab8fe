//! The built-in stages, each generic over one backend trait.

mod asr;
pub mod ear;
mod llm;
mod look;
mod sentences;
mod stop;
mod tts;
mod vad;

pub use asr::{AsrSettings, AsrStage};
pub use llm::{LlmSettings, LlmStage};
pub use look::asks_to_look;
pub use sentences::{SentenceSplitter, SentenceStage};
pub use stop::asks_to_stop;
pub use tts::TtsStage;
pub use vad::{VadSettings, VadStage};

use iris_frames::{FrameKind as K, KindSet};

use crate::spec::StageInfo;

/// The stage kinds this build knows, with the kinds each takes and gives.
pub const BUILTIN: &[StageInfo] = &[
    StageInfo { name: "vad", accepts: KindSet::of(&[K::Audio]), emits: KindSet::of(&[K::Audio, K::SpeechStarted, K::SpeechStopped]) },
    StageInfo {
        name: "asr",
        accepts: KindSet::of(&[K::Audio, K::SpeechStarted, K::SpeechStopped]),
        emits: KindSet::of(&[K::Transcript, K::SpeechStarted, K::SpeechStopped]),
    },
    StageInfo {
        name: "llm",
        accepts: KindSet::of(&[K::Transcript, K::UserText, K::Image]),
        emits: KindSet::of(&[K::Transcript, K::TextDelta]),
    },
    StageInfo { name: "sentences", accepts: KindSet::of(&[K::TextDelta]), emits: KindSet::of(&[K::TextDelta, K::Sentence]) },
    StageInfo {
        name: "tts",
        accepts: KindSet::of(&[K::Sentence, K::Transcript]),
        emits: KindSet::of(&[K::Sentence, K::Audio, K::Transcript]),
    },
];

pub(crate) fn info(name: &str) -> StageInfo {
    *BUILTIN.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("builtin stage {name}"))
}
