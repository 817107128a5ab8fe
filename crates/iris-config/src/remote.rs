//! `[llm_server]`: a bigger language model elsewhere on the network (a vLLM, llama.cpp
//! `llama-server` or Ollama box) that answers instead of the local one, with the local model
//! (`[models] llm`) as the fallback when it does not answer in time.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmServer {
    /// The server's OpenAI-compatible base URL, e.g. "http://192.168.1.20:8080/v1"
    /// (Ollama: "http://HOST:11434/v1"); empty means the local model answers.
    pub url: String,
    /// The model name the server knows (empty: the server's default).
    pub model: String,
    /// Sent as a bearer token when not empty.
    pub api_key: String,
    /// The first words must arrive within this, in ms, or the local model answers the turn.
    pub wait_ms: u64,
    /// After the server failed, turns go straight to the local model for this long, in s, so a
    /// server that is off costs one wait, not one per turn.
    pub retry_after_s: u64,
}

impl Default for LlmServer {
    fn default() -> Self {
        Self { url: String::new(), model: String::new(), api_key: String::new(), wait_ms: 2000, retry_after_s: 30 }
    }
}

impl LlmServer {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// The field that is wrong and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let url = &self.url;
        if url.len() > 2048 {
            return Err(("llm_server.url", "is longer than 2048 bytes".into()));
        }
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(("llm_server.url", format!("is {url:?}; use an http:// or https:// URL such as \"http://192.168.1.20:8080/v1\"")));
        }
        if self.model.len() > 256 || self.model.chars().any(char::is_control) {
            return Err(("llm_server.model", "must be at most 256 bytes with no control characters".into()));
        }
        if self.api_key.len() > 1024 || self.api_key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(("llm_server.api_key", "must be at most 1024 bytes with no spaces or control characters".into()));
        }
        if !(100..=60_000).contains(&self.wait_ms) {
            return Err(("llm_server.wait_ms", format!("is {}; use 100 to 60000", self.wait_ms)));
        }
        if self.retry_after_s > 3600 {
            return Err(("llm_server.retry_after_s", format!("is {}; use 0 to 3600", self.retry_after_s)));
        }
        Ok(())
    }
}
