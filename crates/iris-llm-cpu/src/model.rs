//! The transformer of the llama and qwen2 families on [`Q8Matrix`] weights: RMSNorm, grouped-
//! query attention with rotary positions (llama's adjacent pairs, qwen2's halves as NeoX), a
//! SwiGLU feed-forward, and an f16 KV cache that grows in place. Only the last position's
//! logits are computed, as llama.cpp does.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use half::{f16, slice::HalfFloatSliceExt};

use crate::kernels::Kernel;
use crate::matrix::Matrix;
use crate::pool::{share, Pool, SyncPtr};
use crate::q8::{ActKind, QActs};
use crate::CpuLlmError;

/// Tokens of a prompt processed together (bounds the scratch buffers).
const BATCH: usize = 64;

#[derive(Clone, Debug)]
pub struct Config {
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub eps: f32,
    pub rope_base: f32,
    /// qwen2 rotates the two halves of a head (NeoX); llama adjacent pairs.
    pub neox: bool,
    pub context: usize,
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Matrix,
    k: Matrix,
    v: Matrix,
    /// q, k and v's biases (qwen2), one after the other.
    qkv_bias: Option<Vec<f32>>,
    wo: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    /// Keys and values in f16, as llama.cpp keeps them by default: half the memory, and the
    /// same rounding (greedy answers then match llama.cpp's token for token).
    k_cache: Vec<f16>,
    v_cache: Vec<f16>,
}

/// Quantised activations of a batch, in each form the matrices they meet need.
#[derive(Default)]
struct Acts {
    q8_0: Vec<QActs>,
    q8k: Vec<QActs>,
}

impl Acts {
    /// Quantises the rows of `x` (`n` of them) for every matrix in `users`.
    fn quantize(&mut self, x: &[f32], n: usize, users: &[&Matrix]) {
        for kind in [ActKind::Q8_0, ActKind::Q8K] {
            if users.iter().any(|m| m.act_kind() == kind) {
                let acts = if kind == ActKind::Q8_0 { &mut self.q8_0 } else { &mut self.q8k };
                acts.resize_with(n.max(acts.len()), QActs::default);
                for (a, row) in acts.iter_mut().zip(x.chunks_exact(x.len() / n)) {
                    a.quantize_as(row, kind);
                }
            }
        }
    }

    fn get(&self, kind: ActKind, n: usize) -> &[QActs] {
        &(if kind == ActKind::Q8_0 { &self.q8_0 } else { &self.q8k })[..n]
    }
}

pub struct Model {
    cfg: Config,
    embd: Matrix,
    /// `None`: tied to the embedding.
    output: Option<Matrix>,
    out_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// Rotary frequency of each pair of a head.
    freqs: Vec<f32>,
    pool: Pool,
    kernel: Kernel,
    /// Positions the KV cache holds.
    len: usize,
    acts: Acts,
}

fn unsupported(m: String) -> CpuLlmError {
    CpuLlmError::Unsupported(m)
}

impl Model {
    /// Whether this engine runs the file (and if not, why not): the family, and Q8_0 matrices.
    pub fn check(content: &Content) -> Result<(), CpuLlmError> {
        let arch = arch(content)?;
        if !matches!(arch.as_str(), "llama" | "qwen2") {
            return Err(unsupported(format!("the `{arch}` family")));
        }
        let kernel = Kernel::detect();
        for (name, info) in &content.tensor_infos {
            let matrix = info.shape.dims().len() == 2;
            if matrix && !Matrix::takes(info.ggml_dtype, kernel) {
                return Err(unsupported(format!(
                    "{name} is {:?}; this engine takes Q8_0, Q5_0 and Q4_0 matrices, and Q4_K and Q6_K with AVX2 or AVX-512 VNNI ({} here)",
                    info.ggml_dtype,
                    kernel.name()
                )));
            }
        }
        let cfg = config(content, &arch, usize::MAX)?;
        if cfg.head_dim % 2 != 0 || cfg.heads % cfg.kv_heads != 0 {
            return Err(unsupported("an unusual head layout".into()));
        }
        Ok(())
    }

