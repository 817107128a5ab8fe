//! The model families this backend runs, each candle's quantized implementation, behind one
//! forward call: `llama` (SmolLM2, Llama 3.x), `qwen2` (Qwen2 / Qwen2.5) and `gemma3` (Iris's
//! corrected copy, `crate::gemma3`). Each keeps its own KV cache and takes the position of the
//! first new token.

use std::fs::File;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

pub const FAMILIES: [&str; 3] = ["llama", "qwen2", "gemma3"];

pub enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Gemma3(crate::gemma3::ModelWeights),
}

impl Weights {
    pub fn load(arch: &str, content: gguf_file::Content, f: &mut File, device: &Device) -> candle_core::Result<Self> {
        match arch {
            "qwen2" => Ok(Self::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, f, device)?)),
            "gemma3" => Ok(Self::Gemma3(crate::gemma3::ModelWeights::from_gguf(content, f, device)?)),
            _ => Ok(Self::Llama(quantized_llama::ModelWeights::from_gguf(content, f, device)?)),
        }
    }

    /// Logits of the token after `x` ([1, n] ids at positions `pos..`).
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Llama(m) => m.forward(x, pos),
            Self::Qwen2(m) => m.forward(x, pos),
            Self::Gemma3(m) => m.forward(x, pos),
        }
    }
}
