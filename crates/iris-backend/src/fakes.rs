//! Scripted fakes of every backend trait, for pipeline tests. They do no inference: each
//! returns what its script says, and records what it was asked, so a test can check both.

use std::sync::{Arc, Mutex};

use crate::{AsrOptions, AsrOutput, BackendError, ChatMessage, Flow, GenParams, GenStats, StopFlag};

/// Speech wherever the frame's mean absolute amplitude exceeds `threshold`.
pub struct FakeVad {
    pub frame_len: usize,
    pub threshold: f32,
}

impl crate::Vad for FakeVad {
    fn frame_len(&self) -> usize {
        self.frame_len
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, BackendError> {
        let mean = frame.iter().map(|s| s.abs()).sum::<f32>() / frame.len().max(1) as f32;
        Ok(if mean > self.threshold { 1.0 } else { 0.0 })
    }

    fn reset(&mut self) {}
}

/// Hears `text`. A partial decode hears one word per 500 ms of audio, so partials grow as an
/// utterance does. Records the sample count of each final (`calls`) and partial decode.
#[derive(Clone)]
pub struct FakeAsr {
    pub text: String,
    pub calls: Arc<Mutex<Vec<usize>>>,
    pub partial_calls: Arc<Mutex<Vec<usize>>>,
}

impl FakeAsr {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), calls: Arc::default(), partial_calls: Arc::default() }
    }
}

impl crate::Asr for FakeAsr {
    fn transcribe(&self, pcm: &[f32], opts: &AsrOptions, stop: &dyn StopFlag) -> Result<AsrOutput, BackendError> {
        if stop.should_stop() {
            return Err(BackendError::Cancelled);
        }
        let log = if opts.partial { &self.partial_calls } else { &self.calls };
        log.lock().map_err(|_| BackendError::Inference("poisoned".into()))?.push(pcm.len());
        let text = if opts.partial {
            self.text.split_whitespace().take(pcm.len() / 8_000).collect::<Vec<_>>().join(" ")
        } else {
            self.text.clone()
        };
        Ok(AsrOutput { text, language: Some("en".into()) })
    }
}

/// Emits its scripted tokens one by one, calling `before_token` first (a test uses it to
/// cancel mid-stream or to pace the tokens). Records the prompts it saw, and those it was
/// asked to pre-fill.
pub struct FakeLlm {
    pub tokens: Vec<String>,
    pub prompts: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
    pub prefilled: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
    pub before_token: Box<dyn FnMut(usize) + Send>,
}

impl FakeLlm {
    pub fn new(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            prompts: Arc::default(),
            prefilled: Arc::default(),
            before_token: Box::new(|_| {}),
        }
    }
}

impl crate::Llm for FakeLlm {
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        self.prompts.lock().map_err(|_| BackendError::Inference("poisoned".into()))?.push(messages.to_vec());
        let mut generated = 0;
        for (i, token) in self.tokens.iter().take(params.max_tokens).enumerate() {
            (self.before_token)(i);
            if stop.should_stop() {
                return Err(BackendError::Cancelled);
            }
            generated += 1;
            if on_text(token) == Flow::Stop {
                break;
            }
        }
        Ok(GenStats { prompt_tokens: messages.len(), prefill_tokens: messages.len(), generated_tokens: generated, ..GenStats::default() })
    }

    fn prefill(&mut self, messages: &[ChatMessage], _params: &GenParams) -> Result<usize, BackendError> {
        self.prefilled.lock().map_err(|_| BackendError::Inference("poisoned".into()))?.push(messages.to_vec());
        Ok(messages.len())
    }
}

/// `per_char` samples (at least one) of value 0.5 per character, at 16 kHz; records each
/// sentence it spoke and each language it was switched to.
#[derive(Clone, Default)]
pub struct FakeTts {
    pub spoken: Arc<Mutex<Vec<String>>>,
    pub languages: Arc<Mutex<Vec<String>>>,
    pub per_char: usize,
}

impl crate::Tts for FakeTts {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn synthesize(&mut self, text: &str, stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError> {
        if stop.should_stop() {
            return Err(BackendError::Cancelled);
        }
        self.spoken.lock().map_err(|_| BackendError::Inference("poisoned".into()))?.push(text.to_owned());
        Ok(vec![0.5; text.chars().count() * self.per_char.max(1)])
    }

    fn select_language(&mut self, language: &str) -> Result<String, BackendError> {
        self.languages.lock().map_err(|_| BackendError::Inference("poisoned".into()))?.push(language.to_owned());
        Ok(format!("fake {language}"))
    }
}

/// Describes every image by its size.
/// Describes an image by its size; with `direct`, for the question it was asked, as an answer
/// to speak as it is.
#[derive(Default)]
pub struct FakeVlm {
    pub direct: bool,
}

impl crate::Vlm for FakeVlm {
    fn describe(&mut self, image: &iris_frames::ImageFrame, question: &str) -> Result<String, BackendError> {
        if self.direct {
            return Ok(format!("You asked \"{question}\": it is {}x{} pixels.", image.width, image.height));
        }
        Ok(format!("an image of {}x{} pixels", image.width, image.height))
    }

    fn answers_directly(&self, _question: &str) -> bool {
        self.direct
    }
}

/// Hears its one word wherever a hop's peak amplitude is at or above `level` (a test marks the
/// wake word with a loud burst); 0.3 where it is at or above half of it, 0 elsewhere.
pub struct FakeWakeWord {
    pub hop_len: usize,
    pub level: f32,
}

impl crate::WakeWord for FakeWakeWord {
    fn hop_len(&self) -> usize {
        self.hop_len
    }

    fn words(&self) -> Vec<String> {
        vec!["fake_word".to_owned()]
    }

    fn scores(&mut self, hop: &[f32]) -> Result<Vec<f32>, BackendError> {
        let peak = hop.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        // A burst above half the level is a word half heard (a score part of the way).
        let score = if peak >= self.level {
            1.0
        } else if peak >= self.level / 2.0 {
            0.3
        } else {
            0.0
        };
        Ok(vec![score])
    }

    fn reset(&mut self) {}
}

/// Says a turn is complete with a fixed probability.
pub struct FakeTurnDetector(pub f32);

impl crate::TurnDetector for FakeTurnDetector {
    fn complete_probability(&mut self, _pcm: &[f32]) -> Result<f32, BackendError> {
        Ok(self.0)
    }
}

/// Always shows the same picture (a still standing in for a camera); counts how often it was asked.
pub struct StillCamera {
    pub frame: iris_frames::ImageFrame,
    pub taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl crate::Camera for StillCamera {
    fn latest(&mut self) -> Result<iris_frames::ImageFrame, BackendError> {
        self.taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.frame.clone())
    }
}