    pub fn load<R: Read + Seek>(content: &Content, file: &mut R, max_context: usize, threads: usize) -> Result<Self, CpuLlmError> {
        Self::check(content)?;
        let arch = arch(content)?;
        let cfg = config(content, &arch, max_context)?;
        let embd = matrix(content, file, "token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") { Some(matrix(content, file, "output.weight")?) } else { None };
        let kv_dim = cfg.kv_heads * cfg.head_dim;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = |s: &str| format!("blk.{l}.{s}");
            let qkv_bias = if content.tensor_infos.contains_key(&p("attn_q.bias")) {
                let mut b = vector(content, file, &p("attn_q.bias"))?;
                b.extend(vector(content, file, &p("attn_k.bias"))?);
                b.extend(vector(content, file, &p("attn_v.bias"))?);
                Some(b)
            } else {
                None
            };
            let layer = Layer {
                attn_norm: vector(content, file, &p("attn_norm.weight"))?,
                q: matrix(content, file, &p("attn_q.weight"))?,
                k: matrix(content, file, &p("attn_k.weight"))?,
                v: matrix(content, file, &p("attn_v.weight"))?,
                qkv_bias,
                wo: matrix(content, file, &p("attn_output.weight"))?,
                ffn_norm: vector(content, file, &p("ffn_norm.weight"))?,
                gate: matrix(content, file, &p("ffn_gate.weight"))?,
                up: matrix(content, file, &p("ffn_up.weight"))?,
                down: matrix(content, file, &p("ffn_down.weight"))?,
                k_cache: Vec::with_capacity(cfg.context * kv_dim),
                v_cache: Vec::with_capacity(cfg.context * kv_dim),
            };
            let (q_dim, d) = (cfg.heads * cfg.head_dim, cfg.dim);
            let shapes = [
                (&layer.q, q_dim, d),
                (&layer.k, kv_dim, d),
                (&layer.v, kv_dim, d),
                (&layer.wo, d, q_dim),
                (&layer.gate, cfg.ffn, d),
                (&layer.up, cfg.ffn, d),
                (&layer.down, d, cfg.ffn),
            ];
            if shapes.iter().any(|(m, rows, cols)| m.rows() != *rows || m.cols() != *cols) {
                return Err(CpuLlmError::Format(format!("blk.{l}: shapes do not match the metadata")));
            }
            layers.push(layer);
        }
        let half = cfg.head_dim / 2;
        let mut freqs: Vec<f32> = (0..half).map(|i| cfg.rope_base.powf(-2.0 * i as f32 / cfg.head_dim as f32)).collect();
        // Llama 3.1+ scales the frequencies by a factor per pair (llama.cpp divides θ by it).
        if content.tensor_infos.contains_key("rope_freqs.weight") {
            for (f, factor) in freqs.iter_mut().zip(vector(content, file, "rope_freqs.weight")?) {
                *f /= factor;
            }
        }
        Ok(Self {
            embd,
            output,
            out_norm: vector(content, file, "output_norm.weight")?,
            layers,
            freqs,
            pool: Pool::new(threads),
            kernel: Kernel::detect(),
            len: 0,
            acts: Acts::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Logits after `tokens` at positions `pos..`, on top of the first `pos` cached positions
    /// (a shorter cache than `pos` is an error; a longer one is cut back).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, CpuLlmError> {
        if pos > self.len {
            return Err(CpuLlmError::Inference(format!("position {pos} is past the {} cached", self.len)));
        }
        if tokens.is_empty() || pos + tokens.len() > self.cfg.context {
            return Err(CpuLlmError::Inference(format!("{} tokens at {pos} do not fit a context of {}", tokens.len(), self.cfg.context)));
        }
        if let Some(t) = tokens.iter().find(|t| **t as usize >= self.cfg.vocab) {
            return Err(CpuLlmError::Inference(format!("token {t} is outside the vocabulary")));
        }
        let kv_dim = self.cfg.kv_heads * self.cfg.head_dim;
        for l in &mut self.layers {
            l.k_cache.truncate(pos * kv_dim);
            l.v_cache.truncate(pos * kv_dim);
        }
        self.len = pos;
        let mut last = Vec::new();
        for (i, batch) in tokens.chunks(BATCH).enumerate() {
            last = self.batch(batch, pos + i * BATCH);
        }
        Ok(self.logits(&last))
    }
}

impl Model {
    /// Runs up to [`BATCH`] tokens through every layer, appending them to the KV cache; returns
    /// the last token's hidden state.
    fn batch(&mut self, tokens: &[u32], pos: usize) -> Vec<f32> {
        let c = &self.cfg;
        let (n, dim, hd, ffn) = (tokens.len(), c.dim, c.head_dim, c.ffn);
        let (q_dim, kv_dim) = (c.heads * hd, c.kv_heads * hd);
        let qkv_dim = q_dim + 2 * kv_dim;
        let (pool, kernel, threads) = (&self.pool, self.kernel, self.pool.threads());
        let mut x = vec![0f32; n * dim];
        for (t, tok) in tokens.iter().enumerate() {
            self.embd.dequantize_row(*tok as usize, &mut x[t * dim..(t + 1) * dim]);
        }
        let acts = &mut self.acts;
        let (mut xn, mut proj) = (vec![0f32; n * dim], vec![0f32; n * dim]);
        let (mut qkv, mut att) = (vec![0f32; n * qkv_dim], vec![0f32; n * q_dim]);
        let (mut gu, mut h) = (vec![0f32; n * 2 * ffn], vec![0f32; n * ffn]);
        for layer in &mut self.layers {
            rmsnorm_rows(&x, &layer.attn_norm, c.eps, &mut xn);
            acts.quantize(&xn, n, &[&layer.q, &layer.k, &layer.v]);
            par_matmul(pool, kernel, &[(&layer.q, 0), (&layer.k, q_dim), (&layer.v, q_dim + kv_dim)], acts, n, &mut qkv, qkv_dim);
            for (t, row) in qkv.chunks_exact_mut(qkv_dim).enumerate() {
                if let Some(b) = &layer.qkv_bias {
                    row.iter_mut().zip(b).for_each(|(r, b)| *r += b);
                }
                for head in row[..q_dim + kv_dim].chunks_exact_mut(hd) {
                    rope(head, pos + t, &self.freqs, c.neox);
                }
                layer.k_cache.extend(row[q_dim..q_dim + kv_dim].iter().map(|v| f16::from_f32(*v)));
                layer.v_cache.extend(row[q_dim + kv_dim..].iter().map(|v| f16::from_f32(*v)));
            }
            attention(pool, c, &qkv, &layer.k_cache, &layer.v_cache, pos, n, &mut att);
            acts.quantize(&att, n, &[&layer.wo]);
            par_matmul(pool, kernel, &[(&layer.wo, 0)], acts, n, &mut proj, dim);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);

            rmsnorm_rows(&x, &layer.ffn_norm, c.eps, &mut xn);
            acts.quantize(&xn, n, &[&layer.gate, &layer.up]);
            let (gu_out, h_out) = (SyncPtr(gu.as_mut_ptr()), SyncPtr(h.as_mut_ptr()));
            let (gate, up, acts_ref) = (&layer.gate, &layer.up, &*acts);
            // Each thread takes the same rows of gate and of up, so it can join them itself.
            pool.run(&|i| {
                let r = share(ffn, i, threads, 4);
                // SAFETY: threads write disjoint rows of `gu`, then read and write only their own.
                unsafe {
                    gate.matmul(kernel, r.clone(), acts_ref.get(gate.act_kind(), n), gu_out.get(), 2 * ffn);
                    up.matmul(kernel, r.clone(), acts_ref.get(up.act_kind(), n), gu_out.get().add(ffn), 2 * ffn);
                    for t in 0..n {
                        let g = gu_out.get().add(t * 2 * ffn);
                        for j in r.clone() {
                            *h_out.get().add(t * ffn + j) = silu(*g.add(j)) * *g.add(ffn + j);
                        }
                    }
                }
            });
            acts.quantize(&h, n, &[&layer.down]);
            par_matmul(pool, kernel, &[(&layer.down, 0)], acts, n, &mut proj, dim);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);
        }
        self.len += n;
        x.split_off((n - 1) * dim)
    }

    fn logits(&mut self, hidden: &[f32]) -> Vec<f32> {
        let mut xn = vec![0f32; hidden.len()];
        rmsnorm_rows(hidden, &self.out_norm, self.cfg.eps, &mut xn);
        let head = self.output.as_ref().unwrap_or(&self.embd);
        self.acts.quantize(&xn, 1, &[head]);
        let mut logits = vec![0f32; head.rows()];
        par_matmul(&self.pool, self.kernel, &[(head, 0)], &self.acts, 1, &mut logits, head.rows());
        logits
    }
}

