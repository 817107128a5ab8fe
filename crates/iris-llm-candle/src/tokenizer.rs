//! A `tokenizers` tokenizer built from a GGUF file's own vocabulary (`tokenizer.ggml.*`), so no
//! separate tokenizer.json is needed: GGUF files from the registries ship none.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use tokenizers::Tokenizer;

use crate::LlmError;

/// GGUF token types (llama.cpp's `llama_token_type`).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

pub fn from_gguf(content: &Content) -> Result<Tokenizer, LlmError> {
    let md = &content.metadata;
    let get = |k: &str| md.get(k).ok_or_else(|| LlmError::Format(format!("the GGUF file has no `{k}`")));
    let model = get("tokenizer.ggml.model")?.to_string().map_err(fmt)?;
    if model != "gpt2" {
        return Err(LlmError::Format(format!("tokenizer type `{model}` is not supported yet (byte-level BPE `gpt2` is)")));
    }
    let tokens = strings(get("tokenizer.ggml.tokens")?)?;
    let merges = strings(get("tokenizer.ggml.merges")?)?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec().map_err(fmt)?.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let pre = md.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map_or("default", String::as_str);

    let vocab: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let added: Vec<_> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(&CONTROL) | Some(&USER_DEFINED)))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": types[i] == CONTROL})
        })
        .collect();
    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre),
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    });
    json.to_string().parse::<Tokenizer>().map_err(|e| LlmError::Format(format!("cannot build the tokenizer: {e}")))
}

/// The pre-tokenizer llama.cpp uses for each `tokenizer.ggml.pre` name.
fn pre_tokenizer(pre: &str) -> serde_json::Value {
    let byte_level = |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex});
    let split = |pattern: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            byte_level(false)]})
    };
    match pre {
        "smollm" => json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "qwen2" => split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
        "llama-bpe" | "llama3" => {
            split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
        }
        _ => byte_level(true),
    }
}

fn strings(v: &Value) -> Result<Vec<String>, LlmError> {
    v.to_vec().map_err(fmt)?.iter().map(|s| s.to_string().cloned().map_err(fmt)).collect()
}

fn fmt(e: candle_core::Error) -> LlmError {
    LlmError::Format(e.to_string())
}
