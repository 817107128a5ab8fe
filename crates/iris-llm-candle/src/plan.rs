//! Memory planning before a model loads: weights (from the GGUF tensor table, no tensor read)
//! plus the KV cache for the context, against the memory available. A plan that does not fit is
//! refused with what to change, instead of an out-of-memory kill halfway through loading.

use candle_core::quantized::gguf_file::Content;

/// What loading a model with a context of `context` tokens will take, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    pub weights: u64,
    pub kv_cache: u64,
    pub context: usize,
}

impl MemoryPlan {
    /// For candle: weights as stored, an f32 KV cache.
    pub fn from_gguf(content: &Content, context: usize) -> Self {
        Self::for_engine(content, context, false)
    }

    /// `cpu_engine`: Iris's CPU engine, whose repacked weights can be larger than the file's
    /// (4- and 5-bit blocks are widened) and whose KV cache is f16.
    pub fn for_engine(content: &Content, context: usize, cpu_engine: bool) -> Self {
        let weights = content
            .tensor_infos
            .values()
            .map(|t| {
                let stored = (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64;
                let repacked = iris_llm_cpu::Matrix::repacked_bytes(t.ggml_dtype, t.shape.elem_count());
                if cpu_engine && t.shape.dims().len() == 2 {
                    repacked.unwrap_or(stored)
                } else {
                    stored
                }
            })
            .sum::<u64>()
            // candle holds the token embedding a second time, dequantised to f32, for lookups:
            // for gemma3-270m's 262,144-word vocabulary that is 671 MB, most of what it needs.
            + if cpu_engine {
                0
            } else {
                content.tensor_infos.get("token_embd.weight").map_or(0, |t| t.shape.elem_count() as u64 * 4)
            };
        let md = |k: &str| content.metadata.iter().find(|(key, _)| key.ends_with(k)).and_then(|(_, v)| v.to_u32().ok()).unwrap_or(0) as u64;
        let (layers, heads, kv_heads, dim) =
            (md(".block_count"), md(".attention.head_count"), md(".attention.head_count_kv"), md(".embedding_length"));
        // Gemma's heads are wider than dim / heads (256 against 160 for gemma3-270m).
        let head_dim = match md(".attention.key_length") {
            0 if heads > 0 => dim / heads,
            0 => 0,
            k => k,
        };
        let kv_heads = if kv_heads > 0 { kv_heads } else { heads };
        // Keys and values, per layer, per position.
        let kv_cache = 2 * layers * kv_heads * head_dim * if cpu_engine { 2 } else { 4 } * context as u64;
        Self { weights, kv_cache, context }
    }

    pub fn total(&self) -> u64 {
        // Activations and buffers: a margin of a tenth, at least 64 MiB.
        let core = self.weights + self.kv_cache;
        core + (core / 10).max(64 << 20)
    }

    /// `Ok` if it fits in `available` bytes; otherwise a sentence saying what to do.
    pub fn check(&self, available: u64) -> Result<(), String> {
        if self.total() <= available {
            return Ok(());
        }
        let mib = |b: u64| b / (1 << 20);
        let mut advice = Vec::new();
        let spare = available.saturating_sub(self.weights + (self.weights / 10).max(64 << 20));
        let per_token = self.kv_cache / self.context.max(1) as u64;
        if per_token > 0 && spare / per_token >= 512 {
            advice.push(format!("a context of at most {} tokens", (spare / per_token / 256) * 256));
        }
        advice.push("a smaller quantisation (Q4_K_M instead of Q8_0 halves the weights)".to_owned());
        advice.push("a smaller model".to_owned());
        Err(format!(
            "needs about {} MiB ({} MiB of weights + {} MiB of KV cache for {} tokens) but {} MiB are available; use {}",
            mib(self.total()),
            mib(self.weights),
            mib(self.kv_cache),
            self.context,
            mib(available),
            advice.join(", or ")
        ))
    }
}

/// Bytes of weights a decode step reads: every matrix as stored, except the token embedding,
/// of which one row is read, unless it is also the output matrix (tied). The roofline of
/// decoding is the memory bandwidth divided by this (plus the KV cache read).
pub fn weights_read_per_token(content: &Content) -> u64 {
    let tied = !content.tensor_infos.contains_key("output.weight");
    content
        .tensor_infos
        .iter()
        .filter(|(name, t)| t.shape.dims().len() == 2 && (tied || name.as_str() != "token_embd.weight"))
        .map(|(_, t)| (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64)
        .sum()
}

/// Memory the system can give now (`MemAvailable`), if the platform says.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
