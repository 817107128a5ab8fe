//! `iris bench synth`: a GGUF of a real model's shape (llama, qwen2 or gemma3, 135M to 8B) with random
//! weights, for speed measurements where the real file is too large to move (the GPU machine
//! takes 64 MiB per call). Decode and prefill speed depend on the shapes and the block formats,
//! not on the values; the values are random but finite, so the model runs like any other. The
//! vocabulary is a SentencePiece one of byte pieces and filler words, which llama.cpp and Iris
//! both load. The mix of block formats follows llama.cpp's Q4_K_M (Q6_K for the output and for
//! attn_v and ffn_down in the layers llama.cpp gives more bits) or is one format throughout
//! (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0: the catalog's small models hold these).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

/// The block formats written (GGUF type ids, bytes per block, values per block).
#[derive(Clone, Copy, PartialEq, Eq)]
enum GgmlDType {
    F32,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl GgmlDType {
    fn block_size(self) -> usize {
        match self {
            Self::F32 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q6K => 256,
        }
    }
    fn type_size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q6K => 210,
        }
    }
}

#[derive(Args)]
pub struct SynthArgs {
    /// Where to write the GGUF file.
    out: PathBuf,
    /// The shape: qwen2-1.5b (Qwen2.5 1.5B), llama-3b (Llama 3.2 3B), llama-8b (Llama 3.1 8B),
    /// smollm2-135m (SmolLM2 135M) or gemma3-270m (Gemma 3 270M; its sliding window shrunk to
    /// 128 positions, so a benchmark's prompt crosses it).
    #[arg(long, default_value = "qwen2-1.5b")]
    shape: String,
    /// q4_k_m, q8_0, q5_1, q5_0, q4_1 or q4_0 (q4_k_m needs rows a multiple of 256 wide).
    #[arg(long, default_value = "q4_k_m")]
    quant: String,
}

struct Shape {
    arch: &'static str,
    dim: usize,
    /// Gemma 3's heads are wider than dim / heads.
    head_dim: Option<usize>,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    ffn: usize,
    vocab: usize,
    tied: bool,
    rope_base: f32,
}

fn shape(name: &str) -> Option<Shape> {
    let s = |arch, dim, layers, heads, kv_heads, ffn, vocab, tied, rope_base| Shape {
        arch,
        dim,
        head_dim: None,
        layers,
        heads,
        kv_heads,
        ffn,
        vocab,
        tied,
        rope_base,
    };
    Some(match name {
        "qwen2-1.5b" => s("qwen2", 1536, 28, 12, 2, 8960, 151_936, true, 1_000_000.0),
        "llama-3b" => s("llama", 3072, 28, 24, 8, 8192, 128_256, true, 500_000.0),
        "llama-8b" => s("llama", 4096, 32, 32, 8, 14336, 128_256, false, 500_000.0),
        "smollm2-135m" => s("llama", 576, 30, 9, 3, 1536, 49_152, true, 100_000.0),
        "gemma3-270m" => Shape { head_dim: Some(256), ..s("gemma3", 640, 18, 4, 1, 2048, 262_144, true, 1_000_000.0) },
        _ => return None,
    })
}

enum Value {
    U32(u32),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
}

