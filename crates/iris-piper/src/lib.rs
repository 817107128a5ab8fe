//! Piper (VITS) voices on ONNX Runtime, with espeak-ng phonemes.
//!
//! A voice is an `.onnx` model and its `.onnx.json` config: the espeak-ng voice to phonemise
//! with, the `phoneme_id_map`, the sample rate and the noise/length scales. Weights are loaded
//! once per [`PiperVoice`]; synthesis is one ONNX run per sentence.

pub mod espeak;
mod router;

pub use router::VoiceRouter;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iris_backend::{BackendError, StopFlag, Tts};
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum PiperError {
    #[error("cannot read voice config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    Onnx(#[from] iris_onnx::OnnxError),
    #[error(transparent)]
    Espeak(#[from] espeak::EspeakError),
    #[error("piper inference failed: {0}")]
    Inference(String),
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    inference: InferenceConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    language: Option<LanguageConfig>,
}

#[derive(Debug, Deserialize)]
struct LanguageConfig {
    family: String,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct InferenceConfig {
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
}

/// What the user may change about a voice.
#[derive(Clone, Copy, Debug)]
pub struct VoiceSettings {
    /// 1.0 is the voice's own pace; 1.2 is 20 % faster.
    pub rate: f32,
    /// Peak level of each sentence, 0..1.
    pub volume: f32,
    /// Silence after each sentence.
    pub sentence_silence_s: f32,
    pub threads: usize,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self { rate: 1.0, volume: 0.9, sentence_silence_s: 0.2, threads: 2 }
    }
}

pub struct PiperVoice {
    session: Session,
    espeak_voice: String,
    language: String,
    ids: HashMap<char, Vec<i64>>,
    sample_rate: u32,
    scales: InferenceConfig,
    settings: VoiceSettings,
}

const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

impl PiperVoice {
    /// Loads `model` and the config beside it (`model` + `.json`).
    pub fn load(runtime: &ort::environment::Environment, model: &Path, settings: VoiceSettings) -> Result<Self, PiperError> {
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        let bad = |message: String| PiperError::Config { path: config_path.clone(), message };
        let text = std::fs::read_to_string(&config_path).map_err(|e| bad(e.to_string()))?;
        let raw: RawConfig = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut ids = HashMap::new();
        for (key, value) in raw.phoneme_id_map {
            let mut chars = key.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, value);
            }
        }
        for needed in [PAD, BOS, EOS] {
            if !ids.contains_key(&needed) {
                return Err(bad(format!("phoneme_id_map lacks `{needed}`")));
            }
        }
        let session = iris_onnx::open_session(runtime, model, settings.threads)?;
        // The language family ("en"), from the config or the espeak voice ("en-us").
        let language = raw.language.map(|l| l.family).unwrap_or_else(|| raw.espeak.voice.split('-').next().unwrap_or("").to_owned());
        Ok(Self {
            session,
            espeak_voice: raw.espeak.voice,
            language,
            ids,
            sample_rate: raw.audio.sample_rate,
            scales: raw.inference,
            settings,
        })
    }

    pub fn espeak_voice(&self) -> &str {
        &self.espeak_voice
    }

    /// ISO 639-1 language family, e.g. "en".
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Phoneme ids as Piper builds them: BOS, then each phoneme followed by PAD, then EOS.
    /// Phonemes the voice does not know are skipped.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let mut out = Vec::with_capacity(phonemes.len() * 2 + 3);
        out.extend(&self.ids[&BOS]);
        out.extend(&self.ids[&PAD]);
        for c in phonemes.chars() {
            if let Some(id) = self.ids.get(&c) {
                out.extend(id);
                out.extend(&self.ids[&PAD]);
            }
        }
        out.extend(&self.ids[&EOS]);
        out
    }

    /// Synthesises one sentence; empty or unspeakable text gives no audio.
    pub fn speak(&mut self, text: &str) -> Result<Vec<f32>, PiperError> {
        let phonemes = espeak::phonemize(text, &self.espeak_voice)?;
        let ids = self.phoneme_ids(&phonemes);
        if ids.len() <= 3 {
            return Ok(Vec::new());
        }
        let fail = |e: ort::Error| PiperError::Inference(e.to_string());
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(fail)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(fail)?;
        let length_scale = self.scales.length_scale / self.settings.rate.clamp(0.25, 4.0);
        let scales = Tensor::from_array(([3usize], vec![self.scales.noise_scale, length_scale, self.scales.noise_w])).map_err(fail)?;
        let outputs = self.session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales]).map_err(fail)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        let mut audio = audio.to_vec();
        let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
        let gain = self.settings.volume.clamp(0.0, 1.0) / peak.max(0.01);
        audio.iter_mut().for_each(|s| *s *= gain);
        let silence = (self.settings.sentence_silence_s.max(0.0) * self.sample_rate as f32) as usize;
        audio.extend(std::iter::repeat_n(0.0, silence));
        Ok(audio)
    }
}

impl Tts for PiperVoice {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(&mut self, text: &str, stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError> {
        if stop.should_stop() {
            return Err(BackendError::Cancelled);
        }
        self.speak(text).map_err(|e| BackendError::Inference(e.to_string()))
    }
}
