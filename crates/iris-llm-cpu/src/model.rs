//! The transformer of the llama, qwen2 and gemma3 families on [`Matrix`] weights: RMSNorm,
//! grouped-query attention with rotary positions (llama's adjacent pairs, the others' halves as
//! NeoX), a gated feed-forward (SwiGLU; Gemma's GELU), and an f16 KV cache that grows in place.
//! Gemma 3's extras (see [`Family::Gemma3`]) are optional parts of a layer. Only the last
//! position's logits are computed, as llama.cpp does.

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use half::f16;

use crate::config::{arch, config, matrices, matrix, optional_vector, vector, Config, Family};
use crate::kernels::Kernel;
use crate::matrix::Matrix;
use crate::ops::{attention, gelu, rmsnorm_in_place, rmsnorm_rows, rope, rope_angles, silu};
use crate::pool::{share, Pool, SyncPtr};
use crate::q8::{ActKind, QActs, ACT_KINDS};
use crate::CpuLlmError;

/// Tokens of a prompt processed together (bounds the scratch buffers).
const BATCH: usize = 64;

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
    /// Gemma 3: RMSNorm of each head of q and of k, and of the attention's and the feed-forward
    /// block's outputs before they join the residual.
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    post_ffn_norm: Option<Vec<f32>>,
    /// Keys and values in f16, as llama.cpp keeps them by default: half the memory, and the
    /// same rounding (greedy answers then match llama.cpp's token for token).
    k_cache: Vec<f16>,
    v_cache: Vec<f16>,
}

/// Quantised activations of a batch, in each form the matrices they meet need (indexed by
/// [`ActKind`]).
#[derive(Default)]
struct Acts([Vec<QActs>; ACT_KINDS.len()]);

impl Acts {
    /// Quantises the rows of `x` (`n` of them) for every matrix in `users`, the rows shared out
    /// over the pool (on one thread, a pre-fill's quantisation kept the other waiting).
    fn quantize(&mut self, pool: &Pool, x: &[f32], n: usize, users: &[&Matrix]) {
        let threads = pool.threads();
        for kind in ACT_KINDS {
            if users.iter().any(|m| m.act_kind() == kind) {
                let acts = &mut self.0[kind as usize];
                acts.resize_with(n.max(acts.len()), QActs::default);
                if n == 1 {
                    // Decode: not worth a hand-off.
                    acts[0].quantize_as(x, kind);
                    continue;
                }
                let (width, base) = (x.len() / n, SyncPtr(acts.as_mut_ptr()));
                pool.run(&|i| {
                    for t in share(n, i, threads, 1) {
                        // SAFETY: each thread quantises only its own rows, and `run` joins.
                        unsafe { (*base.get().add(t)).quantize_as(&x[t * width..(t + 1) * width], kind) };
                    }
                });
            }
        }
    }

    fn get(&self, kind: ActKind, n: usize) -> &[QActs] {
        &self.0[kind as usize][..n]
    }
}