/// `out[t * stride + column + r] = w[r] · acts[t]` for each (matrix, column) of `parts`, the
/// rows of each shared out over the pool.
fn par_matmul(pool: &Pool, kernel: Kernel, parts: &[(&Matrix, usize)], acts: &Acts, n: usize, out: &mut [f32], stride: usize) {
    assert!(parts.iter().all(|(m, col)| col + m.rows() <= stride) && out.len() >= n * stride);
    let (threads, ptr) = (pool.threads(), SyncPtr(out.as_mut_ptr()));
    pool.run(&|i| {
        for (m, col) in parts {
            // SAFETY: each thread writes only its own rows of each part, inside `out`.
            unsafe { m.matmul(kernel, share(m.rows(), i, threads, 4), acts.get(m.act_kind(), n), ptr.get().add(*col), stride) };
        }
    });
}

/// RMSNorm of each row of `x` (summing squares in f64, as ggml does).
fn rmsnorm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, out) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / dim as f64;
        let scale = 1.0 / (mean as f32 + eps).sqrt();
        for ((o, v), w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

fn rope(head: &mut [f32], pos: usize, freqs: &[f32], neox: bool) {
    let half = head.len() / 2;
    for (i, f) in freqs.iter().enumerate() {
        let (sin, cos) = (pos as f32 * f).sin_cos();
        let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos - x1 * sin;
        head[b] = x0 * sin + x1 * cos;
    }
}

/// `x` rounded to f16.
fn to_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (a, b) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let tail: f32 = a.chunks_exact(8).remainder().iter().zip(b.chunks_exact(8).remainder()).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f32>() + tail
}

