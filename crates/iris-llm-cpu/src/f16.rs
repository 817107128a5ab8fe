//! F16 matrices (unquantised GGUF files): rows of f16 times the activation rounded to f16, summed
//! in f32, as llama.cpp does (its F16 weights meet F16 activations, in tinyBLAS on AVX2).

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
                acc[i] += w[i].to_f32() * x[i];
            }
        }
        acc.iter().sum()
    }
}

/// AVX2 with F16C. A prompt's tokens go in tiles of four rows by two tokens (llama.cpp's
/// tinyBLAS for F16 on AVX2): each step of eight values converts four weight vectors and loads
/// two activation vectors for eight multiply-adds, one accumulator per row and token, summed
/// across lanes at the end as tinyBLAS does (four rows by three spilled registers and ran
/// slower). One token (decode) streams each row alone with four accumulators, as llama.cpp's
/// `ggml_vec_dot_f16` does: four rows side by side read memory less well there (measured 15 %
/// slower).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `out` as in [`crate::Matrix::matmul`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul_avx2(w: &F16Matrix, rows: std::ops::Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    const RM: usize = 4;
    const RN: usize = 2;
    if let [one] = acts {
        return matvec_avx2(w, rows, one, out);
    }
    let mut r = rows.start;
    while r < rows.end {
        let rm = (rows.end - r).min(RM);
        let mut t = 0;
        while t < acts.len() {
            let rn = (acts.len() - t).min(RN);
            let a = &acts[t..t + rn];
            match (rm, rn) {
                (4, 2) => tile::<4, 2>(w, r, a, out.add(t * stride), stride),
                (4, 1) => tile::<4, 1>(w, r, a, out.add(t * stride), stride),
                (3, 2) => tile::<3, 2>(w, r, a, out.add(t * stride), stride),
                (3, 1) => tile::<3, 1>(w, r, a, out.add(t * stride), stride),
                (2, 2) => tile::<2, 2>(w, r, a, out.add(t * stride), stride),
                (2, 1) => tile::<2, 1>(w, r, a, out.add(t * stride), stride),
                (1, 2) => tile::<1, 2>(w, r, a, out.add(t * stride), stride),
                _ => tile::<1, 1>(w, r, a, out.add(t * stride), stride),
            }
            t += rn;
        }
        r += rm;
    }
}

/// Rows `r0..r0 + M` times the `N` tokens of `acts`, written to `out[t * stride + row]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const M: usize, const N: usize>(w: &F16Matrix, r0: usize, acts: &[QActs], out: *mut f32, stride: usize) {
    use std::arch::x86_64::*;
    let cols = w.cols;
    let rows: [*const __m128i; M] = std::array::from_fn(|i| w.values.as_ptr().add((r0 + i) * cols) as *const __m128i);
    let xs: [*const f32; N] = std::array::from_fn(|j| acts[j].halves.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); N]; M];
    for k in 0..cols / 8 {
        let x: [__m256; N] = std::array::from_fn(|j| _mm256_loadu_ps(xs[j].add(8 * k)));
        for i in 0..M {
            let wv = _mm256_cvtph_ps(_mm_loadu_si128(rows[i].add(k)));
            for j in 0..N {
                acc[i][j] = _mm256_fmadd_ps(wv, x[j], acc[i][j]);
            }
        }
    }
    for i in 0..M {
        for j in 0..N {
            // tinyBLAS's `hsum`: the two halves, then pairs, then the last two.
            let v = acc[i][j];
            let h = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_add_ss(h, _mm_movehdup_ps(h));
            *out.add(j * stride + r0 + i) = _mm_cvtss_f32(h);
        }
    }
}

/// One token: each row streamed alone, four accumulators of eight lanes over 32 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matvec_avx2(w: &F16Matrix, rows: std::ops::Range<usize>, a: &QActs, out: *mut f32) {
    use std::arch::x86_64::*;
    let cols = w.cols;
    let x = a.halves.as_ptr();
    for r in rows {
        let row = w.values.as_ptr().add(r * cols) as *const __m128i;
        let mut acc = [_mm256_setzero_ps(); 4];
        for step in 0..cols / 32 {
            for (k, acc) in acc.iter_mut().enumerate() {
                let i = step * 4 + k;
                *acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(row.add(i))), _mm256_loadu_ps(x.add(8 * i)), *acc);
            }
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        *out.add(r) = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
    }
}
