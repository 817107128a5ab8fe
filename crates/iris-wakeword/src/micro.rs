//! microWakeWord (Kevin Ahrendt's streaming models, as ESPHome and pymicro-wakeword run them):
//! TensorFlow Lite Micro's audio frontend (`iris-microfrontend`) makes 40 features every 10 ms;
//! every `stride` rows (3: 30 ms) go to each word's quantised streaming model, which keeps its
//! own state between calls; a word's score is the mean of its last `sliding_window_size`
//! probabilities, zero until that many have come, as pymicro-wakeword 2.5.0 computes it. Each
//! word's model ships with its own cutoff (its JSON), which the loop uses as its threshold.
//! Small enough for the boards openWakeWord is heavy on: about 50-80 KB a word, no shared
//! embedding network.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iris_backend::{BackendError, WakeWord};
use iris_microfrontend::{MicroFrontend, CHANNELS, STEP};

use crate::WakeError;

/// Samples per hop: three feature rows, one model call at the usual stride.
pub const MICRO_HOP: usize = 3 * STEP;
/// A word's JSON larger than this is refused unread (they are under 1 KB).
const MAX_JSON: u64 = 64 << 10;

/// What a word's JSON says, as pymicro-wakeword reads it.
#[derive(Clone, Debug)]
pub struct MicroConfig {
    pub wake_word: String,
    pub model: PathBuf,
    pub cutoff: f32,
    pub window: usize,
}

impl MicroConfig {
    /// Reads `okay_nabu.json` and the like: its `model` file sits beside it.
    pub fn read(json: &Path) -> Result<Self, WakeError> {
        let bad = |m: String| WakeError::Shape(json.display().to_string(), m);
        let size = std::fs::metadata(json).map_err(|e| bad(e.to_string()))?.len();
        if size > MAX_JSON {
            return Err(bad(format!("{size} bytes; a microWakeWord description is under 1 KB")));
        }
        let text = std::fs::read_to_string(json).map_err(|e| bad(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let micro = &v["micro"];
        let (Some(model), Some(cutoff), Some(window)) =
            (v["model"].as_str(), micro["probability_cutoff"].as_f64(), micro["sliding_window_size"].as_u64())
        else {
            return Err(bad("no model, micro.probability_cutoff or micro.sliding_window_size".into()));
        };
        if v["type"].as_str() != Some("micro") || !(0.0..=1.0).contains(&cutoff) || !(1..=100).contains(&window) || model.contains('/') {
            return Err(bad("not a microWakeWord model description".into()));
        }
        let model = json.parent().unwrap_or(Path::new(".")).join(model);
        Ok(Self {
            wake_word: v["wake_word"].as_str().unwrap_or(model.to_string_lossy().as_ref()).to_owned(),
            model,
            cutoff: cutoff as f32,
            window: window as usize,
        })
    }
}

struct Word {
    name: String,
    config: MicroConfig,
    interp: iris_tflite::Interpreter,
    stride: usize,
    rows: Vec<[f32; CHANNELS]>,
    probabilities: VecDeque<f32>,
    score: f32,
}

impl Word {
    fn open(runtime: &Arc<iris_tflite::Runtime>, name: String, config: MicroConfig) -> Result<Self, WakeError> {
        let interp = runtime.interpreter(&config.model, 1)?;
        let shape = interp.input_shape();
        let stride = match shape.as_slice() {
            [1, s, c] if *c == CHANNELS && (1..=32).contains(s) => *s,
            _ => return Err(WakeError::Shape(config.model.display().to_string(), format!("input {shape:?}, not [1, stride, {CHANNELS}]"))),
        };
        Ok(Self { name, interp, stride, rows: Vec::new(), probabilities: VecDeque::new(), score: 0.0, config })
    }

    fn hear(&mut self, row: [f32; CHANNELS]) -> Result<(), WakeError> {
        self.rows.push(row);
        if self.rows.len() < self.stride {
            return Ok(());
        }
        // The stride's rows in one call, then a fresh set (pymicro-wakeword strides, not rolls).
        let data: Vec<f32> = self.rows.drain(..).flatten().collect();
        let p = self.interp.run_quantized(&data)?.first().copied().unwrap_or(0.0);
        self.probabilities.push_back(p);
        if self.probabilities.len() > self.config.window {
            self.probabilities.pop_front();
        }
        self.score = if self.probabilities.len() < self.config.window {
            0.0
        } else {
            (self.probabilities.iter().map(|p| f64::from(*p)).sum::<f64>() / self.probabilities.len() as f64) as f32
        };
        Ok(())
    }
}

pub struct MicroWakeWord {
    runtime: Arc<iris_tflite::Runtime>,
    frontend: MicroFrontend,
    words: Vec<Word>,
}

impl MicroWakeWord {
    /// One model per `(name, json)`, on TensorFlow Lite.
    pub fn load(runtime: &Arc<iris_tflite::Runtime>, words: &[(String, &Path)]) -> Result<Self, WakeError> {
        let frontend = MicroFrontend::new().ok_or_else(|| WakeError::Run("the audio frontend could not allocate its state".into()))?;
        let words =
            words.iter().map(|(name, json)| Word::open(runtime, name.clone(), MicroConfig::read(json)?)).collect::<Result<_, _>>()?;
        Ok(Self { runtime: runtime.clone(), frontend, words })
    }

    /// Each word's own cutoff (its JSON's `probability_cutoff`), in the order of the scores.
    pub fn cutoffs(&self) -> Vec<f32> {
        self.words.iter().map(|w| w.config.cutoff).collect()
    }

    fn hop(&mut self, hop: &[f32]) -> Result<Vec<f32>, WakeError> {
        // 16-bit samples, as the reference is given them.
        let pcm: Vec<i16> = hop.iter().map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect();
        for row in self.frontend.feed(&pcm) {
            for w in &mut self.words {
                w.hear(row)?;
            }
        }
        Ok(self.words.iter().map(|w| w.score).collect())
    }
}

impl WakeWord for MicroWakeWord {
    fn hop_len(&self) -> usize {
        MICRO_HOP
    }

    fn words(&self) -> Vec<String> {
        self.words.iter().map(|w| w.name.clone()).collect()
    }

    fn thresholds(&self) -> Option<Vec<f32>> {
        Some(self.cutoffs())
    }

    fn scores(&mut self, hop: &[f32]) -> Result<Vec<f32>, BackendError> {
        if hop.len() != MICRO_HOP {
            return Err(BackendError::Inference(format!("microWakeWord takes {MICRO_HOP} samples a hop, got {}", hop.len())));
        }
        self.hop(hop).map_err(|e| BackendError::Inference(e.to_string()))
    }

    fn reset(&mut self) {
        self.frontend.reset();
        // The models keep state between calls: a fresh interpreter forgets it, as the reference
        // reloads its model.
        for w in &mut self.words {
            if let Ok(fresh) = self.runtime.interpreter(&w.config.model, 1) {
                w.interp = fresh;
            }
            w.rows.clear();
            w.probabilities.clear();
            w.score = 0.0;
        }
    }
}
