//! What a GGUF file says about its transformer (the family and its shapes), and reading its
//! tensors into the engine's formats.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;

use crate::matrix::Matrix;
use crate::CpuLlmError;

/// The families this engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// SmolLM2, Llama 3.x: rotary positions on adjacent pairs.
    Llama,
    /// Qwen2 / Qwen2.5: biases on q, k and v, rotary positions on a head's two halves (NeoX).
    Qwen2,
    /// Gemma 3: embeddings scaled by √dim, q and k normalised per head, norms after attention
    /// and after the feed-forward block, GELU, and sliding-window attention on five layers of
    /// six (with their own rotary base).
    Gemma3,
}

impl Family {
    pub fn of(arch: &str) -> Option<Self> {
        match arch {
            "llama" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "gemma3" => Some(Self::Gemma3),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub family: Family,
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub eps: f32,
    /// Multiplies a query-key product (1/√head_dim; Gemma 3 27B's is 1/√(dim/heads)).
    pub attn_scale: f32,
    pub rope_base: f32,
    /// Divides the rotary frequencies of the global layers (linear rope scaling; 1 if none).
    pub rope_scale: f32,
    /// Gemma 3: the sliding window (positions a local layer sees, its own included), the rotary
    /// base of the local layers, and which layers are local.
    pub window: Option<usize>,
    pub local_rope_base: f32,
    pub local: Vec<bool>,
    pub context: usize,
}

impl Config {
    /// qwen2 and gemma3 rotate the two halves of a head (NeoX); llama adjacent pairs.
    pub fn neox(&self) -> bool {
        self.family != Family::Llama
    }

    /// The window of layer `l`, if it is a sliding-window layer.
    pub fn window_of(&self, l: usize) -> Option<usize> {
        self.window.filter(|_| self.local.get(l).copied().unwrap_or(false))
    }
}

pub fn arch(content: &Content) -> Result<String, CpuLlmError> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| CpuLlmError::Format("no general.architecture".into()))
}

pub fn config(content: &Content, arch: &str, max_context: usize) -> Result<Config, CpuLlmError> {
    let family = Family::of(arch).ok_or_else(|| CpuLlmError::Unsupported(format!("the `{arch}` family")))?;
    let md = &content.metadata;
    let get = |k: &str| md.get(&format!("{arch}.{k}"));
    let int = |k: &str| -> Result<usize, CpuLlmError> {
        get(k).and_then(|v| v.to_u32().ok()).map(|v| v as usize).ok_or_else(|| CpuLlmError::Format(format!("no {arch}.{k}")))
    };
    let float = |k: &str| get(k).and_then(|v| v.to_f32().ok());
    let dim = int("embedding_length")?;
    let heads = int("attention.head_count")?;
    let kv_heads = int("attention.head_count_kv").unwrap_or(heads);
    let head_dim = int("attention.key_length").unwrap_or(dim / heads.max(1));
    if int("rope.dimension_count").is_ok_and(|d| d != head_dim) {
        return Err(CpuLlmError::Unsupported("partial rotary embeddings".into()));
    }
    if int("attention.value_length").is_ok_and(|d| d != head_dim) {
        return Err(CpuLlmError::Unsupported("values and keys of different widths".into()));
    }
    if float("final_logit_softcapping").is_some_and(|c| c != 0.0) || float("attn_logit_softcapping").is_some_and(|c| c != 0.0) {
        return Err(CpuLlmError::Unsupported("logit soft-capping".into()));
    }
    let rope_scale = match get("rope.scaling.type").and_then(|v| v.to_string().ok()).map(String::as_str) {
        None | Some("none") => 1.0,
        Some("linear") => float("rope.scaling.factor").unwrap_or(1.0),
        Some(other) => return Err(CpuLlmError::Unsupported(format!("`{other}` rope scaling"))),
    };
    let gemma = family == Family::Gemma3;
    let layers = int("block_count")?;
    // Sizes from the header are bounded before anything is allocated by them (the largest open
    // models have about 128 layers, 64K-wide layers and 256 heads).
    let ffn = int("feed_forward_length")?;
    if layers > 4096 || [dim, ffn, heads * head_dim, kv_heads * head_dim].iter().any(|d| *d > 1 << 20) || heads > 4096 {
        return Err(CpuLlmError::Format(format!(
            "the header's shapes (block_count {layers}, embedding_length {dim}, feed_forward_length {ffn}, {heads} heads of {head_dim}) are larger than any model's"
        )));
    }
    // Which layers slide: the file's list, or a pattern (llama.cpp's `set_swa_pattern`: the last
    // layer of each group of `n` is global; Gemma 3's n is 6).
    let pattern = get("attention.sliding_window_pattern");
    let local: Vec<bool> = match pattern.and_then(|v| v.to_vec().ok()) {
        Some(list) => list.iter().map(|v| v.to_bool().unwrap_or(false)).chain(std::iter::repeat(false)).take(layers).collect(),
        None => {
            let n = pattern.and_then(|v| v.to_u32().ok()).unwrap_or(6) as usize;
            (0..layers).map(|l| gemma && (n == 0 || l % n < n - 1)).collect()
        }
    };
    let embd = content.tensor_infos.get("token_embd.weight").ok_or_else(|| CpuLlmError::Format("no token_embd.weight".into()))?;
    Ok(Config {
        family,
        dim,
        layers,
        heads,
        kv_heads,
        head_dim,
        ffn,
        vocab: embd.shape.dims()[0],
        eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        // As llama.cpp (after gemma_pytorch): only Gemma 3 27B (62 layers) scales by dim/heads.
        attn_scale: 1.0 / ((if gemma && layers == 62 { dim / heads } else { head_dim }) as f32).sqrt(),
        rope_base: float("rope.freq_base").unwrap_or(if gemma { 1_000_000.0 } else { 10_000.0 }),
        rope_scale,
        window: if gemma { int("attention.sliding_window").ok().filter(|w| *w > 0) } else { None },
        local_rope_base: float("rope.local_freq_base").unwrap_or(10_000.0),
        local,
        context: int("context_length").unwrap_or(2048).min(max_context),
    })
}

