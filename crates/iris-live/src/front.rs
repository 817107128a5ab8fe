//! The front end: wake word and voice activity on the microphone's stream, one chunk at a time.
//! It knows nothing of turns; it reports what it heard, stamped on the media clock.

use iris_backend::{BackendError, Vad, WakeWord};

use crate::controller::Secs;

const RATE: f64 = 16_000.0;

#[derive(Clone, Debug)]
pub struct FrontSettings {
    /// A wake word's score at or above this wakes the assistant.
    pub wake_threshold: f32,
    /// A score at or above this (and under `wake_threshold`) is reported as a [`Heard::Stir`];
    /// 0 reports none.
    pub hold_threshold: f32,
    /// After a detection, the same word is ignored this long (seconds).
    pub refractory: Secs,
    /// VAD probability that starts speech, and below which silence is counted.
    pub speech_threshold: f32,
    pub silence_threshold: f32,
    /// Silence that makes a pause (seconds); the controller decides whether the pause ends the turn.
    pub pause: Secs,
    /// Silence after which a [`Heard::Lull`] is reported, so the recogniser can start on the
    /// words so far before the pause is long enough to judge; at or above `pause`, none is.
    pub lull: Secs,
}

impl Default for FrontSettings {
    fn default() -> Self {
        Self {
            wake_threshold: 0.5,
            hold_threshold: 0.2,
            refractory: 2.0,
            speech_threshold: 0.5,
            silence_threshold: 0.35,
            pause: 0.2,
            lull: 0.2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Heard {
    Wake {
        at: Secs,
        word: String,
        score: f32,
    },
    /// A wake word's score rose part of the way (it may be the word, not yet certain).
    Stir {
        at: Secs,
        score: f32,
    },
    SpeechStart {
        at: Secs,
    },
    /// Speech ended at `at` (the pause was noticed `pause` later).
    SpeechEnd {
        at: Secs,
    },
    /// Speech has stopped since `at` for `lull`, not yet for `pause`: a pause may be coming.
    Lull {
        at: Secs,
    },
    /// Speech came back at `at` after a lull, before it made a pause.
    LullOver {
        at: Secs,
    },
}

pub struct FrontEnd {
    wake: Option<Box<dyn WakeWord>>,
    words: Vec<String>,
    /// Each word's threshold: its model's own, else `settings.wake_threshold`.
    thresholds: Vec<f32>,
    vad: Box<dyn Vad>,
    settings: FrontSettings,
    wake_buf: Vec<f32>,
    vad_buf: Vec<f32>,
    /// Samples the VAD has judged.
    vad_pos: u64,
    wake_pos: u64,
    in_speech: bool,
    silence_from: Option<u64>,
    /// A lull was reported in the current silence.
    lulled: bool,
    last_wake: Option<Secs>,
    /// The highest score each word reached (for false-wake reports).
    pub max_scores: Vec<f32>,
}

fn secs(samples: u64) -> Secs {
    samples as f64 / RATE
}

impl FrontEnd {
    pub fn new(wake: Option<Box<dyn WakeWord>>, vad: Box<dyn Vad>, settings: FrontSettings) -> Self {
        let words = wake.as_ref().map(|w| w.words()).unwrap_or_default();
        let max_scores = vec![0.0; words.len()];
        let own = wake.as_ref().and_then(|w| w.thresholds()).filter(|t| t.len() == words.len());
        let thresholds = own.unwrap_or_else(|| vec![settings.wake_threshold; words.len()]);
        Self {
            wake,
            words,
            thresholds,
            vad,
            settings,
            wake_buf: Vec::new(),
            vad_buf: Vec::new(),
            vad_pos: 0,
            wake_pos: 0,
            in_speech: false,
            silence_from: None,
            lulled: false,
            last_wake: None,
            max_scores,
        }
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Hears one chunk of 16 kHz mono audio.
    pub fn hear(&mut self, chunk: &[f32]) -> Result<Vec<Heard>, BackendError> {
        let mut heard = Vec::new();
        if let Some(wake) = self.wake.as_mut() {
            self.wake_buf.extend_from_slice(chunk);
            let hop = wake.hop_len();
            while self.wake_buf.len() >= hop {
                let frame: Vec<f32> = self.wake_buf.drain(..hop).collect();
                self.wake_pos += hop as u64;
                let scores = wake.scores(&frame)?;
                let at = secs(self.wake_pos);
                for (i, &score) in scores.iter().enumerate() {
                    if let Some(m) = self.max_scores.get_mut(i) {
                        *m = m.max(score);
                    }
                    let resting = self.last_wake.is_some_and(|t| at - t < self.settings.refractory);
                    if resting {
                        continue;
                    }
                    if score >= self.thresholds.get(i).copied().unwrap_or(self.settings.wake_threshold) {
                        self.last_wake = Some(at);
                        heard.push(Heard::Wake { at, word: self.words.get(i).cloned().unwrap_or_default(), score });
                    } else if self.settings.hold_threshold > 0.0 && score >= self.settings.hold_threshold {
                        heard.push(Heard::Stir { at, score });
                    }
                }
            }
        }
        self.vad_buf.extend_from_slice(chunk);
        let n = self.vad.frame_len();
        // Silences in whole VAD frames, rounded as Pipecat counts its `stop_secs` (0.2 s is six
        // of Silero's 32 ms frames, 192 ms: Smart Turn is used at that pause there).
        let frames = |secs: Secs| (secs * RATE / n as f64).round() as u64 * n as u64;
        let (pause, lull) = (frames(self.settings.pause), frames(self.settings.lull));
        while self.vad_buf.len() >= n {
            let frame: Vec<f32> = self.vad_buf.drain(..n).collect();
            let p = self.vad.speech_probability(&frame)?;
            let start = self.vad_pos;
            self.vad_pos += n as u64;
            if !self.in_speech {
                if p >= self.settings.speech_threshold {
                    self.in_speech = true;
                    self.silence_from = None;
                    heard.push(Heard::SpeechStart { at: secs(start) });
                }
            } else if p < self.settings.silence_threshold {
                let from = *self.silence_from.get_or_insert(start);
                if lull < pause && self.vad_pos - from >= lull && !self.lulled {
                    self.lulled = true;
                    heard.push(Heard::Lull { at: secs(from) });
                }
                if self.vad_pos - from >= pause {
                    self.in_speech = false;
                    self.silence_from = None;
                    self.lulled = false;
                    heard.push(Heard::SpeechEnd { at: secs(from) });
                }
            } else {
                self.silence_from = None;
                if std::mem::take(&mut self.lulled) {
                    heard.push(Heard::LullOver { at: secs(start) });
                }
            }
        }
        Ok(heard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_backend::fakes::{FakeVad, FakeWakeWord};

    #[test]
    fn hears_the_word_and_the_speech_on_the_media_clock() {
        let wake = FakeWakeWord { hop_len: 1280, level: 0.9 };
        let vad = FakeVad { frame_len: 512, threshold: 0.05 };
        let mut front = FrontEnd::new(Some(Box::new(wake)), Box::new(vad), FrontSettings::default());
        let mut audio = vec![0.0f32; 16_000];
        audio[3_000..8_000].iter_mut().for_each(|s| *s = 0.2);
        audio[4_000] = 1.0;
        let mut heard = Vec::new();
        for chunk in audio.chunks(320) {
            heard.extend(front.hear(chunk).unwrap());
        }
        assert_eq!(heard[0], Heard::SpeechStart { at: 3072.0 / 16_000.0 });
        assert!(matches!(&heard[1], Heard::Wake { at, .. } if (*at - 5120.0 / 16_000.0).abs() < 1e-9));
        assert!(matches!(heard[2], Heard::SpeechEnd { at } if (at - 8192.0 / 16_000.0).abs() < 1e-9));
        assert_eq!(front.max_scores, vec![1.0]);
    }

    /// With a lull shorter than the pause, a short silence is reported as one (and its end),
    /// a long one as a lull, then the pause; the pause comes at the same moment as without.
    #[test]
    fn a_lull_comes_before_the_pause_and_ends_if_speech_comes_back() {
        let vad = FakeVad { frame_len: 512, threshold: 0.05 };
        let settings = FrontSettings { lull: 0.1, ..FrontSettings::default() };
        let mut front = FrontEnd::new(None, Box::new(vad), settings);
        let mut audio = vec![0.0f32; 24_000];
        // Speech, 150 ms of silence (a lull), speech again, then silence for good.
        audio[3_072..8_192].iter_mut().for_each(|s| *s = 0.2);
        audio[10_752..16_384].iter_mut().for_each(|s| *s = 0.2);
        let mut heard = Vec::new();
        for chunk in audio.chunks(320) {
            heard.extend(front.hear(chunk).unwrap());
        }
        let at = |samples: f64| samples / 16_000.0;
        assert_eq!(
            heard,
            vec![
                Heard::SpeechStart { at: at(3072.0) },
                Heard::Lull { at: at(8192.0) },
                Heard::LullOver { at: at(10752.0) },
                Heard::Lull { at: at(16384.0) },
                Heard::SpeechEnd { at: at(16384.0) },
            ]
        );
    }
}
