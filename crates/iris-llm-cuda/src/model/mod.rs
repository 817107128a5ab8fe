//! The transformer of the llama, qwen2 and gemma3 families on the GPU, layer for layer as Iris's
//! CPU engine runs it (`iris_llm_cpu::model`): the weights quantised as the file has them, an f16
//! KV cache preallocated for the whole context (cut back by position, never copied), and every
//! activation in buffers made once at load. A decode step is a dozen kernel launches a layer and
//! one copy of the logits back.

mod load;
mod products;

use iris_llm_cpu::{Config, Family};

use crate::gpu::{arg, Buffer, Gpu, Graph, Kernel, Pinned};
use crate::CudaLlmError;

/// Prompt tokens run through the layers together (bounds the activation buffers).
const BATCH: usize = 512;
/// Above this many tokens a product goes to cuBLAS on weights dequantised to f16; up to it, the
/// quantised kernels read the weights once per four tokens.
const GEMM_FROM: usize = 16;
/// Rows of a matrix per block of the product kernels (a warp each).
const ROWS_PER_BLOCK: u32 = 4;
/// Attention splits a query's positions over at most this many blocks, of at least
/// `MIN_CHUNK` positions each (a decode step has one query per head: too few blocks alone).
const MAX_SPLITS: usize = 16;
const MIN_CHUNK: usize = 32;
// `attn_combine` weighs the splits in one warp.
const _: () = assert!(MAX_SPLITS <= 32);

/// The kernels of one weight type: a product with one token, with up to four per block, the
/// dequantisation to f16, and the embedding lookup.
#[derive(Clone, Copy)]
struct TypeKernels {
    suffix: &'static str,
    mv: Kernel,
    mm: Kernel,
    /// The feed-forward's gate and up products and activation in one (`gated_impl`).
    gated_mv: Kernel,
    gated_mm: Kernel,
    dequant: Kernel,
    embed: Kernel,
}

/// The kernels that do not depend on a weight type.
struct Kernels {
    rmsnorm: Kernel,
    rmsnorm_add: Kernel,
    rmsnorm_q8: Kernel,
    rmsnorm_add_q8: Kernel,
    act_mul: Kernel,
    qkv_post: Kernel,
    attn_part: Kernel,
    attn_combine: Kernel,
    absmax: Kernel,
    finish_scale: Kernel,
    mv_qkv: Kernel,
    to_half: Kernel,
    quantize_q8: Kernel,
}

/// A matrix on the GPU in its padded blocks (`repack`).
struct Weight {
    buf: Buffer,
    /// Dequantised to f16 at load, where the GPU has the room: a long prompt's products then go
    /// straight to cuBLAS (dequantising each matrix for each prompt took half of pre-fill).
    half: Option<Buffer>,
    type_id: i32,
    kinds: TypeKernels,
    rows: usize,
    cols: usize,
    row_bytes: usize,
}

struct Layer {
    attn_norm: Buffer,
    q: Weight,
    k: Weight,
    v: Weight,
    qkv_bias: Option<Buffer>,
    wo: Weight,
    ffn_norm: Buffer,
    gate: Weight,
    up: Weight,
    down: Weight,
    q_norm: Option<Buffer>,
    k_norm: Option<Buffer>,
    post_attn_norm: Option<Buffer>,
    post_ffn_norm: Option<Buffer>,
    k_cache: Buffer,
    v_cache: Buffer,
}

/// The activations of a batch, f32 unless said.
struct Scratch {
    /// The batch's token ids (i32) and its first position (one i32 after BATCH ids).
    tokens: Buffer,
    x: Buffer,
    xn: Buffer,
    qkv: Buffer,
    att: Buffer,
    proj: Buffer,
    gu: Buffer,
    h: Buffer,
    logits: Buffer,
    logits_host: Pinned,
    /// Attention's parts: per token, head and split, head_dim values, a maximum and a sum.
    part: Buffer,
    /// f16: a batch's activations and one dequantised matrix, for cuBLAS; `scale`: the
    /// activations' maximum (as bits), their divisor, and the betas 0 and 1.
    x_half: Buffer,
    w_half: Buffer,
    scale: Buffer,
    /// A decode step's activation as int8 (`xq`) with a scale per 32 values (`xd`), for the
    /// products of the types that take it (`qdot.cuh`).
    xq: Buffer,
    xd: Buffer,
}

