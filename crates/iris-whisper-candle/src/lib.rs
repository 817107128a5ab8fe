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
mod mel;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{Device, IndexOp, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, model::Whisper};
use iris_backend::asr_text::{fit_audio_ctx, is_non_speech, partial_audio_ctx, partial_max_tokens, trim_repetition};
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

/// Where the last decode's time went (for `iris bench asr`): the spectrogram on the CPU, the
/// encoder, and the decoder's steps, each waited for on the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stages {
    pub mel: Duration,
    pub encoder: Duration,
    pub decoder: Duration,
    pub tokens: usize,
}

pub struct CandleWhisper {
    model: Mutex<Whisper>,
    /// whisper.cpp's suppressions as 0 or -inf per token, added to the logits on the device (the
    /// first step's also holds the end of text and a bare space), so a step returns one id.
    suppress: Tensor,
    suppress_first: Tensor,
    last: Mutex<Stages>,
    config: w::Config,
    filters: Vec<f32>,
    vocab: Vec<Vec<u8>>,
    special: Special,
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
        let special = Special::new(h[0]);
        let (suppress, suppress_first) = suppressions(special, space, h[0], device)?;
        Ok(Self {
            model: Mutex::new(model),
            suppress,
            suppress_first,
            last: Mutex::new(Stages::default()),
            special,
            multilingual: h[0] >= 51865,
            config,
            filters: g.filters,
            vocab: g.vocab,
            device: device.clone(),
        })
    }

    /// Where the last window's decode spent its time.
    pub fn last_stages(&self) -> Stages {
        self.last.lock().map(|s| *s).unwrap_or_default()
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    fn mel(&self, pcm: &[f32], frames: usize) -> Result<Tensor, candle_core::Error> {
        let n_mels = self.config.num_mel_bins;
        let mel = mel::log_mel(pcm, &self.filters, n_mels, frames, candle_core::utils::get_num_threads());
        Tensor::from_vec(mel, (1, n_mels, frames), &self.device)
    }

    /// The next token after `tokens`: the logits with whisper.cpp's suppressions, their
    /// largest, picked on the device.
    fn next_token(&self, model: &mut Whisper, audio: &Tensor, tokens: &[u32], first: bool) -> Result<u32, candle_core::Error> {
        let t = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let ys = model.decoder.forward(&t, audio, first)?;
        let last = ys.i((.., tokens.len() - 1..))?;
        let logits = model.decoder.final_linear(&last)?.flatten_all()?;
        let mask = if tokens.len() == self.prompt_len() { &self.suppress_first } else { &self.suppress };
        (logits + mask)?.argmax(D::Minus1)?.to_scalar::<u32>()
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
        // As whisper.cpp's engine: a partial encodes the audio there is and a few tokens, a
        // live question's final at least half the window (`fit_audio_ctx`).
        let (frames, max_tokens) = if opts.partial {
            (2 * partial_audio_ctx(pcm.len()), partial_max_tokens(pcm.len()))
        } else if opts.fit_context {
            (2 * fit_audio_ctx(pcm.len()), 2 * partial_max_tokens(pcm.len()))
        } else {
            (w::N_FRAMES, self.config.max_target_positions / 2)
        };
        let t0 = Instant::now();
        let mel = self.mel(pcm, frames)?;
        let t1 = Instant::now();
        let audio = model.encoder.forward(&mel, true)?;
        self.device.synchronize()?;
        let t2 = Instant::now();
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
            let next = self.next_token(&mut model, &audio, &tokens, step == 0)?;
            if next == s.eot {
                break;
            }
            tokens.push(next);
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Stages { mel: t1 - t0, encoder: t2 - t1, decoder: t2.elapsed(), tokens: tokens.len() - prompt };
        }
        let bytes: Vec<u8> = tokens[prompt..]
            .iter()
            .filter(|&&t| t < s.eot)
            .flat_map(|&t| self.vocab.get(t as usize).cloned().unwrap_or_default())
            .collect();
        Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), language)))
    }
}

/// whisper.cpp's suppressed tokens as additive masks: every step's (no timestamps, no special
/// tokens), and the first step's, which also holds the end of text and a bare space.
fn suppressions(s: Special, space: Option<u32>, n_vocab: usize, device: &Device) -> Result<(Tensor, Tensor), CandleWhisperError> {
    let mut mask = vec![0f32; n_vocab];
    let mut off = |range: std::ops::Range<usize>| {
        for v in &mut mask[range.start.min(n_vocab)..range.end.min(n_vocab)] {
            *v = f32::NEG_INFINITY;
        }
    };
    for id in [s.not, s.sot, s.nosp, s.solm, s.prev, s.translate, s.transcribe] {
        off(id as usize..id as usize + 1);
    }
    off(s.beg as usize..n_vocab);
    off(s.sot as usize + 1..s.translate as usize);
    let mut first = mask.clone();
    for id in [Some(s.eot), space].into_iter().flatten() {
        if let Some(v) = first.get_mut(id as usize) {
            *v = f32::NEG_INFINITY;
        }
    }
    Ok((Tensor::from_vec(mask, n_vocab, device)?, Tensor::from_vec(first, n_vocab, device)?))
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
        let text = if opts.partial || opts.fit_context { trim_repetition(text) } else { text.to_owned() };
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
