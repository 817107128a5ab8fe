//! A chat session on a quantized GGUF model of a supported family (`weights.rs`): llama
//! (SmolLM2, Llama 3.x) and qwen2 (Qwen2.5).

use std::fs::File;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use iris_backend::{BackendError, ChatMessage, Flow, GenParams, GenStats, Llm, StopFlag};
use tokenizers::Tokenizer;

use crate::template::ChatTemplate;
use crate::weights::{Engine, Weights, FAMILIES};
use crate::{tokenizer, LlmError};

pub struct LlamaChat {
    model: Weights,
    /// The tokens whose keys and values the model's cache holds, positions 0.. in order, and
    /// the text they stand for (the last prompt and the answer as decoded).
    cached: Vec<u32>,
    cached_text: String,
    /// Set when the cache holds a prompt pre-filled from a question still being spoken: the
    /// next-token logits at its end, for a question that ends as it was heard. Its text is not
    /// a prefix the next prompt's tokens can be appended to, only compared with token by token.
    ahead_logits: Option<Tensor>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
    context_len: usize,
    /// The most bytes of text one token stands for, so a prompt that cannot fit the context
    /// is refused before it is tokenised (a 30 MB prompt cost 2 GB and 35 s to tokenise).
    max_token_bytes: usize,
    device: Device,
}

