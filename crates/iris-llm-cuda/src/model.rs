//! The transformer of the llama, qwen2 and gemma3 families on the GPU, layer for layer as Iris's
//! CPU engine runs it (`iris_llm_cpu::model`): the weights quantised as the file has them, an f16
//! KV cache preallocated for the whole context (cut back by position, never copied), and every
//! activation in buffers made once at load. A decode step is a dozen kernel launches a layer and
//! one copy of the logits back.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::Content;
use iris_llm_cpu::config::{arch, config};
use iris_llm_cpu::{Config, Family};

use crate::gpu::{arg, Buffer, Gpu, Graph, Kernel, Pinned};
use crate::repack::{WeightType, ALL};
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
const MIN_CHUNK: usize = 64;

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
    act_mul: Kernel,
    qkv_post: Kernel,
    attn_part: Kernel,
    attn_combine: Kernel,
    absmax: Kernel,
    finish_scale: Kernel,
    to_half: Kernel,
}

/// A matrix on the GPU in its padded blocks (`repack`).
struct Weight {
    buf: Buffer,
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
    /// Whether this engine runs the file (and if not, why not).
    pub fn check(content: &Content) -> Result<(), CudaLlmError> {
        let arch = arch(content).map_err(|e| CudaLlmError::Format(e.to_string()))?;
        if Family::of(&arch).is_none() {
            return Err(unsupported(format!("the `{arch}` family")));
        }
        for (name, info) in &content.tensor_infos {
            let dims = info.shape.dims();
            if dims.len() == 2 {
                if WeightType::of(info.ggml_dtype).is_none() {
                    let kinds: Vec<&str> = ALL.iter().map(|t| t.suffix).collect();
                    return Err(unsupported(format!("{name} is {:?}; this engine takes {}", info.ggml_dtype, kinds.join(", "))));
                }
                if dims[1] % 32 != 0 {
                    return Err(unsupported(format!("{name} has rows of {} values, not a multiple of 32", dims[1])));
                }
            }
        }
        let cfg = config(content, &arch, usize::MAX).map_err(|e| CudaLlmError::Format(e.to_string()))?;
        if cfg.heads == 0 || cfg.kv_heads == 0 || cfg.heads % cfg.kv_heads != 0 {
            return Err(unsupported("an unusual head layout".into()));
        }
        // Attention gives each key 8 threads of even widths, and each dimension a thread of 256.
        if cfg.head_dim % 16 != 0 || cfg.head_dim > 256 {
            return Err(unsupported(format!("heads of {} (this engine takes multiples of 16 up to 256)", cfg.head_dim)));
        }
        Ok(())
    }

