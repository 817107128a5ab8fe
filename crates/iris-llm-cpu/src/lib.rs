//! Iris's own CPU engine for GGUF language models: the llama (SmolLM2, Llama 3.x), qwen2
//! (Qwen2 / Qwen2.5) and gemma3 families with Q8_0, Q5_0 and Q4_0 matrices, and Q4_K and Q6_K
//! on CPUs with AVX2 or AVX-512 VNNI (which is what the Q4_K_M files hold).
//!
//! Why it exists: candle-transformers 0.11 decodes SmolLM2-135M Q8_0 at 0.6× llama.cpp's speed
//! on the same file (`iris bench llm`). A profile put 45 % of the time in candle's AVX2 Q8_0 dot
//! product and most of the rest in per-op overhead: tensor allocation, a thread hand-off per op,
//! a KV cache that is concatenated (copied) every token, f16 scales converted block by block.
//! This engine keeps the weights repacked for AVX-512 VNNI ([`q8`], [`kquant`]), runs them with kernels
//! chosen at start-up ([`kernels`]), spreads each matrix over a pool of spinning threads
//! ([`pool`]) and does the rest of a layer in place on preallocated buffers ([`model`], [`ops`];
//! what the file says about its family and shapes: [`config`]).
//! `iris-llm-candle` uses it for the files it can run and candle for everything else.

pub mod config;
pub mod f16;
pub mod gguf;
pub mod kernels;
pub mod kquant;
pub mod matrix;
pub mod model;
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod ops;
pub mod pool;
pub mod q8;

pub use config::{Config, Family};
pub use gguf::read_gguf;
pub use kernels::Kernel;
pub use matrix::Matrix;
pub use model::Model;

#[derive(Debug, thiserror::Error)]
pub enum CpuLlmError {
    /// The file is fine but this engine does not run it (another engine may).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Format(String),
    #[error("reading the weights: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Inference(String),
}
