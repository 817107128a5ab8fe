//! Iris's CUDA engine for GGUF language models: the llama, qwen2 and gemma3 families with the
//! quantised types their files hold (Q4_0 to Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16, F32), run by its
//! own kernels (src/kernels.cu) on weights kept as the file quantises them.
//!
//! Why it exists: candle 0.11's CUDA path decoded at 0.20 to 0.47 of llama.cpp's speed on an H200
//! (`deploy/gpu-bench.sh`), flat at about 11 ms a token from 1.5B to 8B parameters: bound by
//! launching work, not by memory. It allocates every intermediate tensor, runs each small
//! operation as its own kernel and copies its KV cache each token. This engine preallocates every
//! buffer and the whole KV cache, launches through the driver directly, and leaves long prompts
//! to cuBLAS on weights dequantised to f16 one matrix at a time. `iris-llm-candle` uses it on a
//! CUDA device for the files it runs, and candle for the rest.
//!
//! Without the `cuda` feature the crate is only the weight layouts ([`repack`]), so the CPU
//! build needs no CUDA compiler.

pub mod repack;

#[cfg(feature = "cuda")]
mod gpu;
#[cfg(feature = "cuda")]
mod model;
#[cfg(feature = "cuda")]
pub use model::Model;

#[derive(Debug, thiserror::Error)]
pub enum CudaLlmError {
    /// The file is fine but this engine does not run it (candle may).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Memory(String),
    #[error("reading the weights: {0}")]
    Io(#[from] std::io::Error),
    #[error("CUDA: {0}")]
    Cuda(String),
    #[error("{0}")]
    Inference(String),
}
