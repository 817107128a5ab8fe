//! Speech recognition on candle's Whisper: the same ggml model file as the whisper.cpp backend,
//! on the CPU or, built with the `cuda` feature, on an NVIDIA GPU (whisper.cpp's own CUDA build
//! is too slow to build and too large to ship here; see ../shared/GPU.md).
//!
//! Decoding follows whisper.cpp's greedy path token for token: the same prompt (start of
//! transcript, language and task for multilingual models, no timestamps), the same suppressed
//! tokens, at most 224 tokens, no temperature fallback. The decoder re-reads the whole token
//! sequence each step (candle caches only the cross-attention keys), which costs little at
//! Whisper's lengths. A device is chosen, never silently swapped: asking for CUDA in a build
//! without it is an error.

mod ggml;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{Device, IndexOp, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, audio, model::Whisper};
use iris_backend::asr_text::{is_non_speech, partial_audio_ctx, partial_max_tokens, trim_repetition};
use iris_backend::{Asr, AsrOptions, AsrOutput, BackendError, StopFlag};

#[derive(Debug, thiserror::Error)]
pub enum CandleWhisperError {
    #[error("cannot read Whisper model {path}: {message}. Check it with `iris models verify`")]
    Load { path: PathBuf, message: String },
    #[error("{0}")]
    Format(&'static str),
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    #[error("this build of Iris has no CUDA support; rebuild with `--features cuda`, or set device = \"cpu\"")]
    NoCuda,
    #[error("this build of Iris has no Metal support; rebuild with `--features metal` on a Mac, or set device = \"cpu\"")]
    NoMetal,
}

/// Whisper's languages in token order (the first 99: every model up to large-v2).
const LANGUAGES: [&str; 99] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi", "he", "uk",
    "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn",
    "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn",
    "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my",
    "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su",
];

/// The special token ids, as whisper.cpp derives them from the vocabulary size.
#[derive(Clone, Copy, Debug)]
struct Special {
    eot: u32,
    sot: u32,
    translate: u32,
    transcribe: u32,
    solm: u32,
    prev: u32,
    nosp: u32,
    not: u32,
    beg: u32,
}

impl Special {
    fn new(n_vocab: usize) -> Self {
        let multilingual = n_vocab >= 51865;
        let (shift, dt) = if multilingual { (1, n_vocab as u32 - 51765 - 1 - 98) } else { (0, 0) };
        Self {
            eot: 50256 + shift,
            sot: 50257 + shift,
            translate: 50357 + dt,
            transcribe: 50358 + dt,
            solm: 50359 + dt,
            prev: 50360 + dt,
            nosp: 50361 + dt,
            not: 50362 + dt,
            beg: 50363 + dt,
        }
    }
}

pub struct CandleWhisper {
    model: Mutex<Whisper>,
    config: w::Config,
    filters: Vec<f32>,
    vocab: Vec<Vec<u8>>,
    special: Special,
    space: Option<u32>,
    multilingual: bool,
    device: Device,
}

/// The device named in the configuration: "cpu", "cuda" or "auto" (CUDA when built with it
/// and a GPU answers, else the CPU).
pub fn device(name: &str) -> Result<Device, CandleWhisperError> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => Ok(Device::new_cuda(0)?),
        "cuda" => Err(CandleWhisperError::NoCuda),
        "metal" if cfg!(feature = "metal") => Ok(Device::new_metal(0)?),
        "metal" => Err(CandleWhisperError::NoMetal),
        _ if cfg!(feature = "metal") => Ok(Device::metal_if_available(0).unwrap_or(Device::Cpu)),
        _ => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