/// Causal attention of `n` new positions (from `pos`) over the cache, one (token, head) pair
/// at a time, the pairs shared out over the pool. Pairs are ordered by KV head, so a thread
/// widens a head's f16 keys and values to f32 once for all the pairs it takes of that head.
#[allow(clippy::too_many_arguments)]
fn attention(pool: &Pool, c: &Config, qkv: &[f32], k: &[f16], v: &[f16], pos: usize, n: usize, out: &mut [f32]) {
    let (hd, heads, threads) = (c.head_dim, c.heads, pool.threads());
    let (q_dim, kv_dim, len) = (heads * hd, c.kv_heads * hd, pos + n);
    let (group, scale, ptr) = (heads / c.kv_heads, 1.0 / (hd as f32).sqrt(), SyncPtr(out.as_mut_ptr()));
    pool.run(&|i| {
        let (mut scores, mut q) = (vec![0f32; len], vec![0f32; hd]);
        let (mut keys, mut values) = (vec![0f32; len * hd], vec![0f32; len * hd]);
        let mut widened = None;
        for pair in share(n * heads, i, threads, 1) {
            let (kvh, rest) = (pair / (n * group), pair % (n * group));
            let (t, h) = (rest / group, kvh * group + rest % group);
            if widened != Some(kvh) {
                for s in 0..len {
                    k[s * kv_dim + kvh * hd..][..hd].convert_to_f32_slice(&mut keys[s * hd..(s + 1) * hd]);
                    v[s * kv_dim + kvh * hd..][..hd].convert_to_f32_slice(&mut values[s * hd..(s + 1) * hd]);
                }
                widened = Some(kvh);
            }
            // The query meets the f16 keys as f16 too (llama.cpp converts it for the product).
            q.iter_mut().zip(&qkv[t * (q_dim + 2 * kv_dim) + h * hd..][..hd]).for_each(|(q, x)| *q = to_f16(*x));
            let upto = pos + t + 1;
            let mut max = f32::NEG_INFINITY;
            for (score, key) in scores[..upto].iter_mut().zip(keys.chunks_exact(hd)) {
                *score = dot(&q, key) * scale;
                max = max.max(*score);
            }
            let mut sum = 0f32;
            for score in &mut scores[..upto] {
                *score = (*score - max).exp();
                sum += *score;
            }
            // SAFETY: the pair's slice of `out` is written by this thread only.
            let o = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(t * q_dim + h * hd), hd) };
            o.fill(0.0);
            for (score, value) in scores[..upto].iter().zip(values.chunks_exact(hd)) {
                // Weights meet the f16 values as f16, as in llama.cpp.
                let w = to_f16(score / sum);
                o.iter_mut().zip(value).for_each(|(o, v)| *o += w * v);
            }
        }
    });
}

