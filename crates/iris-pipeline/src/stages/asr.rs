//! Speech recognition of whole utterances.
//!
//! With a VAD before it (`gated`), the stage keeps a short pre-roll while nobody speaks, so the
//! first syllable is not lost, and transcribes each utterance at its endpoint; a turn with no
//! speech gives an empty final transcript, never Whisper's inventions on silence. Without a
//! VAD it transcribes everything it heard when the turn ends.

use std::sync::Arc;
use std::time::Duration;

use iris_backend::{Asr, AsrOptions};
use iris_frames::{Envelope, Frame, KindSet, Transcript, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

const RATE: usize = 16_000;
const PRE_ROLL: usize = RATE * 3 / 10;

#[derive(Default)]
struct State {
    audio: Vec<f32>,
    in_speech: bool,
    heard_speech: bool,
    emitted: bool,
}

pub struct AsrStage {
    asr: Arc<dyn Asr>,
    options: AsrOptions,
    gated: bool,
    state: PerTurn<State>,
}

impl AsrStage {
    pub fn new(asr: Arc<dyn Asr>, options: AsrOptions, gated: bool) -> Self {
        Self { asr, options, gated, state: PerTurn::default() }
    }

    fn transcribe(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let audio = std::mem::take(&mut self.state.get(turn).audio);
        let stop = || out.is_cancelled(turn);
        let result = self.asr.transcribe(&audio, &self.options, &stop)?;
        self.state.get(turn).emitted = true;
        let frame = Frame::Transcript(Transcript { text: result.text.trim().to_owned(), is_final: true, language: result.language });
        out.emit(turn, pts, frame)
    }
}

impl Stage for AsrStage {
    fn name(&self) -> &'static str {
        "asr"
    }

    fn accepts(&self) -> KindSet {
        super::info("asr").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("asr").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let turn = env.turn;
        match env.frame {
            Frame::Audio(chunk) => {
                if chunk.sample_rate as usize != RATE {
                    return Err(StageError::Input(format!("asr needs 16 kHz audio, got {} Hz", chunk.sample_rate)));
                }
                let gated = self.gated;
                let st = self.state.get(turn);
                st.audio.extend_from_slice(&chunk.samples);
                if gated && !st.in_speech && st.audio.len() > PRE_ROLL {
                    let excess = st.audio.len() - PRE_ROLL;
                    st.audio.drain(..excess);
                }
                Ok(())
            }
            Frame::SpeechStarted => {
                let st = self.state.get(turn);
                st.in_speech = true;
                st.heard_speech = true;
                Ok(())
            }
            Frame::SpeechStopped => {
                self.state.get(turn).in_speech = false;
                self.transcribe(turn, env.pts, out)
            }
            _ => Ok(()),
        }
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let st = self.state.get(turn);
        let result = if !self.gated && !st.audio.is_empty() {
            self.transcribe(turn, pts, out)
        } else if !st.emitted {
            // Nothing worth recognising: say so with an empty final transcript.
            let frame = Frame::Transcript(Transcript { text: String::new(), is_final: true, language: None });
            out.emit(turn, pts, frame)
        } else {
            Ok(())
        };
        self.state.take(turn);
        result
    }
}
