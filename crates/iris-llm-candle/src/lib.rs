//! Language models on candle: quantized GGUF files, their own tokenizer and chat template.
//!
//! Layout: [`tokenizer`] (a tokenizer from the GGUF vocabulary), [`template`] (the chat
//! template), [`weights`] (the model families: llama, qwen2), [`llama`] (a chat session on
//! any of them: the name is historical), [`requant`] (re-quantisation at import, where candle
//! lacks fast kernels for the shipped format).

pub mod gemma3;
pub mod llama;
pub mod plan;
pub mod requant;
pub mod template;
pub mod tokenizer;
mod tool_prompt;
pub mod weights;

pub use llama::LlamaChat;
pub use weights::Engine;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{path}: {message}")]
    Load { path: std::path::PathBuf, message: String },
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Inference(String),
}