pub struct Model {
    cfg: Config,
    embd: Matrix,
    /// `None`: tied to the embedding.
    output: Option<Matrix>,
    out_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// Rotary frequency of each pair of a head: global layers, and sliding-window ones.
    freqs: Vec<f32>,
    local_freqs: Vec<f32>,
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
        if Family::of(&arch).is_none() {
            return Err(unsupported(format!("the `{arch}` family")));
        }
        let kernel = Kernel::detect();
        for (name, info) in &content.tensor_infos {
            let matrix = info.shape.dims().len() == 2;
            if matrix && !Matrix::takes(info.ggml_dtype, kernel) {
                return Err(unsupported(format!(
                    "{name} is {:?}; this engine takes Q8_0, Q5_0, Q4_0, Q5_1 and Q4_1 matrices, and Q4_K, Q6_K and F16 with AVX2 or AVX-512 VNNI ({} here)",
                    info.ggml_dtype,
                    kernel.name()
                )));
            }
        }
        // F16 rows are read 32 values at a time.
        if let Some((name, _)) = content
            .tensor_infos
            .iter()
            .find(|(_, i)| i.ggml_dtype == GgmlDType::F16 && i.shape.dims().len() == 2 && i.shape.dims()[1] % 32 != 0)
        {
            return Err(unsupported(format!("{name} is F16 with rows that are not a multiple of 32 wide")));
        }
        let cfg = config(content, &arch, usize::MAX)?;
        if cfg.heads == 0 || cfg.kv_heads == 0 || cfg.head_dim % 2 != 0 || cfg.heads % cfg.kv_heads != 0 {
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
        let gemma = cfg.family == Family::Gemma3;
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
            let gemma_norm = |name: &str, file: &mut R| if gemma { vector(content, file, &p(name)).map(Some) } else { Ok(None) };
            let names = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map(|m| p(&format!("{m}.weight")));
            let [q, k, v, wo, gate, up, down]: [Matrix; 7] = matrices(content, file, &names, threads)?
                .try_into()
                .map_err(|_| CpuLlmError::Format(format!("blk.{l}: matrices missing")))?;
            let layer = Layer {
                attn_norm: vector(content, file, &p("attn_norm.weight"))?,
                q,
                k,
                v,
                qkv_bias,
                wo,
                ffn_norm: vector(content, file, &p("ffn_norm.weight"))?,
                gate,
                up,
                down,
                q_norm: optional_vector(content, file, &p("attn_q_norm.weight"))?,
                k_norm: optional_vector(content, file, &p("attn_k_norm.weight"))?,
                post_attn_norm: gemma_norm("post_attention_norm.weight", file)?,
                post_ffn_norm: gemma_norm("post_ffw_norm.weight", file)?,
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
            let head_norms = [&layer.q_norm, &layer.k_norm].into_iter().flatten().all(|w| w.len() == cfg.head_dim);
            if !head_norms || shapes.iter().any(|(m, rows, cols)| m.rows() != *rows || m.cols() != *cols) {
                return Err(CpuLlmError::Format(format!("blk.{l}: shapes do not match the metadata")));
            }
            layers.push(layer);
        }
        let half = cfg.head_dim / 2;
        let freqs_of = |base: f32| -> Vec<f32> { (0..half).map(|i| base.powf(-2.0 * i as f32 / cfg.head_dim as f32)).collect() };
        let mut freqs: Vec<f32> = freqs_of(cfg.rope_base).iter().map(|f| f / cfg.rope_scale).collect();
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
            local_freqs: freqs_of(cfg.local_rope_base),
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
        if c.family == Family::Gemma3 {
            let scale = (dim as f32).sqrt();
            x.iter_mut().for_each(|v| *v *= scale);
        }
        let act = if c.family == Family::Gemma3 { gelu } else { silu };
        let acts = &mut self.acts;
        let (mut xn, mut proj) = (vec![0f32; n * dim], vec![0f32; n * dim]);
        let (mut qkv, mut att) = (vec![0f32; n * qkv_dim], vec![0f32; n * q_dim]);
        let (mut gu, mut h) = (vec![0f32; n * 2 * ffn], vec![0f32; n * ffn]);
        let global_angles = rope_angles(pos, n, &self.freqs);
        let local_angles = if c.window.is_some() { rope_angles(pos, n, &self.local_freqs) } else { Vec::new() };
        let pairs = self.freqs.len();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let window = c.window_of(l);
            let angles = if window.is_some() { &local_angles } else { &global_angles };
            rmsnorm_rows(&x, &layer.attn_norm, c.eps, &mut xn);
            acts.quantize(pool, &xn, n, &[&layer.q, &layer.k, &layer.v]);
            par_matmul(pool, kernel, &[(&layer.q, 0), (&layer.k, q_dim), (&layer.v, q_dim + kv_dim)], acts, n, &mut qkv, qkv_dim);
            for (t, row) in qkv.chunks_exact_mut(qkv_dim).enumerate() {
                if let Some(b) = &layer.qkv_bias {
                    row.iter_mut().zip(b).for_each(|(r, b)| *r += b);
                }
                if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                    rmsnorm_in_place(&mut row[..q_dim], qn, c.eps);
                    rmsnorm_in_place(&mut row[q_dim..q_dim + kv_dim], kn, c.eps);
                }
                for head in row[..q_dim + kv_dim].chunks_exact_mut(hd) {
                    rope(head, &angles[t * pairs..(t + 1) * pairs], c.neox());
                }
                layer.k_cache.extend(row[q_dim..q_dim + kv_dim].iter().map(|v| f16::from_f32(*v)));
                layer.v_cache.extend(row[q_dim + kv_dim..].iter().map(|v| f16::from_f32(*v)));
            }
            attention(pool, c, &qkv, &layer.k_cache, &layer.v_cache, pos, n, window, &mut att);
            acts.quantize(pool, &att, n, &[&layer.wo]);
            par_matmul(pool, kernel, &[(&layer.wo, 0)], acts, n, &mut proj, dim);
            add_normed(&mut x, &mut proj, layer.post_attn_norm.as_deref(), c.eps);

            rmsnorm_rows(&x, &layer.ffn_norm, c.eps, &mut xn);
            acts.quantize(pool, &xn, n, &[&layer.gate, &layer.up]);
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
                            *h_out.get().add(t * ffn + j) = act(*g.add(j)) * *g.add(ffn + j);
                        }
                    }
                }
            });
            acts.quantize(pool, &h, n, &[&layer.down]);
            par_matmul(pool, kernel, &[(&layer.down, 0)], acts, n, &mut proj, dim);
            add_normed(&mut x, &mut proj, layer.post_ffn_norm.as_deref(), c.eps);
        }
        self.len += n;
        x.split_off((n - 1) * dim)
    }

    fn logits(&mut self, hidden: &[f32]) -> Vec<f32> {
        let mut xn = vec![0f32; hidden.len()];
        rmsnorm_rows(hidden, &self.out_norm, self.cfg.eps, &mut xn);
        let head = self.output.as_ref().unwrap_or(&self.embd);
        self.acts.quantize(&self.pool, &xn, 1, &[head]);
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

/// `x += out`, `out` RMS-normalised first where the family has a norm there (Gemma 3).
fn add_normed(x: &mut [f32], out: &mut [f32], norm: Option<&[f32]>, eps: f32) {
    if let Some(w) = norm {
        rmsnorm_in_place(out, w, eps);
    }
    x.iter_mut().zip(out.iter()).for_each(|(x, p)| *x += p);
}