impl LlamaChat {
    /// Loads with a context of up to 4096 tokens (or the model's own, if smaller), after
    /// checking that weights and KV cache fit in the memory available.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        Self::load_with(path, 4096, crate::plan::available_memory())
    }

    pub fn load_with(path: &Path, max_context: usize, available: Option<u64>) -> Result<Self, LlmError> {
        Self::load_on(path, max_context, available, Engine::Auto)
    }

    /// What loading `path` would take and which engine would run it, from the file's header
    /// alone (no weight is read): for `iris doctor`.
    pub fn inspect(path: &Path, max_context: usize) -> Result<(String, crate::plan::MemoryPlan), LlmError> {
        let fail = |message: String| LlmError::Load { path: path.into(), message };
        let mut f = File::open(path).map_err(|e| fail(e.to_string()))?;
        let content = iris_llm_cpu::read_gguf(&mut f).map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
        let arch = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        let context_len = (content.metadata.get(&format!("{arch}.context_length")).and_then(|v| v.to_u32().ok()).unwrap_or(2048) as usize)
            .min(max_context);
        let (engine, cpu) = match iris_llm_cpu::Model::check(&content) {
            Ok(()) => (format!("iris-cpu ({} kernel)", iris_llm_cpu::Kernel::detect().name()), true),
            Err(why) => (format!("candle ({why})"), false),
        };
        Ok((engine, crate::plan::MemoryPlan::for_engine(&content, context_len, cpu)))
    }

    /// The engine that would run `path` on an NVIDIA GPU in this build, from its header alone.
    pub fn inspect_gpu(path: &Path) -> Result<String, LlmError> {
        let fail = |message: String| LlmError::Load { path: path.into(), message };
        let mut f = File::open(path).map_err(|e| fail(e.to_string()))?;
        let content = iris_llm_cpu::read_gguf(&mut f).map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
        Ok(crate::weights::gpu_engine(&content))
    }

    /// Bytes of weights one decode step reads, and the KV cache's bytes per position at f16
    /// (keys and values of every layer), from the file's header: the roofline of decoding.
    pub fn decode_traffic(path: &Path) -> Result<(u64, u64), LlmError> {
        let fail = |message: String| LlmError::Load { path: path.into(), message };
        let mut f = File::open(path).map_err(|e| fail(e.to_string()))?;
        let content = iris_llm_cpu::read_gguf(&mut f).map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
        let kv = crate::plan::MemoryPlan::for_engine(&content, 1, true).kv_cache;
        Ok((crate::plan::weights_read_per_token(&content), kv))
    }

    /// As [`Self::load_with`], on a chosen engine.
    pub fn load_on(path: &Path, max_context: usize, available: Option<u64>, engine: Engine) -> Result<Self, LlmError> {
        Self::load_on_device(path, max_context, available, engine, &Device::Cpu)
    }

    /// As [`Self::load_on`], on `device`: a GPU runs the file on candle (weights and KV cache on
    /// the GPU); `available` is then not checked, as it is the host's memory.
    pub fn load_on_device(
        path: &Path,
        max_context: usize,
        available: Option<u64>,
        engine: Engine,
        device: &Device,
    ) -> Result<Self, LlmError> {
        let fail = |message: String| LlmError::Load { path: path.into(), message };
        let mut f = File::open(path).map_err(|e| fail(e.to_string()))?;
        let content = iris_llm_cpu::read_gguf(&mut f).map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
        let md = &content.metadata;
        let arch = md.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if !FAMILIES.contains(&arch.as_str()) {
            return Err(fail(format!("architecture `{arch}` is not supported by this backend ({} are)", FAMILIES.join(", "))));
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
            md.get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned()
                .or_else(|| Some(crate::template::fallback(&arch).to_owned())),
            text_of(token("tokenizer.ggml.bos_token_id")),
            text_of(eos),
        )?;
        let context_len =
            (md.get(&format!("{arch}.context_length")).and_then(|v| v.to_u32().ok()).unwrap_or(2048) as usize).min(max_context);
        if engine == Engine::Cpu && !device.is_cpu() {
            return Err(fail("Iris's CPU engine runs on the CPU; use the candle engine on a GPU, or set [models] device = \"cpu\"".into()));
        }
        let cpu_engine = engine != Engine::Candle && device.is_cpu() && iris_llm_cpu::Model::check(&content).is_ok();
        let plan = crate::plan::MemoryPlan::for_engine(&content, context_len, cpu_engine);
        if let (Some(available), true) = (available, device.is_cpu()) {
            plan.check(available).map_err(fail)?;
        }
        let device = device.clone();
        let model = Weights::load(&arch, content, &mut f, &device, engine, context_len)
            .map_err(|e| fail(format!("cannot load the weights ({e})")))?;
        // A token's vocabulary string is at least as long as the text it stands for (byte-level
        // BPE writes a space as the 2-byte 'Ġ', SentencePiece as the 3-byte '▁').
        let max_token_bytes = tokenizer.get_vocab(true).keys().map(String::len).max().unwrap_or(1).max(1);
        Ok(Self {
            model,
            cached: Vec::new(),
            cached_text: String::new(),
            ahead_logits: None,
            tokenizer,
            template,
            stop_tokens,
            context_len,
            max_token_bytes,
            device,
        })
    }

    /// The engine running the model, e.g. "iris-cpu (avx512-vnni, 2 threads)", "candle" or
    /// "candle (cuda:0)".
    pub fn engine(&self) -> String {
        match self.device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("{} (cuda:{gpu_id})", self.model.engine()),
            candle_core::DeviceLocation::Metal { .. } => format!("{} (metal)", self.model.engine()),
            candle_core::DeviceLocation::Cpu => self.model.engine(),
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt the chat template makes of `messages` (with the generation prompt).
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        self.template.render(messages)
    }

    /// Next-token logits after running `tokens` at positions `pos..` on top of the cache (which
    /// `pos == 0` resets). For checks that chunked and whole prefills agree.
    pub fn logits_after(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, BackendError> {
        self.forget();
        if let Some(logits) = self.model.logits_on_host(tokens, pos) {
            return logits.map_err(infer);
        }
        self.step(tokens, pos)?.to_vec1::<f32>().map_err(infer)
    }

    /// Logits after `tokens` at `pos..` on the cache as it is (for tests of cache reuse).
    #[doc(hidden)]
    pub fn step_for_test(&mut self, tokens: &[u32], pos: usize) -> Vec<f32> {
        self.step(tokens, pos).and_then(|t| t.to_vec1::<f32>().map_err(infer)).unwrap_or_default()
    }

    fn forget(&mut self) {
        self.cached.clear();
        self.cached_text.clear();
        self.ahead_logits = None;
    }

    /// How many leading `tokens` the cache already holds, where the engine can cut its cache
    /// back to keep just those (candle's restarts instead).
    fn shared_with_cache(&self, tokens: &[u32]) -> usize {
        if !self.model.rewinds() {
            return 0;
        }
        tokens.iter().zip(&self.cached).take_while(|(a, b)| a == b).count()
    }

    fn tokenise(&self, text: &str) -> Result<Vec<u32>, BackendError> {
        Ok(self.tokenizer.encode(text, false).map_err(infer)?.get_ids().to_vec())
    }

    fn step(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, BackendError> {
        // Iris's own engines take the ids from the host (a GPU tensor would be copied back).
        let device = if self.model.takes_host_input() { &Device::Cpu } else { &self.device };
        let input = Tensor::new(tokens, device).and_then(|t| t.unsqueeze(0)).map_err(infer)?;
        self.model.forward(&input, pos).and_then(|l| l.squeeze(0)).map_err(infer)
    }
}

fn infer(e: impl std::fmt::Display) -> BackendError {
    BackendError::Inference(format!("llm: {e}"))
}

impl Llm for LlamaChat {
    fn device(&self) -> iris_backend::Device {
        match self.device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => iris_backend::Device::Cuda(gpu_id),
            candle_core::DeviceLocation::Metal { .. } => iris_backend::Device::Metal,
            candle_core::DeviceLocation::Cpu => iris_backend::Device::Other(format!("cpu, {}", self.engine())),
        }
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        let prompt = self.template.render_with_tools(messages, &params.tools).map_err(|e| BackendError::Inference(e.to_string()))?;
        let too_long = |tokens: String| {
            BackendError::Request(format!(
                "the conversation is {tokens} tokens and this model reads at most {}; send fewer or shorter messages",
                self.context_len
            ))
        };
        if prompt.len() > self.context_len * self.max_token_bytes {
            return Err(too_long(format!("over {}", prompt.len() / self.max_token_bytes)));
        }
        // A growing conversation renders to the cached text plus a new suffix. Only the suffix is
        // tokenised: re-tokenising an earlier answer need not give back the tokens generated, and
        // the cache must hold exactly what the model saw.
        let reusable = self.ahead_logits.is_none()
            && !self.cached.is_empty()
            && prompt.len() > self.cached_text.len()
            && prompt.starts_with(&self.cached_text);
        let (prompt_tokens, reused) = if reusable {
            let suffix = self.tokenise(&prompt[self.cached_text.len()..])?;
            ([self.cached.as_slice(), &suffix].concat(), self.cached.len())
        } else {
            // A prompt that leaves the cached conversation (a new conversation with the same
            // system prompt, an answer cut to what was heard, a question grown from a partial
            // transcript) keeps the tokens it shares with the cache, where the engine can cut
            // its cache back; at least one token is run, for its logits.
            let tokens = self.tokenise(&prompt)?;
            let shared = self.shared_with_cache(&tokens);
            // A prompt pre-filled whole ahead has its logits kept; otherwise at least one token
            // is run, for its logits.
            let shared =
                if shared == tokens.len() && self.ahead_logits.is_some() { shared } else { shared.min(tokens.len().saturating_sub(1)) };
            (tokens, shared)
        };
        if prompt_tokens.len() >= self.context_len {
            return Err(too_long(prompt_tokens.len().to_string()));
        }
        // The answer stops where the context ends, as it would at max_tokens ("length").
        let max_tokens = params.max_tokens.min(self.context_len - prompt_tokens.len());
        let temperature = params.temperature;
        // A nucleus below f32's resolution keeps no token at all in candle's sampler (an error
        // with a backtrace): it means the likeliest token, which is what greedy picks.
        let top_p = params.top_p.filter(|p| *p >= 1e-6);
        let greedy = temperature <= 0.0 || params.top_p.is_some_and(|p| p < 1e-6);
        let sampling = match (greedy, params.top_k, top_p) {
            (true, _, _) => Sampling::ArgMax,
            (false, Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
            (false, Some(k), None) => Sampling::TopK { k, temperature },
            (false, None, Some(p)) => Sampling::TopP { p, temperature },
            (false, None, None) => Sampling::All { temperature },
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        // candle's cache can only grow or restart (position 0 resets it); Iris's CPU engine cuts
        // its cache back to the position given. Until this call finishes the cache is in flux: a
        // failure or a cancel leaves it unknown.
        let ahead_logits = self.ahead_logits.take();
        self.forget();
        // Logits depend slightly on how the prompt is scheduled (whole, chunked on a cache, or
        // token by token: up to 0.7 of a 41-wide logit range in candle 0.11, as Q8_0 matmuls
        // quantise activations); see the conformance test `prefill_on_a_cache_agrees`.
        let mut logits = match ahead_logits {
            Some(logits) if reused == prompt_tokens.len() => logits,
            _ => self.step(&prompt_tokens[reused..], reused)?,
        };
        let mut generated: Vec<u32> = Vec::new();
        let mut printed = 0usize;
        let mut all = prompt_tokens.clone();
        for _ in 0..max_tokens {
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
            // Decode the whole answer so far and emit the new suffix once it is whole UTF-8, up
            // to a stop string (and holding back what may still become one).
            let text = self.tokenizer.decode(&generated, true).map_err(infer)?;
            let (upto, stopped) = iris_backend::stop_cut(&text, &params.stop);
            if upto > printed && !text[..upto].ends_with('\u{fffd}') && text.is_char_boundary(printed) {
                let delta = text[printed..upto].to_owned();
                printed = upto;
                if on_text(&delta) == Flow::Stop || stopped {
                    // Run the last token through the model too, so the cache holds all of the
                    // answer the conversation will contain.
                    self.step(&[next], all.len() - 1)?;
                    break;
                }
            }
            if stopped {
                // The stop string began right at what was already emitted.
                self.step(&[next], all.len() - 1)?;
                break;
            }
            logits = self.step(&[next], all.len() - 1)?;
        }
        // Every token in `all` has been through the model: the cache holds exactly these.
        let answer_len = all.len() - prompt_tokens.len();
        let answer = self.tokenizer.decode(&all[prompt_tokens.len()..], true).map_err(infer)?;
        self.cached = all;
        self.cached_text = if answer_len > 0 { prompt + &answer } else { prompt };
        Ok(GenStats {
            prompt_tokens: prompt_tokens.len(),
            reused_tokens: reused,
            prefill_tokens: prompt_tokens.len() - reused,
            generated_tokens: generated.len(),
        })
    }

    fn prefill(&mut self, messages: &[ChatMessage], params: &GenParams) -> Result<usize, BackendError> {
        // candle's cache restarts on any prompt that leaves it: work ahead would be thrown away.
        if !self.model.rewinds() || messages.last().is_none_or(|m| m.content.trim().is_empty()) {
            return Ok(0);
        }
        // The whole prompt, as if the question ended here: the pause's transcript is usually the
        // final one, and then the answer starts on the logits kept. Words that follow cost the
        // template's few closing tokens again.
        let prompt = self.template.render_with_tools(messages, &params.tools).map_err(|e| BackendError::Inference(e.to_string()))?;
        if prompt.len() > self.context_len * self.max_token_bytes {
            return Ok(0);
        }
        let tokens = self.tokenise(&prompt)?;
        if tokens.len() + 1 >= self.context_len {
            return Ok(0);
        }
        let shared = self.shared_with_cache(&tokens);
        if shared == tokens.len() && self.ahead_logits.is_some() {
            return Ok(0);
        }
        let shared = shared.min(tokens.len() - 1);
        self.forget();
        let logits = self.step(&tokens[shared..], shared)?;
        self.cached = tokens;
        self.cached_text = prompt;
        self.ahead_logits = Some(logits);
        Ok(self.cached.len() - shared)
    }
}
