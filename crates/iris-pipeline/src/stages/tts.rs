//! Speech synthesis, one sentence at a time, as 20 ms audio chunks. The voice follows the
//! language the recogniser heard (transcript frames carry it).

use std::time::Duration;

use iris_backend::Tts;
use iris_frames::{AudioChunk, Envelope, Frame, KindSet};

use crate::stage::{Output, Stage, StageError};

pub struct TtsStage {
    tts: Box<dyn Tts>,
    language: Option<String>,
}

impl TtsStage {
    pub fn new(tts: Box<dyn Tts>) -> Self {
        Self { tts, language: None }
    }
}

impl Stage for TtsStage {
    fn name(&self) -> &'static str {
        "tts"
    }

    fn accepts(&self) -> KindSet {
        super::info("tts").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("tts").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let turn = env.turn;
        if let Frame::Transcript(t) = &env.frame {
            if let Some(lang) = t.language.as_deref().filter(|l| t.is_final && self.language.as_deref() != Some(*l)) {
                self.tts.select_language(lang)?;
                self.language = Some(lang.to_owned());
            }
            return out.send(env);
        }
        let Frame::Sentence(text) = &env.frame else { return Ok(()) };
        let stop = || out.is_cancelled(turn);
        let samples = self.tts.synthesize(text, &stop)?;
        let rate = self.tts.sample_rate();
        let pts = env.pts;
        out.send(env)?;
        let chunk = (rate as usize / 50).max(1);
        for (i, piece) in samples.chunks(chunk).enumerate() {
            if out.is_cancelled(turn) {
                break;
            }
            let at = pts + Duration::from_secs_f64((i * chunk) as f64 / f64::from(rate));
            out.emit(turn, at, Frame::Audio(AudioChunk::new(rate, piece.to_vec())))?;
        }
        Ok(())
    }
}