impl CandleWhisper {
    pub fn load(path: &Path, device: &Device) -> Result<Self, CandleWhisperError> {
        let fail = |message: String| CandleWhisperError::Load { path: path.into(), message };
        let data = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let g = ggml::parse(&data, device).map_err(|e| fail(e.to_string()))?;
        let h = g.hparams;
        let config = w::Config {
            num_mel_bins: h[9],
            max_source_positions: h[1],
            d_model: h[2],
            encoder_attention_heads: h[3],
            encoder_layers: h[4],
            vocab_size: h[0],
            max_target_positions: h[5],
            decoder_attention_heads: h[7],
            decoder_layers: h[8],
            suppress_tokens: Vec::new(),
        };
        let vb = VarBuilder::from_tensors(g.tensors, candle_core::DType::F32, device);
        let model = Whisper::load(&vb, config.clone()).map_err(|e| fail(e.to_string()))?;
        let space = g.vocab.iter().position(|t| t.as_slice() == b" ").map(|i| i as u32);
        Ok(Self {
            model: Mutex::new(model),
            special: Special::new(h[0]),
            multilingual: h[0] >= 51865,
            config,
            filters: g.filters,
            vocab: g.vocab,
            space,
            device: device.clone(),
        })
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    fn mel(&self, pcm: &[f32], frames: usize) -> Result<Tensor, candle_core::Error> {
        let mel = audio::pcm_to_mel(&self.config, pcm, &self.filters);
        let n_mels = self.config.num_mel_bins;
        let len = mel.len() / n_mels;
        let mel = Tensor::from_vec(mel, (1, n_mels, len), &self.device)?;
        mel.narrow(2, 0, frames.min(mel.dim(2)?))
    }

    /// Logits of the next token after `tokens`, with whisper.cpp's suppressions applied.
    fn next_logits(&self, model: &mut Whisper, audio: &Tensor, tokens: &[u32], first: bool) -> Result<Vec<f32>, candle_core::Error> {
        let t = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let ys = model.decoder.forward(&t, audio, first)?;
        let last = ys.i((.., tokens.len() - 1..))?;
        let mut logits: Vec<f32> = model.decoder.final_linear(&last)?.flatten_all()?.to_vec1()?;
        let s = self.special;
        for id in [s.not, s.sot, s.nosp, s.solm, s.prev, s.translate, s.transcribe] {
            logits[id as usize] = f32::NEG_INFINITY;
        }
        for v in logits.iter_mut().skip(s.beg as usize) {
            *v = f32::NEG_INFINITY;
        }
        for v in &mut logits[(s.sot as usize + 1)..(s.translate as usize)] {
            *v = f32::NEG_INFINITY;
        }
        if tokens.len() == self.prompt_len() {
            logits[s.eot as usize] = f32::NEG_INFINITY;
            if let Some(space) = self.space {
                logits[space as usize] = f32::NEG_INFINITY;
            }
        }
        Ok(logits)
    }

    fn prompt_len(&self) -> usize {
        if self.multilingual {
            4
        } else {
            2
        }
    }

    fn detect_language(&self, model: &mut Whisper, audio: &Tensor) -> Result<usize, candle_core::Error> {
        let t = Tensor::new(&[self.special.sot], &self.device)?.unsqueeze(0)?;
        let ys = model.decoder.forward(&t, audio, true)?;
        let logits = model.decoder.final_linear(&ys.i((.., 0..1))?)?.flatten_all()?;
        let first = self.special.sot as usize + 1;
        let langs = logits.narrow(0, first, LANGUAGES.len())?;
        Ok(langs.argmax(D::Minus1)?.to_scalar::<u32>()? as usize)
    }

    fn decode(&self, pcm: &[f32], opts: &AsrOptions, stop: &dyn StopFlag) -> Result<Option<(String, String)>, candle_core::Error> {
        let mut model = self.model.lock().map_err(|_| candle_core::Error::Msg("the model lock is poisoned".into()))?;
        let (frames, max_tokens) = if opts.partial {
            (2 * partial_audio_ctx(pcm.len()), partial_max_tokens(pcm.len()))
        } else {
            (w::N_FRAMES, self.config.max_target_positions / 2)
        };
        let mel = self.mel(pcm, frames)?;
        let audio = model.encoder.forward(&mel, true)?;
        let s = self.special;
        let mut tokens = vec![s.sot];
        let mut language = "en".to_owned();
        if self.multilingual {
            let lang = match opts.language.as_deref().and_then(|l| LANGUAGES.iter().position(|x| *x == l)) {
                Some(i) => i,
                None => self.detect_language(&mut model, &audio)?,
            };
            language = LANGUAGES[lang].to_owned();
            tokens.extend([s.sot + 1 + lang as u32, s.transcribe]);
        }
        tokens.push(s.not);
        let prompt = tokens.len();
        for step in 0..max_tokens {
            if stop.should_stop() {
                return Ok(None);
            }
            let logits = self.next_logits(&mut model, &audio, &tokens, step == 0)?;
            let next = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(s.eot, |(i, _)| i as u32);
            if next == s.eot {
                break;
            }
            tokens.push(next);
        }
        let bytes: Vec<u8> = tokens[prompt..]
            .iter()
            .filter(|&&t| t < s.eot)
            .flat_map(|&t| self.vocab.get(t as usize).cloned().unwrap_or_default())
            .collect();
        Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), language)))
    }
}

impl Asr for CandleWhisper {
    fn transcribe(&self, pcm_16k: &[f32], opts: &AsrOptions, stop: &dyn StopFlag) -> Result<AsrOutput, BackendError> {
        if pcm_16k.is_empty() {
            return Ok(AsrOutput { text: String::new(), language: opts.language.clone() });
        }
        // One 30 s window after another, as whisper.cpp does without timestamps.
        let mut text = String::new();
        let mut language = opts.language.clone();
        for window in pcm_16k.chunks(w::N_SAMPLES) {
            let (piece, lang) = match self.decode(window, opts, stop) {
                Ok(Some(out)) => out,
                Ok(None) => return Err(BackendError::Cancelled),
                Err(e) => return Err(BackendError::Inference(format!("whisper (candle): {e}"))),
            };
            language.get_or_insert(lang);
            if !is_non_speech(&piece) {
                text.push_str(piece.trim());
                text.push(' ');
            }
        }
        let text = text.trim();
        let text = if opts.partial { trim_repetition(text) } else { text.to_owned() };
        Ok(AsrOutput { text, language })
    }

    fn device(&self) -> iris_backend::Device {
        match self.device.location() {
            candle_core::DeviceLocation::Cpu => iris_backend::Device::Cpu { threads: candle_core::utils::get_num_threads() },
            candle_core::DeviceLocation::Cuda { gpu_id } => iris_backend::Device::Cuda(gpu_id),
            candle_core::DeviceLocation::Metal { .. } => iris_backend::Device::Metal,
        }
    }
}
