//! The per-row operations of a layer besides the matrix products: RMSNorm, rotary positions,
//! the activations and attention over the f16 KV cache. Each rounds as ggml's CPU backend does
//! where that decides a near-tie (sums of squares in f64, GELU through f16, the query and the
//! attention weights meeting the cache in f16).

use std::sync::OnceLock;

use half::{f16, slice::HalfFloatSliceExt};

use crate::config::Config;
use crate::pool::{share, Pool, SyncPtr};

/// RMSNorm of each row of `x` (summing squares in f64, as ggml does).
pub fn rmsnorm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, out) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / dim as f64;
        let scale = 1.0 / (mean as f32 + eps).sqrt();
        for ((o, v), w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

/// RMSNorm in place, of each `weight.len()`-wide piece of `x` (Gemma 3's per-head q and k).
pub fn rmsnorm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(weight.len()) {
        let mean = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / row.len() as f64;
        let scale = 1.0 / (mean as f32 + eps).sqrt();
        row.iter_mut().zip(weight).for_each(|(v, w)| *v = *v * scale * w);
    }
}

/// The (sin, cos) of each pair's angle at each of `n` positions from `pos`, `freqs.len()` a
/// position: worked out once a batch rather than once for every head of every layer (Gemma 3's
/// 128 pairs a head made `sin_cos` a tenth of its pre-fill).
pub fn rope_angles(pos: usize, n: usize, freqs: &[f32]) -> Vec<(f32, f32)> {
    (pos..pos + n).flat_map(|p| freqs.iter().map(move |f| (p as f32 * f).sin_cos())).collect()
}

/// Rotates a head by one position's `angles` (from [`rope_angles`]).
pub fn rope(head: &mut [f32], angles: &[(f32, f32)], neox: bool) {
    let half = head.len() / 2;
    for (i, &(sin, cos)) in angles.iter().enumerate() {
        let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos - x1 * sin;
        head[b] = x0 * sin + x1 * cos;
    }
}

/// `x` rounded to f16.
pub fn to_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU (tanh approximation) as ggml computes it on the CPU: looked up in a table of f16 inputs
/// and outputs, and the identity or zero beyond ±10. The table is Iris's too (a `tanh` for each
/// of Gemma 3's 2,048 hidden values a token was a twentieth of its pre-fill).
pub fn gelu(x: f32) -> f32 {
    static TABLE: OnceLock<Box<[f32]>> = OnceLock::new();
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    let table = TABLE.get_or_init(|| (0..=u16::MAX).map(|bits| gelu_f16(f16::from_bits(bits).to_f32())).collect());
    table[usize::from(f16::from_f32(x).to_bits())]
}

/// GELU of an f16 input, rounded to f16.
fn gelu_f16(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    to_f16(0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x)).tanh()))
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
/// at a time, the pairs shared out over the pool; `window`: a sliding-window layer sees only
/// its last `window` positions. Pairs are ordered by KV head, so a thread widens a head's f16
/// keys and values to f32 once for all the pairs it takes of that head.
#[allow(clippy::too_many_arguments)]
pub fn attention(pool: &Pool, c: &Config, qkv: &[f32], k: &[f16], v: &[f16], pos: usize, n: usize, window: Option<usize>, out: &mut [f32]) {
    let (hd, heads, threads) = (c.head_dim, c.heads, pool.threads());
    let (q_dim, kv_dim, len) = (heads * hd, c.kv_heads * hd, pos + n);
    let (group, scale, ptr) = (heads / c.kv_heads, c.attn_scale, SyncPtr(out.as_mut_ptr()));
    // The first position any of the new tokens sees.
    let first = window.map_or(0, |w| (pos + 1).saturating_sub(w));
    pool.run(&|i| {
        let (mut scores, mut q) = (vec![0f32; len], vec![0f32; hd]);
        let (mut keys, mut values) = (vec![0f32; len * hd], vec![0f32; len * hd]);
        let mut widened = None;
        for pair in share(n * heads, i, threads, 1) {
            let (kvh, rest) = (pair / (n * group), pair % (n * group));
            let (t, h) = (rest / group, kvh * group + rest % group);
            if widened != Some(kvh) {
                for s in first..len {
                    k[s * kv_dim + kvh * hd..][..hd].convert_to_f32_slice(&mut keys[s * hd..(s + 1) * hd]);
                    v[s * kv_dim + kvh * hd..][..hd].convert_to_f32_slice(&mut values[s * hd..(s + 1) * hd]);
                }
                widened = Some(kvh);
            }
            // The query meets the f16 keys as f16 too (llama.cpp converts it for the product).
            q.iter_mut().zip(&qkv[t * (q_dim + 2 * kv_dim) + h * hd..][..hd]).for_each(|(q, x)| *q = to_f16(*x));
            let upto = pos + t + 1;
            // llama.cpp's standard sliding window: position p sees s when p - s < window.
            let from = window.map_or(0, |w| upto.saturating_sub(w));
            let mut max = f32::NEG_INFINITY;
            for (score, key) in scores[from..upto].iter_mut().zip(keys.chunks_exact(hd).skip(from)) {
                *score = dot(&q, key) * scale;
                max = max.max(*score);
            }
            let mut sum = 0f32;
            for score in &mut scores[from..upto] {
                *score = (*score - max).exp();
                sum += *score;
            }
            // SAFETY: the pair's slice of `out` is written by this thread only.
            let o = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(t * q_dim + h * hd), hd) };
            o.fill(0.0);
            for (score, value) in scores[from..upto].iter().zip(values.chunks_exact(hd).skip(from)) {
                // Weights meet the f16 values as f16, as in llama.cpp.
                let w = to_f16(score / sum);
                o.iter_mut().zip(value).for_each(|(o, v)| *o += w * v);
            }
        }
    });
}
