//! The llama family (SmolLM2, Llama 3.x) from a quantized GGUF file.

use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use iris_backend::{BackendError, ChatMessage, Flow, GenParams, GenStats, Llm, StopFlag};
use tokenizers::Tokenizer;

use crate::template::ChatTemplate;
use crate::{tokenizer, LlmError};

pub struct LlamaChat {
    model: ModelWeights,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
    context_len: usize,
    device: Device,
}

impl LlamaChat {
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let fail = |message: String| LlmError::Load { path: path.into(), message };
        let mut f = File::open(path).map_err(|e| fail(e.to_string()))?;
        let content = gguf_file::Content::read(&mut f).map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
        let md = &content.metadata;
        let arch = md.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if arch != "llama" {
            return Err(fail(format!("architecture `{arch}` is not supported by this backend (llama is)")));
        }
        let tokenizer = tokenizer::from_gguf(&content).map_err(|e| fail(e.to_string()))?;
        let token = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
        let text_of = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i)).unwrap_or_default();
        let eos = token("tokenizer.ggml.eos_token_id");
        let mut stop_tokens: Vec<u32> = eos.into_iter().collect();
        for s in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"] {
            stop_tokens.extend(tokenizer.token_to_id(s));
        }
        let template = ChatTemplate::new(
            md.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned(),
            text_of(token("tokenizer.ggml.bos_token_id")),
            text_of(eos),
        )?;
        let context_len = md.get("llama.context_length").and_then(|v| v.to_u32().ok()).unwrap_or(2048) as usize;
        let device = Device::Cpu;
        let model = ModelWeights::from_gguf(content, &mut f, &device).map_err(|e| fail(format!("cannot load the weights ({e})")))?;
        Ok(Self { model, tokenizer, template, stop_tokens, context_len, device })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn step(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, BackendError> {
        let input = Tensor::new(tokens, &self.device).and_then(|t| t.unsqueeze(0)).map_err(infer)?;
        self.model.forward(&input, pos).and_then(|l| l.squeeze(0)).map_err(infer)
    }
}

fn infer(e: impl std::fmt::Display) -> BackendError {
    BackendError::Inference(format!("llm: {e}"))
}

impl Llm for LlamaChat {
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        let prompt = self.template.render(messages).map_err(|e| BackendError::Inference(e.to_string()))?;
        let encoded = self.tokenizer.encode(prompt, false).map_err(infer)?;
        let prompt_tokens = encoded.get_ids().to_vec();
        if prompt_tokens.len() + params.max_tokens > self.context_len {
            return Err(BackendError::Inference(format!(
                "the conversation ({} tokens) does not fit the model's context of {}",
                prompt_tokens.len(),
                self.context_len
            )));
        }
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else if let Some(p) = params.top_p {
            Sampling::TopP { p, temperature: params.temperature }
        } else {
            Sampling::All { temperature: params.temperature }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        // A fresh prefill at position 0 resets the model's KV cache.
        let mut logits = self.step(&prompt_tokens, 0)?;
        let mut generated: Vec<u32> = Vec::new();
        let mut printed = 0usize;
        let mut all = prompt_tokens.clone();
        for _ in 0..params.max_tokens {
            if stop.should_stop() {
                return Err(BackendError::Cancelled);
            }
            if params.repeat_penalty != 1.0 {
                let start = all.len().saturating_sub(params.repeat_last_n);
                logits = candle_transformers::utils::apply_repeat_penalty(&logits, params.repeat_penalty, &all[start..]).map_err(infer)?;
            }
            let next = sampler.sample(&logits).map_err(infer)?;
            if self.stop_tokens.contains(&next) {
                break;
            }
            generated.push(next);
            all.push(next);
            // Decode the whole answer so far and emit the new suffix once it is whole UTF-8.
            let text = self.tokenizer.decode(&generated, true).map_err(infer)?;
            if text.len() > printed && !text.ends_with('\u{fffd}') && text.is_char_boundary(printed) {
                let delta = text[printed..].to_owned();
                printed = text.len();
                if on_text(&delta) == Flow::Stop {
                    break;
                }
            }
            logits = self.step(&[next], all.len() - 1)?;
        }
        Ok(GenStats { prompt_tokens: prompt_tokens.len(), generated_tokens: generated.len() })
    }
}
