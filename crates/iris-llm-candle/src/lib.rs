//! Language models on candle: quantized GGUF files, their own tokenizer and chat template.
//!
//! Layout: [`tokenizer`] (a tokenizer from the GGUF vocabulary), [`template`] (the chat
//! template), [`llama`] (the llama family: SmolLM2, Llama 3), [`requant`] (re-quantisation at
//! import, where candle lacks fast kernels for the shipped format).

pub mod llama;
pub mod plan;
pub mod requant;
pub mod template;
pub mod tokenizer;

pub use llama::LlamaChat;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{path}: {message}")]
    Load { path: std::path::PathBuf, message: String },
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Inference(String),
}
