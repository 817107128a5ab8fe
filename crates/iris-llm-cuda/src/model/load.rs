//! Loading: what the engine runs (`check`), the file's tensors onto the GPU in their padded
//! blocks, after checking they fit, and the f16 copies for pre-fill where the GPU has the room.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::Content;
use iris_llm_cpu::config::{arch, config};
use iris_llm_cpu::Family;

use super::*;
use crate::gpu::{Buffer, Gpu, Pinned};
use crate::repack::{WeightType, ALL};
use crate::CudaLlmError;

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
            rmsnorm_q8: gpu.function("rmsnorm_q8")?,
            rmsnorm_add_q8: gpu.function("rmsnorm_add_q8")?,
            act_mul: gpu.function("act_mul")?,
            qkv_post: gpu.function("qkv_post")?,
            attn_part: gpu.function("attn_part")?,
            attn_combine: gpu.function("attn_combine")?,
            absmax: gpu.function("absmax")?,
            finish_scale: gpu.function("finish_scale")?,
            mv_qkv: gpu.function("mv_qkv")?,
            to_half: gpu.function("to_half")?,
            quantize_q8: gpu.function("quantize_q8")?,
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
        let shared = attention_shared_most(hd, cfg.context);
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
            xq: Buffer::zeroed(widest)?,
            xd: f32s(widest.div_ceil(32))?,
        };
        let mut model = Self {
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
        };
        model.keep_half_copies()?;
        Ok(model)
    }

    /// Dequantises every layer's matrices to f16 once, if they fit in half of the GPU memory
    /// still free (a 1.5B model's take 3 GB; an 8B model's 14 GB), for pre-fill through cuBLAS.
    pub(super) fn keep_half_copies(&mut self) -> Result<(), CudaLlmError> {
        if std::env::var("IRIS_CUDA_HALF_COPIES").is_ok_and(|v| v == "0") {
            return Ok(());
        }
        let bytes: usize =
            self.layers.iter().flat_map(|l| [&l.q, &l.k, &l.v, &l.wo, &l.gate, &l.up, &l.down]).map(|w| w.rows * w.cols * 2).sum();
        let (free, _) = self.gpu.memory()?;
        if bytes > free / 2 {
            return Ok(());
        }
        for l in 0..self.layers.len() {
            for m in 0..7 {
                let w = self.matrix(l, m);
                let half = Buffer::zeroed(w.rows * w.cols * 2)?;
                self.dequantize(w, half.ptr)?;
                self.matrix_mut(l, m).half = Some(half);
            }
        }
        self.gpu.sync()
    }

    pub(super) fn matrix(&self, l: usize, m: usize) -> &Weight {
        let layer = &self.layers[l];
        [&layer.q, &layer.k, &layer.v, &layer.wo, &layer.gate, &layer.up, &layer.down][m]
    }

    pub(super) fn matrix_mut(&mut self, l: usize, m: usize) -> &mut Weight {
        let layer = &mut self.layers[l];
        match m {
            0 => &mut layer.q,
            1 => &mut layer.k,
            2 => &mut layer.v,
            3 => &mut layer.wo,
            4 => &mut layer.gate,
            5 => &mut layer.up,
            _ => &mut layer.down,
        }
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
    Ok(Weight {
        buf: Buffer::from_bytes(&kind.pad(&data))?,
        half: None,
        type_id: kind.id,
        kinds,
        rows,
        cols,
        row_bytes: kind.row_bytes(cols),
    })
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
