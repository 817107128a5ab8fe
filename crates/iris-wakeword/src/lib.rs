//! openWakeWord: melspectrogram → speech embedding → one classifier per word, in 80 ms hops
//! (1280 samples at 16 kHz), each network on ONNX Runtime or TensorFlow Lite as its file is
//! (`net.rs`): the upstream ONNX set, and the TFLite set that adds `hey_rhasspy` and `okay_nabu`.
//!
//! Streaming exactly as the reference `openwakeword.Model.predict` (v0.4.0) does it, so the scores
//! agree to float precision: each hop runs the mel model on the hop plus 480 samples of context
//! (audio as 16-bit integer values) and appends its frames, transformed `x / 10 + 2`, to a mel
//! buffer that starts as 76 rows of ones; the embedding model reads the last 76 mel frames and
//! appends a 96-value embedding to a feature buffer that starts with the embeddings of 10 s of
//! silence; each word's classifier reads its last 16 (or as many as it takes) embeddings. The
//! first five scores of a stream are zero, as the reference's warm-up rule says.

use std::path::Path;

use iris_backend::{BackendError, WakeWord};

mod micro;
mod net;
pub use micro::{MicroConfig, MicroWakeWord, MICRO_HOP};
use net::Net;
pub use net::Runtimes;

pub const HOP: usize = 1280;
const CONTEXT: usize = 480;
const MEL_BINS: usize = 32;
const MEL_WINDOW: usize = 76;
const MEL_MAX: usize = 970;
const EMBEDDING: usize = 96;
const FEATURES_MAX: usize = 120;
const WARM_UP: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    #[error(transparent)]
    Onnx(#[from] iris_onnx::OnnxError),
    #[error(transparent)]
    Tflite(#[from] iris_tflite::TfliteError),
    #[error("{0} needs {1}, which is not loaded; run `iris models pull {2}`")]
    NoRuntime(String, &'static str, &'static str),
    #[error("{0}: not an openWakeWord model ({1}); check it with `iris models verify`")]
    Shape(String, String),
    #[error("openWakeWord: {0}")]
    Run(String),
}

struct Word {
    name: String,
    net: Net,
    /// Embeddings the classifier reads.
    frames: usize,
}

pub struct OpenWakeWord {
    mel: Net,
    embedding: Net,
    words: Vec<Word>,
    /// The last hop and its context, as 16-bit integer values.
    raw: Vec<f32>,
    mel_rows: Vec<[f32; MEL_BINS]>,
    features: Vec<[f32; EMBEDDING]>,
    hops: usize,
    /// The feature buffer a fresh stream starts from (silence), kept for `reset`.
    silence: Vec<[f32; EMBEDDING]>,
}

impl OpenWakeWord {
    /// Loads the shared melspectrogram and embedding models and one classifier per `(name, path)`,
    /// each on the runtime its file is for (`.onnx` or `.tflite`).
    pub fn load(runtimes: Runtimes, melspectrogram: &Path, embedding: &Path, words: &[(String, &Path)]) -> Result<Self, WakeError> {
        let mel = Net::open(runtimes, melspectrogram)?;
        let embedding = Net::open(runtimes, embedding)?;
        let mut loaded = Vec::new();
        for (name, path) in words {
            let net = Net::open(runtimes, path)?;
            let dims = net.input_shape();
            let frames = match dims.as_slice() {
                [_, f, e] if *f > 0 && *e == EMBEDDING as i64 => *f as usize,
                _ => return Err(WakeError::Shape(name.clone(), format!("input shape {dims:?}, expected [1, frames, {EMBEDDING}]"))),
            };
            loaded.push(Word { name: name.clone(), net, frames });
        }
        let mut me = Self {
            mel,
            embedding,
            words: loaded,
            raw: Vec::with_capacity(HOP + CONTEXT),
            mel_rows: Vec::new(),
            features: Vec::new(),
            hops: 0,
            silence: Vec::new(),
        };
        me.silence = me.silence_features()?;
        me.reset();
        Ok(me)
    }

    fn melspectrogram(&mut self, pcm: &[f32]) -> Result<Vec<[f32; MEL_BINS]>, WakeError> {
        let values = self.mel.run(&[1, pcm.len()], pcm.to_vec())?;
        Ok(values.chunks_exact(MEL_BINS).map(|row| std::array::from_fn(|i| row[i] / 10.0 + 2.0)).collect())
    }

    fn embed(&mut self, windows: &[&[[f32; MEL_BINS]]]) -> Result<Vec<[f32; EMBEDDING]>, WakeError> {
        let data: Vec<f32> = windows.iter().flat_map(|w| w.iter().flatten().copied()).collect();
        let values = self.embedding.run(&[windows.len(), MEL_WINDOW, MEL_BINS, 1], data)?;
        Ok(values.chunks_exact(EMBEDDING).map(|e| std::array::from_fn(|i| e[i])).collect())
    }

    /// The reference's starting features: the embeddings of 10 s of silence, the last 120 kept.
    fn silence_features(&mut self) -> Result<Vec<[f32; EMBEDDING]>, WakeError> {
        let spec = self.melspectrogram(&vec![0.0; 160_000])?;
        let windows: Vec<&[[f32; MEL_BINS]]> =
            (0..spec.len()).step_by(8).filter(|i| i + MEL_WINDOW <= spec.len()).map(|i| &spec[i..i + MEL_WINDOW]).collect();
        let mut features = self.embed(&windows)?;
        let excess = features.len().saturating_sub(FEATURES_MAX);
        features.drain(..excess);
        Ok(features)
    }

    fn hop(&mut self, hop: &[f32]) -> Result<Vec<f32>, WakeError> {
        // The reference takes 16-bit integer samples, as floats.
        self.raw.extend(hop.iter().map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0)));
        let excess = self.raw.len().saturating_sub(HOP + CONTEXT);
        self.raw.drain(..excess);
        let raw = std::mem::take(&mut self.raw);
        let rows = self.melspectrogram(&raw);
        self.raw = raw;
        self.mel_rows.extend(rows?);
        let excess = self.mel_rows.len().saturating_sub(MEL_MAX);
        self.mel_rows.drain(..excess);
        if self.mel_rows.len() >= MEL_WINDOW {
            let rows = std::mem::take(&mut self.mel_rows);
            let embedded = self.embed(&[&rows[rows.len() - MEL_WINDOW..]]);
            self.mel_rows = rows;
            self.features.extend(embedded?);
            let excess = self.features.len().saturating_sub(FEATURES_MAX);
            self.features.drain(..excess);
        }
        self.hops += 1;
        let mut scores = Vec::with_capacity(self.words.len());
        for w in &mut self.words {
            let take = w.frames.min(self.features.len());
            let data: Vec<f32> = self.features[self.features.len() - take..].iter().flatten().copied().collect();
            let values = w.net.run(&[1, take, EMBEDDING], data)?;
            let score = values.first().copied().unwrap_or(0.0);
            scores.push(if self.hops <= WARM_UP { 0.0 } else { score });
        }
        Ok(scores)
    }
}

impl WakeWord for OpenWakeWord {
    fn hop_len(&self) -> usize {
        HOP
    }

    fn words(&self) -> Vec<String> {
        self.words.iter().map(|w| w.name.clone()).collect()
    }

    fn scores(&mut self, hop: &[f32]) -> Result<Vec<f32>, BackendError> {
        if hop.len() != HOP {
            return Err(BackendError::Inference(format!("openWakeWord takes {HOP} samples a hop, got {}", hop.len())));
        }
        self.hop(hop).map_err(|e| BackendError::Inference(e.to_string()))
    }

    fn reset(&mut self) {
        self.raw.clear();
        self.mel_rows = vec![[1.0; MEL_BINS]; MEL_WINDOW];
        self.features.clone_from(&self.silence);
        self.hops = 0;
    }
}