/// A small deterministic generator (xorshift), eight bytes at a time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub fn run(args: SynthArgs) -> Result<ExitCode> {
    let Some(sh) = shape(&args.shape) else {
        bail!("--shape {}: use qwen2-1.5b, llama-3b, llama-8b, smollm2-135m or gemma3-270m", args.shape)
    };
    let one = match args.quant.as_str() {
        "q4_k_m" => None,
        "q8_0" => Some(GgmlDType::Q8_0),
        "q5_1" => Some(GgmlDType::Q5_1),
        "q5_0" => Some(GgmlDType::Q5_0),
        "q4_1" => Some(GgmlDType::Q4_1),
        "q4_0" => Some(GgmlDType::Q4_0),
        other => bail!("--quant {other}: use q4_k_m, q8_0, q5_1, q5_0, q4_1 or q4_0"),
    };
    let head_dim = sh.head_dim.unwrap_or(sh.dim / sh.heads);
    let (q_dim, kv_dim) = (sh.heads * head_dim, sh.kv_heads * head_dim);
    if one.is_none() && (sh.dim % 256 != 0 || sh.ffn % 256 != 0 || q_dim % 256 != 0) {
        bail!("--shape {} has rows that are not a multiple of 256 wide: use a 32-value format such as q8_0", args.shape);
    }
    let gemma = sh.arch == "gemma3";
    // llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between.
    let more_bits = |l: usize| l < sh.layers / 8 || l >= 7 * sh.layers / 8 || (l - sh.layers / 8) % 3 == 2;
    let (base, wide) = one.map_or((GgmlDType::Q4K, GgmlDType::Q6K), |t| (t, t));
    let mut tensors: Vec<(String, GgmlDType, Vec<usize>)> = vec![("token_embd.weight".into(), base, vec![sh.vocab, sh.dim])];
    if !sh.tied {
        tensors.push(("output.weight".into(), wide, vec![sh.vocab, sh.dim]));
    }
    tensors.push(("output_norm.weight".into(), GgmlDType::F32, vec![sh.dim]));
    for l in 0..sh.layers {
        let p = |s: &str| format!("blk.{l}.{s}");
        let v_type = if more_bits(l) { wide } else { base };
        tensors.push((p("attn_norm.weight"), GgmlDType::F32, vec![sh.dim]));
        tensors.push((p("attn_q.weight"), base, vec![q_dim, sh.dim]));
        tensors.push((p("attn_k.weight"), base, vec![kv_dim, sh.dim]));
        tensors.push((p("attn_v.weight"), v_type, vec![kv_dim, sh.dim]));
        if sh.arch == "qwen2" {
            tensors.push((p("attn_q.bias"), GgmlDType::F32, vec![q_dim]));
            tensors.push((p("attn_k.bias"), GgmlDType::F32, vec![kv_dim]));
            tensors.push((p("attn_v.bias"), GgmlDType::F32, vec![kv_dim]));
        }
        tensors.push((p("attn_output.weight"), base, vec![sh.dim, q_dim]));
        if gemma {
            tensors.push((p("attn_q_norm.weight"), GgmlDType::F32, vec![head_dim]));
            tensors.push((p("attn_k_norm.weight"), GgmlDType::F32, vec![head_dim]));
            tensors.push((p("post_attention_norm.weight"), GgmlDType::F32, vec![sh.dim]));
            tensors.push((p("post_ffw_norm.weight"), GgmlDType::F32, vec![sh.dim]));
        }
        tensors.push((p("ffn_norm.weight"), GgmlDType::F32, vec![sh.dim]));
        tensors.push((p("ffn_gate.weight"), base, vec![sh.ffn, sh.dim]));
        tensors.push((p("ffn_up.weight"), base, vec![sh.ffn, sh.dim]));
        tensors.push((p("ffn_down.weight"), v_type, vec![sh.dim, sh.ffn]));
    }

    // A SentencePiece vocabulary: unknown, BOS, EOS, the 256 byte pieces, then filler words.
    let mut tokens = vec!["<unk>".to_owned(), "<s>".into(), "</s>".into()];
    tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    let fillers = sh.vocab - tokens.len();
    tokens.extend((0..fillers).map(|i| format!("\u{2581}{}", word(i))));
    let types: Vec<i32> = (0..sh.vocab)
        .map(|i| match i {
            0 => 2,
            1 | 2 => 3,
            3..=258 => 6,
            _ => 1,
        })
        .collect();
    let scores: Vec<f32> = (0..sh.vocab).map(|i| if i < 259 { 0.0 } else { -(i as f32) }).collect();
    let a = sh.arch;
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::Str(a.into())),
        ("general.name".into(), Value::Str(format!("synthetic {} {}", args.shape, args.quant))),
        (format!("{a}.context_length"), Value::U32(32768)),
        (format!("{a}.embedding_length"), Value::U32(sh.dim as u32)),
        (format!("{a}.block_count"), Value::U32(sh.layers as u32)),
        (format!("{a}.feed_forward_length"), Value::U32(sh.ffn as u32)),
        (format!("{a}.attention.head_count"), Value::U32(sh.heads as u32)),
        (format!("{a}.attention.head_count_kv"), Value::U32(sh.kv_heads as u32)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (format!("{a}.rope.freq_base"), Value::F32(sh.rope_base)),
        (format!("{a}.rope.dimension_count"), Value::U32(head_dim as u32)),
        ("tokenizer.ggml.model".into(), Value::Str("llama".into())),
        ("tokenizer.ggml.tokens".into(), Value::Strs(tokens)),
        ("tokenizer.ggml.scores".into(), Value::F32s(scores)),
        ("tokenizer.ggml.token_type".into(), Value::I32s(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
    ];
    if gemma {
        metadata.extend([
            (format!("{a}.attention.key_length"), Value::U32(head_dim as u32)),
            (format!("{a}.attention.value_length"), Value::U32(head_dim as u32)),
            (format!("{a}.attention.sliding_window"), Value::U32(128)),
            (format!("{a}.rope.local_freq_base"), Value::F32(10_000.0)),
        ]);
    }
    write(&args.out, &metadata, &tensors).with_context(|| format!("writing {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out)?.len();
    println!("{}: {} {} ({:.2} GB, {} tensors)", args.out.display(), args.shape, args.quant, bytes as f64 / 1e9, tensors.len());
    Ok(ExitCode::SUCCESS)
}

/// A pronounceable filler word for vocabulary entry `i` (distinct for every i).
fn word(mut i: usize) -> String {
    const SYL: [&str; 16] = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "va", "ze", "bo", "di", "fu", "ga", "he", "jo"];
    let mut w = String::new();
    loop {
        w.push_str(SYL[i % 16]);
        i /= 16;
        if i == 0 {
            return w;
        }
    }
}

const ALIGN: u64 = 32;

/// GGUF v3, written here because candle's writer takes tensors held in memory (8.5 GB for
/// Llama 8B Q8_0); these are streamed from the generator.
fn write(path: &std::path::Path, metadata: &[(String, Value)], tensors: &[(String, GgmlDType, Vec<usize>)]) -> Result<()> {
    let mut f = BufWriter::with_capacity(1 << 22, File::create(path)?);
    let s = |f: &mut BufWriter<File>, v: &str| -> std::io::Result<()> {
        f.write_all(&(v.len() as u64).to_le_bytes())?;
        f.write_all(v.as_bytes())
    };
    f.write_all(b"GGUF")?;
    f.write_all(&3u32.to_le_bytes())?;
    f.write_all(&(tensors.len() as u64).to_le_bytes())?;
    f.write_all(&(metadata.len() as u64).to_le_bytes())?;
    for (key, value) in metadata {
        s(&mut f, key)?;
        match value {
            Value::U32(v) => {
                f.write_all(&4u32.to_le_bytes())?;
                f.write_all(&v.to_le_bytes())?;
            }
            Value::F32(v) => {
                f.write_all(&6u32.to_le_bytes())?;
                f.write_all(&v.to_le_bytes())?;
            }
            Value::Str(v) => {
                f.write_all(&8u32.to_le_bytes())?;
                s(&mut f, v)?;
            }
            Value::Strs(list) => {
                f.write_all(&9u32.to_le_bytes())?;
                f.write_all(&8u32.to_le_bytes())?;
                f.write_all(&(list.len() as u64).to_le_bytes())?;
                for v in list {
                    s(&mut f, v)?;
                }
            }
            Value::F32s(list) => {
                f.write_all(&9u32.to_le_bytes())?;
                f.write_all(&6u32.to_le_bytes())?;
                f.write_all(&(list.len() as u64).to_le_bytes())?;
                list.iter().try_for_each(|v| f.write_all(&v.to_le_bytes()))?;
            }
            Value::I32s(list) => {
                f.write_all(&9u32.to_le_bytes())?;
                f.write_all(&5u32.to_le_bytes())?;
                f.write_all(&(list.len() as u64).to_le_bytes())?;
                list.iter().try_for_each(|v| f.write_all(&v.to_le_bytes()))?;
            }
        }
    }
    let size = |dtype: GgmlDType, dims: &[usize]| (dims.iter().product::<usize>() / dtype.block_size() * dtype.type_size()) as u64;
    let mut offset = 0u64;
    for (name, dtype, dims) in tensors {
        s(&mut f, name)?;
        f.write_all(&(dims.len() as u32).to_le_bytes())?;
        // GGUF lists dimensions innermost first.
        for d in dims.iter().rev() {
            f.write_all(&(*d as u64).to_le_bytes())?;
        }
        f.write_all(&ggml_type(*dtype).to_le_bytes())?;
        f.write_all(&offset.to_le_bytes())?;
        offset = (offset + size(*dtype, dims)).div_ceil(ALIGN) * ALIGN;
    }
    let pad = |f: &mut BufWriter<File>| -> std::io::Result<()> {
        let at = f.stream_position()?;
        f.write_all(&vec![0u8; (at.div_ceil(ALIGN) * ALIGN - at) as usize])
    };
    pad(&mut f)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (_, dtype, dims) in tensors {
        write_values(&mut f, &mut rng, *dtype, size(*dtype, dims) as usize)?;
        pad(&mut f)?;
    }
    f.flush()?;
    Ok(())
}

fn ggml_type(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q4K => 12,
        GgmlDType::Q6K => 14,
    }
}

/// An f16 (as its two bytes) of a value in f16's normal range, rounded toward zero.
fn f16_bytes(v: f32) -> [u8; 2] {
    let bits = v.to_bits();
    let sign = (bits >> 16) & 0x8000;
    let exp = ((bits >> 23) & 0xFF) as i32 - 127 + 15;
    let mant = (bits >> 13) & 0x3FF;
    ((sign | ((exp.clamp(1, 30) as u32) << 10) | mant) as u16).to_le_bytes()
}

/// The value of an f16 in the normal range (what `f16_bytes` writes).
fn f16_value(b: [u8; 2]) -> f32 {
    let h = u16::from_le_bytes(b) as u32;
    let (sign, exp, mant) = ((h >> 15) & 1, (h >> 10) & 0x1F, h & 0x3FF);
    f32::from_bits((sign << 31) | ((exp + 127 - 15) << 23) | (mant << 13))
}

/// Random blocks whose scales are small finite f16s, of the size trained models' are (at four
/// times that, llama.cpp's CUDA build overflowed to NaN on the llama shapes); vectors, the norm
/// weights and biases, are 1.
fn write_values(f: &mut impl Write, rng: &mut Rng, dtype: GgmlDType, bytes: usize) -> std::io::Result<()> {
    let scale = |rng: &mut Rng, s: f32| f16_bytes(s * (0.5 + (rng.next() % 1000) as f32 / 1000.0));
    let (block, scales_at): (usize, &[usize]) = match dtype {
        GgmlDType::F32 => return (0..bytes / 4).try_for_each(|_| f.write_all(&1f32.to_le_bytes())),
        GgmlDType::Q8_0 => (34, &[0]),
        GgmlDType::Q4_0 => (18, &[0]),
        GgmlDType::Q5_0 => (22, &[0]),
        // d and the minimum (m: at minus eight steps the values centre on 0, as a trained
        // model's do).
        GgmlDType::Q4_1 => (20, &[0]),
        GgmlDType::Q5_1 => (24, &[0]),
        GgmlDType::Q4K => (144, &[0, 2]),
        GgmlDType::Q6K => (210, &[208]),
    };
    let mut buf = vec![0u8; block * 4096];
    let mut left = bytes / block;
    while left > 0 {
        let n = left.min(4096);
        for chunk in buf[..n * block].chunks_exact_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes());
        }
        for b in buf[..n * block].chunks_exact_mut(block) {
            for at in scales_at {
                b[*at..*at + 2].copy_from_slice(&scale(rng, 0.001));
            }
            if matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1) {
                let d = f16_value([b[0], b[1]]);
                let steps = if dtype == GgmlDType::Q4_1 { 8.0 } else { 16.0 };
                b[2..4].copy_from_slice(&f16_bytes(-steps * d));
            }
            if block == 210 {
                // Q6_K's sixteen int8 sub-block scales: small.
                b[192..208].iter_mut().for_each(|v| *v = (*v % 32) as u8);
            }
        }
        f.write_all(&buf[..n * block])?;
        left -= n;
    }
    Ok(())
}