/// A tensor as stored: its type, its dimensions (outermost first) and its bytes.
type Stored = (GgmlDType, Vec<usize>, Vec<u8>);

fn read_tensor<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Stored, CpuLlmError> {
    let info = content.tensor_infos.get(name).ok_or_else(|| CpuLlmError::Format(format!("no tensor {name}")))?;
    let (dtype, dims) = (info.ggml_dtype, info.shape.dims().to_vec());
    let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
    let mut raw = vec![0u8; bytes];
    file.seek(SeekFrom::Start(content.tensor_data_offset + info.offset))?;
    file.read_exact(&mut raw)?;
    Ok((dtype, dims, raw))
}

/// A stored tensor in the kernels' layout.
fn repack(name: &str, (dtype, dims, raw): &Stored) -> Result<Matrix, CpuLlmError> {
    Matrix::from_gguf(*dtype, raw, dims[0], dims[1])
        .ok_or_else(|| CpuLlmError::Format(format!("{name}: not a {dtype:?} matrix of {dims:?}")))
}

pub fn matrix<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Matrix, CpuLlmError> {
    repack(name, &read_tensor(content, file, name)?)
}

/// Several matrices: their bytes read in order, then repacked on `threads` threads at once
/// (repacking a 1.5B model's 1.1 GB is most of its loading time).
pub fn matrices<R: Read + Seek>(content: &Content, file: &mut R, names: &[String], threads: usize) -> Result<Vec<Matrix>, CpuLlmError> {
    let mut raws = Vec::with_capacity(names.len());
    for name in names {
        raws.push((name, read_tensor(content, file, name)?));
    }
    let per_thread = raws.len().div_ceil(threads.max(1)).max(1);
    let mut out = Vec::with_capacity(raws.len());
    std::thread::scope(|s| {
        let workers: Vec<_> =
            raws.chunks(per_thread).map(|part| s.spawn(move || part.iter().map(|(name, t)| repack(name, t)).collect::<Vec<_>>())).collect();
        for w in workers {
            out.extend(w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
    });
    out.into_iter().collect()
}

/// A vector (norm weights, biases) as f32.
pub fn vector<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Vec<f32>, CpuLlmError> {
    let (dtype, _, raw) = read_tensor(content, file, name)?;
    match dtype {
        GgmlDType::F32 => Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        GgmlDType::F16 => Ok(raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        other => Err(CpuLlmError::Format(format!("{name}: a vector stored as {other:?}"))),
    }
}

/// A vector if the file has it.
pub fn optional_vector<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Option<Vec<f32>>, CpuLlmError> {
    if content.tensor_infos.contains_key(name) {
        vector(content, file, name).map(Some)
    } else {
        Ok(None)
    }
}