pub struct Model {
    cfg: Config,
    embd: Weight,
    /// `None`: tied to the embedding.
    output: Option<Weight>,
    out_norm: Buffer,
    layers: Vec<Layer>,
    freqs: Buffer,
    local_freqs: Buffer,
    s: Scratch,
    /// Positions the KV cache holds.
    len: usize,
    k: Kernels,
    /// A decode step (one token through every layer to the logits), captured at the first;
    /// `Err`: why steps are launched one kernel at a time instead.
    decode: Option<Result<Graph, String>>,
    // Declared last: dropped after every buffer and graph of its context.
    gpu: Gpu,
}

fn unsupported(m: String) -> CudaLlmError {
    CudaLlmError::Unsupported(m)
}

const MATRICES: [&str; 7] = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

impl Model {
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The GPU's name and ordinal, e.g. "NVIDIA H200 (cuda:0)".
    pub fn device(&self) -> String {
        format!("{} (cuda:{})", self.gpu.name(), self.gpu.ordinal())
    }

    /// Logits after `tokens` at positions `pos..`, on top of the first `pos` cached positions
    /// (a shorter cache than `pos` is an error; a longer one is cut back).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, CudaLlmError> {
        if pos > self.len {
            return Err(CudaLlmError::Inference(format!("position {pos} is past the {} cached", self.len)));
        }
        if tokens.is_empty() || pos + tokens.len() > self.cfg.context {
            return Err(CudaLlmError::Inference(format!("{} tokens at {pos} do not fit a context of {}", tokens.len(), self.cfg.context)));
        }
        if let Some(t) = tokens.iter().find(|t| **t as usize >= self.cfg.vocab) {
            return Err(CudaLlmError::Inference(format!("token {t} is outside the vocabulary")));
        }
        self.gpu.bind()?;
        // Until the batches are through, the cache holds an unknown part of them.
        self.len = pos;
        if tokens.len() == 1 {
            self.inputs(tokens, pos)?;
            if self.decode.is_none() {
                let captured = self.gpu.capture(|| self.step(1, 0)).map_err(|e| e.to_string());
                self.decode = Some(captured);
            }
            match &self.decode {
                Some(Ok(graph)) => self.gpu.replay(graph)?,
                _ => self.step(1, 0)?,
            }
        } else {
            for (i, batch) in tokens.chunks(BATCH).enumerate() {
                self.inputs(batch, pos + i * BATCH)?;
                self.layers(batch.len())?;
                self.len = pos + i * BATCH + batch.len();
            }
            self.head((tokens.len() - 1) % BATCH)?;
        }
        self.len = pos + tokens.len();
        self.gpu.read_f32(self.s.logits.ptr, &mut self.s.logits_host)
    }

    /// How decode steps run ("graphs", or why not) and whether pre-fill has f16 copies.
    pub fn launches(&self) -> String {
        let graphs = match &self.decode {
            Some(Err(why)) => format!("no graphs: {why}"),
            _ => "graphs".into(),
        };
        let half = self.layers.first().is_some_and(|l| l.q.half.is_some());
        format!("{graphs}, {}", if half { "f16 copies for pre-fill" } else { "pre-fill dequantises" })
    }
}

impl Model {
    /// A batch's ids and first position, into GPU memory where the kernels read them.
    fn inputs(&self, tokens: &[u32], pos: usize) -> Result<(), CudaLlmError> {
        let ids: Vec<i32> = tokens.iter().map(|t| *t as i32).collect();
        self.gpu.write(self.s.tokens.ptr, &ids)?;
        self.gpu.write(self.s.tokens.at(BATCH * 4), &[pos as i32])
    }

    /// A decode step's launches: the token through every layer, then the logits.
    fn step(&self, n: usize, last: usize) -> Result<(), CudaLlmError> {
        self.layers(n)?;
        self.head(last)
    }

