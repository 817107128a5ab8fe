//! F16 matrices (unquantised GGUF files): rows of f16 times the activation rounded to f16, summed
//! in f32, as llama.cpp's `ggml_vec_dot_f16` does (its F16 weights meet F16 activations).

use half::f16;

use crate::q8::QActs;

pub struct F16Matrix {
    pub rows: usize,
    pub cols: usize,
    pub(crate) values: Vec<f16>,
}

impl F16Matrix {
    pub fn from_f16(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if raw.len() != rows * cols * 2 || cols % 32 != 0 {
            return None;
        }
        Some(Self { rows, cols, values: raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect() })
    }

    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        out.iter_mut().zip(&self.values[r * self.cols..(r + 1) * self.cols]).for_each(|(o, v)| *o = v.to_f32());
    }

    /// The plain-Rust product of row `r` and the activation's f16 values.
    pub fn dot_scalar(&self, r: usize, a: &QActs) -> f32 {
        let row = &self.values[r * self.cols..(r + 1) * self.cols];
        let mut acc = [0f32; 8];
        for (w, x) in row.chunks_exact(8).zip(a.halves.chunks_exact(8)) {
            for i in 0..8 {
                acc[i] += w[i].to_f32() * x[i].to_f32();
            }
        }
        acc.iter().sum()
    }
}

/// AVX2 with F16C: eight values at a time, four accumulators (32 values per step); tokens two
/// at a time (a prompt's pre-fill) share each weight's conversion, and each token's sums are
/// made in the same order either way.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `out` as in [`crate::Matrix::matmul`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul_avx2(w: &F16Matrix, rows: std::ops::Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    use std::arch::x86_64::*;
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn sum(acc: [__m256; 4]) -> f32 {
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let half = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(half, _mm_shuffle_ps(half, half, 1)))
    }
    let cols = w.cols;
    for r in rows {
        let row = w.values.as_ptr().add(r * cols) as *const __m128i;
        for (t, pair) in acts.chunks(2).enumerate() {
            let x0 = pair[0].halves.as_ptr() as *const __m128i;
            let x1 = pair.get(1).map_or(x0, |a| a.halves.as_ptr() as *const __m128i);
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
            for step in 0..cols / 32 {
                for k in 0..4 {
                    let i = step * 4 + k;
                    let wv = _mm256_cvtph_ps(_mm_loadu_si128(row.add(i)));
                    acc0[k] = _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128(x0.add(i))), acc0[k]);
                    acc1[k] = _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128(x1.add(i))), acc1[k]);
                }
            }
            *out.add(2 * t * stride + r) = sum(acc0);
            if pair.len() == 2 {
                *out.add((2 * t + 1) * stride + r) = sum(acc1);
            }
        }
    }
}
