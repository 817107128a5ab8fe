//! Speaks every language with the best voice there is: a Piper voice for the language when one
//! is installed, else espeak-ng's formant voice (about 100 languages), never silence. Output
//! stays at one sample rate, the first Piper voice's, so a stream never changes format.

use iris_backend::{BackendError, StopFlag, Tts};

use crate::{espeak, PiperVoice};

enum Speaker {
    Piper(usize),
    Espeak(String),
}

pub struct VoiceRouter {
    voices: Vec<(String, PiperVoice)>,
    current: Speaker,
    rate: u32,
}

impl VoiceRouter {
    /// `voices`: (name, voice) pairs, the default first. The default speaks until a language is selected.
    pub fn new(voices: Vec<(String, PiperVoice)>) -> Self {
        let rate = voices.first().map_or(22_050, |(_, v)| v.sample_rate);
        let current = if voices.is_empty() { Speaker::Espeak("en".into()) } else { Speaker::Piper(0) };
        Self { voices, current, rate }
    }
}

impl Tts for VoiceRouter {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn synthesize(&mut self, text: &str, stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError> {
        if stop.should_stop() {
            return Err(BackendError::Cancelled);
        }
        match &self.current {
            Speaker::Piper(i) => self.voices[*i].1.synthesize(text, stop),
            Speaker::Espeak(lang) => {
                let (audio, rate) = espeak::synthesize(text, lang).map_err(|e| BackendError::Inference(e.to_string()))?;
                let mut audio = iris_audio::resample(&audio, rate, self.rate);
                if !audio.is_empty() {
                    // The same pause after a sentence as the Piper voices leave.
                    audio.extend(std::iter::repeat_n(0.0, self.rate as usize / 5));
                }
                Ok(audio)
            }
        }
    }

    fn voice_name(&self) -> String {
        match &self.current {
            Speaker::Piper(i) => format!("piper {}", self.voices[*i].0),
            Speaker::Espeak(lang) => format!("espeak-ng {lang} (no Piper voice for it is installed)"),
        }
    }

    fn select_language(&mut self, language: &str) -> Result<String, BackendError> {
        let lang = language.to_lowercase();
        self.current = if let Some(i) = self.voices.iter().position(|(_, v)| v.language() == lang) {
            Speaker::Piper(i)
        } else if espeak::has_voice(&lang) {
            Speaker::Espeak(lang)
        } else {
            return Err(BackendError::Inference(format!("no voice speaks `{language}`: neither a Piper voice nor espeak-ng")));
        };
        Ok(self.voice_name())
    }
}