    /// Runs the batch in `s.tokens` (n ids) through every layer, appending it to the KV cache;
    /// its hidden states are left in `s.x`.
    fn layers(&self, n: usize) -> Result<(), CudaLlmError> {
        let (c, s, g) = (&self.cfg, &self.s, &self.gpu);
        let (dim, hd, ffn) = (c.dim, c.head_dim, c.ffn);
        let (q_dim, kv_dim) = (c.heads * hd, c.kv_heads * hd);
        let qkv_dim = q_dim + 2 * kv_dim;
        let scale = if c.family == Family::Gemma3 { (dim as f32).sqrt() } else { 1.0 };
        let (table, row_bytes, x, dim_i) = (self.embd.buf.ptr, self.embd.row_bytes as i64, s.x.ptr, dim as i32);
        // SAFETY (every launch below): arguments in the kernel's order and types; every buffer
        // was sized at load for BATCH tokens of this model's shapes.
        unsafe {
            g.launch(
                self.embd.kinds.embed,
                (n as u32, 1, 1),
                (32, 1, 1),
                0,
                &mut [arg(&table), arg(&row_bytes), arg(&s.tokens.ptr), arg(&x), arg(&dim_i), arg(&scale)],
            )?;
        }
        let gelu = i32::from(c.family == Family::Gemma3);
        // A decode step's norms also quantise the products' input (one launch, not two); on
        // Gemma 3 the norm after a block, the residual and the next norm are one launch too, so
        // the next layer's attention input may be ready already.
        let one = n == 1;
        let mut normed = false;
        for (l, layer) in self.layers.iter().enumerate() {
            let window = c.window_of(l);
            let freqs = if window.is_some() { &self.local_freqs } else { &self.freqs };
            match (one, normed) {
                (true, true) => {}
                (true, false) => self.rmsnorm_q8(&layer.attn_norm)?,
                (false, _) => self.rmsnorm(s.x.ptr, &layer.attn_norm, s.xn.ptr, n)?,
            }
            if one {
                self.qkv_one(layer)?;
            } else {
                self.products(
                    s.xn.ptr,
                    n,
                    dim,
                    &[
                        (&layer.q, s.qkv.ptr, qkv_dim, false),
                        (&layer.k, s.qkv.at(q_dim * 4), qkv_dim, false),
                        (&layer.v, s.qkv.at((q_dim + kv_dim) * 4), qkv_dim, false),
                    ],
                )?;
            }
            let opt = |b: &Option<Buffer>| b.as_ref().map_or(0u64, |b| b.ptr);
            let (bias, qn, kn) = (opt(&layer.qkv_bias), opt(&layer.q_norm), opt(&layer.k_norm));
            let (qkv_i, pos_p, heads, kvh, hd_i, neox, kv_i) =
                (qkv_dim as i32, s.tokens.at(BATCH * 4), c.heads as i32, c.kv_heads as i32, hd as i32, i32::from(c.neox()), kv_dim as i32);
            let (kc, vc, fr, eps) = (layer.k_cache.ptr, layer.v_cache.ptr, freqs.ptr, c.eps);
            unsafe {
                g.launch(
                    self.k.qkv_post,
                    ((c.heads + 2 * c.kv_heads) as u32, n as u32, 1),
                    ((hd / 2).next_multiple_of(32) as u32, 1, 1),
                    0,
                    &mut [
                        arg(&s.qkv.ptr),
                        arg(&qkv_i),
                        arg(&bias),
                        arg(&qn),
                        arg(&kn),
                        arg(&eps),
                        arg(&fr),
                        arg(&pos_p),
                        arg(&heads),
                        arg(&kvh),
                        arg(&hd_i),
                        arg(&neox),
                        arg(&kc),
                        arg(&vc),
                        arg(&kv_i),
                    ],
                )?;
                let (q_i, scale, win) = (q_dim as i32, c.attn_scale, window.map_or(0, |w| w as i32));
                let splits = if one { MAX_SPLITS } else { prompt_splits(hd, c.context) };
                let (min_chunk, splits_i) = (MIN_CHUNK as i32, splits as i32);
                g.launch(
                    self.k.attn_part,
                    (c.heads as u32, n as u32, splits as u32),
                    (256, 1, 1),
                    attention_shared(hd, c.context, splits) as u32,
                    &mut [
                        arg(&s.qkv.ptr),
                        arg(&qkv_i),
                        arg(&kc),
                        arg(&vc),
                        arg(&kv_i),
                        arg(&s.part.ptr),
                        arg(&pos_p),
                        arg(&heads),
                        arg(&kvh),
                        arg(&hd_i),
                        arg(&scale),
                        arg(&win),
                        arg(&min_chunk),
                    ],
                )?;
                g.launch(
                    self.k.attn_combine,
                    (c.heads as u32, n as u32, 1),
                    (128, 1, 1),
                    0,
                    &mut [arg(&s.part.ptr), arg(&s.att.ptr), arg(&q_i), arg(&heads), arg(&hd_i), arg(&splits_i)],
                )?;
            }
            match (one, &layer.post_attn_norm) {
                (true, Some(post)) => {
                    self.products(s.att.ptr, 1, q_dim, &[(&layer.wo, s.proj.ptr, dim, false)])?;
                    self.rmsnorm_add_q8(post, &layer.ffn_norm)?;
                }
                (true, None) => {
                    self.residual(&layer.wo, s.att.ptr, n, q_dim, None)?;
                    self.rmsnorm_q8(&layer.ffn_norm)?;
                }
                (false, post) => {
                    self.residual(&layer.wo, s.att.ptr, n, q_dim, post.as_ref())?;
                    self.rmsnorm(s.x.ptr, &layer.ffn_norm, s.xn.ptr, n)?;
                }
            }
            if n <= GEMM_FROM && layer.gate.kinds.suffix == layer.up.kinds.suffix {
                self.gated(&layer.gate, &layer.up, n, gelu)?;
            } else {
                self.products(s.xn.ptr, n, dim, &[(&layer.gate, s.gu.ptr, 2 * ffn, false), (&layer.up, s.gu.at(ffn * 4), 2 * ffn, false)])?;
                let (ffn_i, n_i) = (ffn as i32, n as i32);
                unsafe {
                    g.launch(
                        self.k.act_mul,
                        (ffn.div_ceil(256) as u32, n as u32, 1),
                        (256, 1, 1),
                        0,
                        &mut [arg(&s.gu.ptr), arg(&s.h.ptr), arg(&ffn_i), arg(&n_i), arg(&gelu)],
                    )?;
                }
            }
            let next = self.layers.get(l + 1).map(|next| &next.attn_norm);
            normed = false;
            match (one, &layer.post_ffn_norm, next) {
                (true, Some(post), Some(next)) => {
                    self.products(s.h.ptr, 1, ffn, &[(&layer.down, s.proj.ptr, dim, false)])?;
                    self.rmsnorm_add_q8(post, next)?;
                    normed = true;
                }
                (_, post, _) => self.residual(&layer.down, s.h.ptr, n, ffn, post.as_ref())?,
            }
        }
        Ok(())
    }