    /// Loads the file onto GPU `ordinal` with a context of up to `max_context` positions, after
    /// checking that it fits in the GPU's free memory.
    pub fn load<R: Read + Seek>(content: &Content, file: &mut R, max_context: usize, ordinal: usize) -> Result<Self, CudaLlmError> {
        Self::check(content)?;
        let arch = arch(content).map_err(|e| CudaLlmError::Format(e.to_string()))?;
        let cfg = config(content, &arch, max_context).map_err(|e| CudaLlmError::Format(e.to_string()))?;
        let gpu = Gpu::new(ordinal)?;
        let k = Kernels {
            rmsnorm: gpu.function("rmsnorm")?,
            rmsnorm_add: gpu.function("rmsnorm_add")?,
            act_mul: gpu.function("act_mul")?,
            qkv_post: gpu.function("qkv_post")?,
            attn_part: gpu.function("attn_part")?,
            attn_combine: gpu.function("attn_combine")?,
            absmax: gpu.function("absmax")?,
            finish_scale: gpu.function("finish_scale")?,
            to_half: gpu.function("to_half")?,
        };
        let mut by_type = Vec::new();
        for t in ALL {
            let f = |what: &str| gpu.function(&format!("{what}_{}", t.suffix));
            by_type.push((
                t,
                TypeKernels {
                    suffix: t.suffix,
                    mv: f("mv")?,
                    mm: f("mm")?,
                    gated_mv: f("gated_mv")?,
                    gated_mm: f("gated_mm")?,
                    dequant: f("dequant")?,
                    embed: f("embed")?,
                },
            ));
        }
        let file_len = file.seek(SeekFrom::End(0))?;
        let (kv_dim, q_dim, hd) = (cfg.kv_heads * cfg.head_dim, cfg.heads * cfg.head_dim, cfg.head_dim);
        // What it will take, before any of it is taken.
        let weights: u64 = content
            .tensor_infos
            .values()
            .map(|i| {
                let t = WeightType::of(i.ggml_dtype).unwrap_or(crate::repack::F32);
                (i.shape.elem_count() / t.block_values * t.padded_bytes) as u64
            })
            .sum();
        let kv = (cfg.layers * cfg.context * kv_dim * 2 * 2) as u64;
        let widest = [cfg.dim, cfg.ffn, q_dim + 2 * kv_dim].into_iter().max().unwrap_or(0);
        let biggest = content.tensor_infos.values().filter(|i| i.shape.dims().len() == 2).map(|i| i.shape.elem_count()).max().unwrap_or(0);
        let scratch = (BATCH * (3 * cfg.dim + q_dim + 2 * kv_dim + q_dim + 3 * cfg.ffn + cfg.heads * MAX_SPLITS * (hd + 2)) * 4
            + BATCH * widest * 2
            + biggest * 2
            + cfg.vocab * 4) as u64;
        let (free, total) = gpu.memory()?;
        let need = weights + kv + scratch;
        if need > free as u64 {
            return Err(CudaLlmError::Memory(format!(
                "the model needs {:.1} GB of GPU memory (weights {:.1} GB, KV cache {:.1} GB for {} positions) and {} has {:.1} GB free of {:.1} GB; use a smaller model or context",
                need as f64 / 1e9,
                weights as f64 / 1e9,
                kv as f64 / 1e9,
                cfg.context,
                gpu.name(),
                free as f64 / 1e9,
                total as f64 / 1e9
            )));
        }
        // Attention keeps a split's scores in shared memory.
        let shared = attention_shared(hd, cfg.context);
        if shared > 200 * 1024 {
            return Err(unsupported(format!("a context of {} positions (this engine's attention takes up to about 800,000)", cfg.context)));
        }
        if shared > 48 * 1024 {
            gpu.allow_shared(k.attn_part, shared)?;
        }
        let by_type = &by_type;
        let mut read = |name: &str| weight(content, file, file_len, name, by_type);
        let embd = read("token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") { Some(read("output.weight")?) } else { None };
        let mut layers = Vec::with_capacity(cfg.layers);
        let gemma = cfg.family == Family::Gemma3;
        for l in 0..cfg.layers {
            let p = |s: &str| format!("blk.{l}.{s}");
            let vec = |file: &mut R, name: &str| vector(content, file, file_len, &p(name));
            let opt = |file: &mut R, name: &str| -> Result<Option<Buffer>, CudaLlmError> {
                if content.tensor_infos.contains_key(&p(name)) {
                    vec(file, name).map(Some)
                } else {
                    Ok(None)
                }
            };
            let qkv_bias = if content.tensor_infos.contains_key(&p("attn_q.bias")) {
                let mut b = raw_vector(content, file, file_len, &p("attn_q.bias"))?;
                b.extend(raw_vector(content, file, file_len, &p("attn_k.bias"))?);
                b.extend(raw_vector(content, file, file_len, &p("attn_v.bias"))?);
                Some(Buffer::from_f32(&b)?)
            } else {
                None
            };
            let mut m = Vec::with_capacity(7);
            for name in MATRICES {
                m.push(weight(content, file, file_len, &p(&format!("{name}.weight")), by_type)?);
            }
            let [q, k, v, wo, gate, up, down]: [Weight; 7] =
                m.try_into().map_err(|_| CudaLlmError::Format(format!("blk.{l}: matrices missing")))?;
            let d = cfg.dim;
            let shapes = [
                (&q, q_dim, d),
                (&k, kv_dim, d),
                (&v, kv_dim, d),
                (&wo, d, q_dim),
                (&gate, cfg.ffn, d),
                (&up, cfg.ffn, d),
                (&down, d, cfg.ffn),
            ];
            if shapes.iter().any(|(m, rows, cols)| m.rows != *rows || m.cols != *cols) {
                return Err(CudaLlmError::Format(format!("blk.{l}: shapes do not match the metadata")));
            }
            layers.push(Layer {
                attn_norm: vec(file, "attn_norm.weight")?,
                q,
                k,
                v,
                qkv_bias,
                wo,
                ffn_norm: vec(file, "ffn_norm.weight")?,
                gate,
                up,
                down,
                q_norm: opt(file, "attn_q_norm.weight")?,
                k_norm: opt(file, "attn_k_norm.weight")?,
                post_attn_norm: if gemma { Some(vec(file, "post_attention_norm.weight")?) } else { None },
                post_ffn_norm: if gemma { Some(vec(file, "post_ffw_norm.weight")?) } else { None },
                k_cache: Buffer::zeroed(cfg.context * kv_dim * 2)?,
                v_cache: Buffer::zeroed(cfg.context * kv_dim * 2)?,
            });
        }
        let half = cfg.head_dim / 2;
        let freqs_of = |base: f32| -> Vec<f32> { (0..half).map(|i| base.powf(-2.0 * i as f32 / cfg.head_dim as f32)).collect() };
        let mut freqs: Vec<f32> = freqs_of(cfg.rope_base).iter().map(|f| f / cfg.rope_scale).collect();
        if content.tensor_infos.contains_key("rope_freqs.weight") {
            for (f, factor) in freqs.iter_mut().zip(raw_vector(content, file, file_len, "rope_freqs.weight")?) {
                *f /= factor;
            }
        }
        let f32s = |n: usize| Buffer::zeroed(n * 4);
        let output_rows = output.as_ref().unwrap_or(&embd).rows;
        let s = Scratch {
            tokens: Buffer::zeroed((BATCH + 1) * 4)?,
            x: f32s(BATCH * cfg.dim)?,
            xn: f32s(BATCH * cfg.dim)?,
            qkv: f32s(BATCH * (q_dim + 2 * kv_dim))?,
            att: f32s(BATCH * q_dim)?,
            proj: f32s(BATCH * cfg.dim)?,
            gu: f32s(BATCH * 2 * cfg.ffn)?,
            h: f32s(BATCH * cfg.ffn)?,
            logits: f32s(output_rows)?,
            logits_host: Pinned::new(output_rows)?,
            part: f32s(BATCH * cfg.heads * MAX_SPLITS * (hd + 2))?,
            x_half: Buffer::zeroed(BATCH * widest * 2)?,
            w_half: Buffer::zeroed(biggest * 2)?,
            scale: f32s(4)?,
        };
        Ok(Self {
            embd,
            output,
            out_norm: vector(content, file, file_len, "output_norm.weight")?,
            layers,
            freqs: Buffer::from_f32(&freqs)?,
            local_freqs: Buffer::from_f32(&freqs_of(cfg.local_rope_base))?,
            s,
            len: 0,
            k,
            decode: if std::env::var("IRIS_CUDA_GRAPHS").is_ok_and(|v| v == "0") { Some(Err("IRIS_CUDA_GRAPHS=0".into())) } else { None },
            gpu,
            cfg,
        })
    }

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