fn arch(content: &Content) -> Result<String, CpuLlmError> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| CpuLlmError::Format("no general.architecture".into()))
}

fn config(content: &Content, arch: &str, max_context: usize) -> Result<Config, CpuLlmError> {
    let md = &content.metadata;
    let get = |k: &str| md.get(&format!("{arch}.{k}"));
    let int = |k: &str| -> Result<usize, CpuLlmError> {
        get(k).and_then(|v| v.to_u32().ok()).map(|v| v as usize).ok_or_else(|| CpuLlmError::Format(format!("no {arch}.{k}")))
    };
    let dim = int("embedding_length")?;
    let heads = int("attention.head_count")?;
    let kv_heads = int("attention.head_count_kv").unwrap_or(heads);
    let head_dim = int("attention.key_length").unwrap_or(dim / heads.max(1));
    if int("rope.dimension_count").is_ok_and(|d| d != head_dim) {
        return Err(unsupported("partial rotary embeddings".into()));
    }
    let embd = content.tensor_infos.get("token_embd.weight").ok_or_else(|| CpuLlmError::Format("no token_embd.weight".into()))?;
    Ok(Config {
        dim,
        layers: int("block_count")?,
        heads,
        kv_heads,
        head_dim,
        ffn: int("feed_forward_length")?,
        vocab: embd.shape.dims()[0],
        eps: get("attention.layer_norm_rms_epsilon").and_then(|v| v.to_f32().ok()).unwrap_or(1e-5),
        rope_base: get("rope.freq_base").and_then(|v| v.to_f32().ok()).unwrap_or(10_000.0),
        neox: arch == "qwen2",
        context: int("context_length").unwrap_or(2048).min(max_context),
    })
}

/// A tensor's dimensions (outermost first) and its bytes as stored.
fn read_tensor<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<(Vec<usize>, Vec<u8>), CpuLlmError> {
    let info = content.tensor_infos.get(name).ok_or_else(|| CpuLlmError::Format(format!("no tensor {name}")))?;
    let (dtype, dims) = (info.ggml_dtype, info.shape.dims().to_vec());
    let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
    let mut raw = vec![0u8; bytes];
    file.seek(SeekFrom::Start(content.tensor_data_offset + info.offset))?;
    file.read_exact(&mut raw)?;
    Ok((dims, raw))
}

fn matrix<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Matrix, CpuLlmError> {
    let dtype = content.tensor_infos.get(name).map(|i| i.ggml_dtype).ok_or_else(|| CpuLlmError::Format(format!("no tensor {name}")))?;
    let (dims, raw) = read_tensor(content, file, name)?;
    Matrix::from_gguf(dtype, &raw, dims[0], dims[1])
        .ok_or_else(|| CpuLlmError::Format(format!("{name}: not a {dtype:?} matrix of {dims:?}")))
}

/// A vector (norm weights, biases) as f32.
fn vector<R: Read + Seek>(content: &Content, file: &mut R, name: &str) -> Result<Vec<f32>, CpuLlmError> {
    let dtype = content.tensor_infos.get(name).map(|i| i.ggml_dtype);
    let (_, raw) = read_tensor(content, file, name)?;
    match dtype {
        Some(GgmlDType::F32) => Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        Some(GgmlDType::F16) => Ok(raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        other => Err(CpuLlmError::Format(format!("{name}: a vector stored as {other:?}"))),
    }
}
