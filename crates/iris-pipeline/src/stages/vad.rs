//! Voice activity: marks where speech starts and stops, and passes the audio on.

use std::time::Duration;

use iris_backend::Vad;
use iris_frames::{Envelope, Frame, KindSet, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

#[derive(Clone, Copy, Debug)]
pub struct VadSettings {
    /// Probability at or above which a frame is speech.
    pub start_threshold: f32,
    /// Probability below which a frame counts towards the trailing silence.
    pub stop_threshold: f32,
    /// Trailing silence that ends an utterance (the endpoint).
    pub min_silence: Duration,
}

impl Default for VadSettings {
    fn default() -> Self {
        Self { start_threshold: 0.5, stop_threshold: 0.35, min_silence: Duration::from_millis(500) }
    }
}

#[derive(Default)]
struct State {
    pending: Vec<f32>,
    samples_seen: u64,
    in_speech: bool,
    silence_samples: u64,
}

pub struct VadStage {
    vad: Box<dyn Vad>,
    settings: VadSettings,
    state: PerTurn<State>,
}

const RATE: u32 = 16_000;

impl VadStage {
    pub fn new(vad: Box<dyn Vad>, settings: VadSettings) -> Self {
        Self { vad, settings, state: PerTurn::default() }
    }
}

fn pts_of(samples: u64) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(RATE))
}

impl Stage for VadStage {
    fn name(&self) -> &'static str {
        "vad"
    }

    fn accepts(&self) -> KindSet {
        super::info("vad").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("vad").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let Frame::Audio(chunk) = &env.frame else { return Ok(()) };
        if chunk.sample_rate != RATE {
            return Err(StageError::Input(format!("vad needs 16 kHz audio, got {} Hz", chunk.sample_rate)));
        }
        let turn = env.turn;
        let frame_len = self.vad.frame_len();
        let fresh = self.state.get(turn).samples_seen == 0 && self.state.get(turn).pending.is_empty();
        if fresh {
            self.vad.reset();
        }
        self.state.get(turn).pending.extend_from_slice(&chunk.samples);
        let min_silence = (self.settings.min_silence.as_secs_f64() * f64::from(RATE)) as u64;
        loop {
            let st = self.state.get(turn);
            if st.pending.len() < frame_len {
                break;
            }
            let frame: Vec<f32> = st.pending.drain(..frame_len).collect();
            let p = self.vad.speech_probability(&frame)?;
            let st = self.state.get(turn);
            let frame_start = st.samples_seen;
            st.samples_seen += frame_len as u64;
            if !st.in_speech && p >= self.settings.start_threshold {
                st.in_speech = true;
                st.silence_samples = 0;
                out.emit(turn, pts_of(frame_start), Frame::SpeechStarted)?;
            } else if st.in_speech {
                if p < self.settings.stop_threshold {
                    st.silence_samples += frame_len as u64;
                    if st.silence_samples >= min_silence {
                        st.in_speech = false;
                        let at = pts_of(st.samples_seen);
                        out.emit(turn, at, Frame::SpeechStopped)?;
                    }
                } else {
                    st.silence_samples = 0;
                }
            }
        }
        out.send(env)
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let st = self.state.take(turn);
        if st.in_speech {
            out.emit(turn, pts, Frame::SpeechStopped)?;
        }
        Ok(())
    }
}
