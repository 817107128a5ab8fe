//! A `tokenizers` tokenizer built from a GGUF file's own vocabulary (`tokenizer.ggml.*`), so no
//! separate tokenizer.json is needed: GGUF files from the registries ship none. Byte-level BPE
//! (`gpt2`: SmolLM2, Llama 3, Qwen) and SentencePiece (`llama`: Gemma), the latter as
//! transformers converts it: BPE whose merges come from the vocabulary's scores, with byte
//! fallback.

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
    let model = get("tokenizer.ggml.model")?.to_string().map_err(fmt)?.clone();
    if model != "gpt2" && model != "llama" {
        return Err(LlmError::Format(format!(
            "tokenizer type `{model}` is not supported (byte-level BPE `gpt2` and SentencePiece `llama` are)"
        )));
    }
    let tokens = strings(get("tokenizer.ggml.tokens")?)?;
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
    let json = if model == "llama" {
        let scores: Vec<f32> = get("tokenizer.ggml.scores")?.to_vec().map_err(fmt)?.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect();
        let prefix = md.get("tokenizer.ggml.add_space_prefix").and_then(|v| v.to_bool().ok()).unwrap_or(true);
        sentencepiece(&tokens, &scores, &vocab, added, prefix)
    } else {
        let merges = strings(get("tokenizer.ggml.merges")?)?;
        byte_level_bpe(&vocab, &merges, added, pre)
    };
    json.to_string().parse::<Tokenizer>().map_err(|e| LlmError::Format(format!("cannot build the tokenizer: {e}")))
}

/// SentencePiece as BPE: a token's merges are its splits into two tokens, ranked by its score
/// (transformers' `SentencePieceExtractor`); spaces are "▁"; unknown bytes are <0xXX> tokens.
fn sentencepiece(
    tokens: &[String],
    scores: &[f32],
    vocab: &HashMap<&str, usize>,
    added: Vec<serde_json::Value>,
    prefix: bool,
) -> serde_json::Value {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by(|a, b| scores.get(*b).unwrap_or(&0.0).total_cmp(scores.get(*a).unwrap_or(&0.0)));
    let mut merges = Vec::new();
    for &i in &order {
        let t = &tokens[i];
        let mut local: Vec<(usize, usize, &str, &str)> = t
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = t.split_at(at);
                Some((*vocab.get(l)?, *vocab.get(r)?, l, r))
            })
            .collect();
        local.sort();
        merges.extend(local.into_iter().map(|(_, _, l, r)| json!([l, r])));
    }
    let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
    let normalizer =
        if prefix { json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, replace]}) } else { replace };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let unk = if vocab.contains_key("<unk>") { json!("<unk>") } else { serde_json::Value::Null };
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": normalizer, "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

fn byte_level_bpe(vocab: &HashMap<&str, usize>, merges: &[String], added: Vec<serde_json::Value>, pre: &str) -> serde_json::Value {
    json!({
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
    })
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