    /// How decode steps run: "graphs", or why not.
    pub fn launches(&self) -> String {
        match &self.decode {
            Some(Err(why)) => format!("no graphs: {why}"),
            _ => "graphs".into(),
        }
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
        for (l, layer) in self.layers.iter().enumerate() {
            let window = c.window_of(l);
            let freqs = if window.is_some() { &self.local_freqs } else { &self.freqs };
            self.rmsnorm(s.x.ptr, &layer.attn_norm, s.xn.ptr, n)?;
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
            let opt = |b: &Option<Buffer>| b.as_ref().map_or(0u64, |b| b.ptr);
            let (bias, qn, kn) = (opt(&layer.qkv_bias), opt(&layer.q_norm), opt(&layer.k_norm));
            let (qkv_i, pos_p, heads, kvh, hd_i, neox, kv_i) =
                (qkv_dim as i32, s.tokens.at(BATCH * 4), c.heads as i32, c.kv_heads as i32, hd as i32, i32::from(c.neox()), kv_dim as i32);
            let (kc, vc, fr, eps) = (layer.k_cache.ptr, layer.v_cache.ptr, freqs.ptr, c.eps);
            unsafe {
                g.launch(
                    self.k.qkv_post,
                    ((c.heads + 2 * c.kv_heads) as u32, n as u32, 1),
                    ((hd / 2) as u32, 1, 1),
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
                let (min_chunk, splits_i) = (MIN_CHUNK as i32, MAX_SPLITS as i32);
                g.launch(
                    self.k.attn_part,
                    (c.heads as u32, n as u32, MAX_SPLITS as u32),
                    (256, 1, 1),
                    attention_shared(hd, c.context) as u32,
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
            self.residual(&layer.wo, s.att.ptr, n, q_dim, layer.post_attn_norm.as_ref())?;
            self.rmsnorm(s.x.ptr, &layer.ffn_norm, s.xn.ptr, n)?;
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
            self.residual(&layer.down, s.h.ptr, n, ffn, layer.post_ffn_norm.as_ref())?;
        }
        Ok(())
    }

    /// `x += w · input`, through Gemma's norm first where the family has one there.
    fn residual(&self, w: &Weight, input: u64, n: usize, width: usize, norm: Option<&Buffer>) -> Result<(), CudaLlmError> {
        let (s, dim) = (&self.s, self.cfg.dim);
        match norm {
            None => self.products(input, n, width, &[(w, s.x.ptr, dim, true)]),
            Some(norm) => {
                self.products(input, n, width, &[(w, s.proj.ptr, dim, false)])?;
                let (dim_i, eps) = (dim as i32, self.cfg.eps);
                // SAFETY: x and proj hold n rows of dim; norm holds dim.
                unsafe {
                    self.gpu.launch(
                        self.k.rmsnorm_add,
                        (n as u32, 1, 1),
                        (256, 1, 1),
                        0,
                        &mut [arg(&s.x.ptr), arg(&s.proj.ptr), arg(&norm.ptr), arg(&dim_i), arg(&eps)],
                    )
                }
            }
        }
    }

    fn rmsnorm(&self, x: u64, w: &Buffer, out: u64, n: usize) -> Result<(), CudaLlmError> {
        let (dim, eps) = (self.cfg.dim as i32, self.cfg.eps);
        // SAFETY: x and out hold n rows of dim; w holds dim.
        unsafe {
            self.gpu.launch(self.k.rmsnorm, (n as u32, 1, 1), (256, 1, 1), 0, &mut [arg(&x), arg(&w.ptr), arg(&out), arg(&dim), arg(&eps)])
        }
    }

    /// `h = act(gate · xn) * (up · xn)` for the n tokens, in one launch (gate and up of one type).
    fn gated(&self, gate: &Weight, up: &Weight, n: usize, gelu: i32) -> Result<(), CudaLlmError> {
        let s = &self.s;
        let (kernel, tokens_per_block) = if n == 1 { (gate.kinds.gated_mv, 1) } else { (gate.kinds.gated_mm, 4) };
        let wpr = warps_per_row(gate);
        let (rows, cols, rb, n_i, dim_i, ffn_i, wpr_i) =
            (gate.rows as i32, gate.cols as i32, gate.row_bytes as i64, n as i32, self.cfg.dim as i32, self.cfg.ffn as i32, wpr as i32);
        // SAFETY: gate and up are ffn × dim of one type; xn holds n rows of dim, h n rows of ffn.
        unsafe {
            self.gpu.launch(
                kernel,
                (gate.rows.div_ceil(ROWS_PER_BLOCK as usize / wpr) as u32, n.div_ceil(tokens_per_block) as u32, 1),
                (32, ROWS_PER_BLOCK, 1),
                0,
                &mut [
                    arg(&gate.buf.ptr),
                    arg(&up.buf.ptr),
                    arg(&rows),
                    arg(&cols),
                    arg(&rb),
                    arg(&s.xn.ptr),
                    arg(&n_i),
                    arg(&dim_i),
                    arg(&s.h.ptr),
                    arg(&ffn_i),
                    arg(&gelu),
                    arg(&wpr_i),
                ],
            )
        }
    }

    /// `y[t * y_stride + r] (+)= w[r] · x[t * x_stride ..]` for the n tokens, for each
    /// (w, y, y_stride, accumulate) of `outs` (all reading the same x).
    fn products(&self, x: u64, n: usize, x_stride: usize, outs: &[(&Weight, u64, usize, bool)]) -> Result<(), CudaLlmError> {
        let (g, k) = (&self.gpu, &self.k);
        let blocks = |w: &Weight| w.rows.div_ceil(ROWS_PER_BLOCK as usize) as u32;
        let wpr = warps_per_row;
        if n > GEMM_FROM {
            let (xh, count, scale) = (self.s.x_half.ptr, (n * x_stride) as i32, self.s.scale.ptr);
            // SAFETY: x holds n rows of x_stride; x_half a batch of the widest rows; scale 4 floats.
            unsafe {
                g.launch(
                    k.absmax,
                    ((n * x_stride).div_ceil(256).min(1024) as u32, 1, 1),
                    (256, 1, 1),
                    0,
                    &mut [arg(&x), arg(&count), arg(&scale)],
                )?;
                g.launch(k.finish_scale, (1, 1, 1), (1, 1, 1), 0, &mut [arg(&scale)])?;
                g.launch(
                    k.to_half,
                    ((n * x_stride).div_ceil(256) as u32, 1, 1),
                    (256, 1, 1),
                    0,
                    &mut [arg(&x), arg(&xh), arg(&count), arg(&scale)],
                )?;
            }
            let (alpha, zero, one) = (self.s.scale.at(4), self.s.scale.at(8), self.s.scale.at(12));
            for (w, y, y_stride, accumulate) in outs {
                let (rows, cols, rb, wh) = (w.rows as i32, w.cols as i32, w.row_bytes as i64, self.s.w_half.ptr);
                // SAFETY: w_half holds the largest matrix.
                unsafe {
                    g.launch(
                        w.kinds.dequant,
                        (blocks(w), 1, 1),
                        (32, ROWS_PER_BLOCK, 1),
                        0,
                        &mut [arg(&w.buf.ptr), arg(&rows), arg(&cols), arg(&rb), arg(&wh)],
                    )?;
                }
                // x_half keeps x's row stride, so cuBLAS reads its rows where they are.
                g.gemm(wh, xh, *y, w.rows, n, w.cols, x_stride, *y_stride, alpha, if *accumulate { one } else { zero })?;
            }
            return Ok(());
        }
        for (w, y, y_stride, accumulate) in outs {
            let (kernel, tokens_per_block) = if n == 1 { (w.kinds.mv, 1) } else { (w.kinds.mm, 4) };
            let (rows, cols, rb) = (w.rows as i32, w.cols as i32, w.row_bytes as i64);
            let (n_i, xs, ys, acc, wpr) = (n as i32, x_stride as i32, *y_stride as i32, i32::from(*accumulate), wpr(w));
            let wpr_i = wpr as i32;
            // SAFETY: w holds rows × row_bytes; x n rows of x_stride; y n rows of y_stride.
            unsafe {
                g.launch(
                    kernel,
                    (w.rows.div_ceil(ROWS_PER_BLOCK as usize / wpr) as u32, n.div_ceil(tokens_per_block) as u32, 1),
                    (32, ROWS_PER_BLOCK, 1),
                    0,
                    &mut [
                        arg(&w.buf.ptr),
                        arg(&rows),
                        arg(&cols),
                        arg(&rb),
                        arg(&x),
                        arg(&n_i),
                        arg(&xs),
                        arg(y),
                        arg(&ys),
                        arg(&acc),
                        arg(&wpr_i),
                    ],
                )?;
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

/// A tensor's GGUF type, dimensions (outermost first) and bytes, its size checked against the
/// file before anything is allocated for it.
fn raw<R: Read + Seek>(
    content: &Content,
    file: &mut R,
    file_len: u64,
    name: &str,
) -> Result<(candle_core::quantized::GgmlDType, Vec<usize>, Vec<u8>), CudaLlmError> {
    let info = content.tensor_infos.get(name).ok_or_else(|| CudaLlmError::Format(format!("no tensor {name}")))?;
    let (dtype, dims) = (info.ggml_dtype, info.shape.dims().to_vec());
    let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
    let start = content.tensor_data_offset + info.offset;
    if start.checked_add(bytes as u64).is_none_or(|end| end > file_len) {
        return Err(CudaLlmError::Format(format!("{name} runs past the end of the file")));
    }
    let mut data = vec![0u8; bytes];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut data)?;
    Ok((dtype, dims, data))
}

fn weight<R: Read + Seek>(
    content: &Content,
    file: &mut R,
    file_len: u64,
    name: &str,
    by_type: &[(WeightType, TypeKernels)],
) -> Result<Weight, CudaLlmError> {
    let (dtype, dims, data) = raw(content, file, file_len, name)?;
    let kind = WeightType::of(dtype).ok_or_else(|| unsupported(format!("{name} is {dtype:?}")))?;
    let kinds = by_type.iter().find(|(t, _)| *t == kind).map(|(_, k)| *k).ok_or_else(|| unsupported(format!("{name} is {dtype:?}")))?;
    if dims.len() != 2 || dims[1] % 32 != 0 {
        return Err(CudaLlmError::Format(format!("{name}: not a matrix of rows a multiple of 32 wide ({dims:?})")));
    }
    let (rows, cols) = (dims[0], dims[1]);
    Ok(Weight { buf: Buffer::from_bytes(&kind.pad(&data))?, kinds, rows, cols, row_bytes: kind.row_bytes(cols) })
}

fn raw_vector<R: Read + Seek>(content: &Content, file: &mut R, file_len: u64, name: &str) -> Result<Vec<f32>, CudaLlmError> {
    use candle_core::quantized::GgmlDType;
    let (dtype, _, data) = raw(content, file, file_len, name)?;
    match dtype {
        GgmlDType::F32 => Ok(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        GgmlDType::F16 => Ok(data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        other => Err(CudaLlmError::Format(format!("{name}: a vector stored as {other:?}"))),
    }
}

fn vector<R: Read + Seek>(content: &Content, file: &mut R, file_len: u64, name: &str) -> Result<Buffer, CudaLlmError> {
    Buffer::from_f32(&raw_vector(content, file, file_len, name)?)
}

/// Warps per row of a product: more for longer rows, so each lane has a few units to read.
fn warps_per_row(w: &Weight) -> usize {
    match w.cols / 32 {
        c if c >= 256 => 4,
        c if c >= 96 => 2,
        _ => 1,
    }
}

/// Bytes of shared memory attention takes: the query, a split's scores, the values' partial sums.
fn attention_shared(head_dim: usize, context: usize) -> usize {
    (head_dim + chunk_for(context) + 256) * 4
}

/// Positions per attention split when queries see up to `len` positions (a multiple of 32).
fn chunk_for(len: usize) -> usize {
    len.div_ceil(MAX_SPLITS).max(MIN_CHUNK).next_multiple_of(32)
}