    /// The logits of row `last` of the batch just run, into `s.logits`.
    fn head(&self, last: usize) -> Result<(), CudaLlmError> {
        let (s, dim) = (&self.s, self.cfg.dim);
        self.rmsnorm(s.x.at(last * dim * 4), &self.out_norm, s.xn.ptr, 1)?;
        let head = self.output.as_ref().unwrap_or(&self.embd);
        self.products(s.xn.ptr, 1, dim, &[(head, s.logits.ptr, head.rows, false)])
    }
}

/// Warps per row of a product: more for longer rows, so each lane has a few units to read.
fn warps_per_row(w: &Weight) -> usize {
    match w.cols / 32 {
        c if c >= 256 => 4,
        c if c >= 96 => 2,
        _ => 1,
    }
}

/// Bytes of shared memory attention takes with `splits` splits: the query, a split's scores, the
/// values' partial sums (a head's worth per group of head_dim / 4 threads: 1024 floats for a
/// block of 256).
fn attention_shared(head_dim: usize, context: usize, splits: usize) -> usize {
    (head_dim + chunk_for(context, splits) + 1024) * 4
}

/// Positions per attention split when queries see up to `len` positions (a multiple of 32).
fn chunk_for(len: usize, splits: usize) -> usize {
    len.div_ceil(splits).max(MIN_CHUNK).next_multiple_of(32)
}

/// Splits of a prompt's attention: one where a query's scores for the whole context fit in
/// 48 KB of shared memory. A prompt's queries fill the GPU without splits, and split they were a
/// block per 32 positions of every query, each loading its query and joined after: on Gemma 3's
/// shape, 77 µs of a pre-fill's layer.
pub(super) fn prompt_splits(head_dim: usize, context: usize) -> usize {
    if attention_shared(head_dim, context, 1) <= 48 * 1024 {
        1
    } else {
        MAX_SPLITS
    }
}

/// The most shared memory attention takes, a decode step's or a prompt's.
pub(super) fn attention_shared_most(head_dim: usize, context: usize) -> usize {
    attention_shared(head_dim, context, MAX_SPLITS).max(attention_shared(head_dim, context, prompt_splits(head_dim, context)))
}
