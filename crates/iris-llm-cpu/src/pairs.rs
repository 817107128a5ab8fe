#![allow(clippy::needless_range_loop)] // r indexes both tokens' accumulators
//! The AVX2 kernels for two tokens at a time (a prompt's pre-fill): each loads, unpacks and
//! scales a weight once for both tokens, then does each token's arithmetic exactly as the
//! single-token kernel in `kernels.rs` does, so a pre-fill gives the same bits either way.

use std::arch::x86_64::*;

use crate::kernels::x86::{sum8, PREFETCH};
use crate::kquant::{Q4KMatrix, Q6KMatrix};
use crate::q8::{Q8Matrix, QActs, GROUP};

/// `rows_avx2` for two tokens at once.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn rows_avx2_x2(w: &Q8Matrix, g: usize, a0: &QActs, a1: &QActs) -> [[f32; GROUP]; 2] {
    let n = w.chunks;
    let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
    let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(-128));
    let mut acc = [[_mm256_setzero_ps(); GROUP]; 2];
    for c in 0..n {
        for h in 0..2 {
            let x0 = _mm256_load_si256((a0.quants.as_ptr().add(c) as *const u8).add(32 * h) as *const __m256i);
            let x1 = _mm256_load_si256((a1.quants.as_ptr().add(c) as *const u8).add(32 * h) as *const __m256i);
            let dx0 = _mm256_load_ps((a0.scales.as_ptr().add(c) as *const f32).add(8 * h));
            let dx1 = _mm256_load_ps((a1.scales.as_ptr().add(c) as *const f32).add(8 * h));
            for r in 0..GROUP {
                let i = (g * n + c) * GROUP + r;
                if h == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(wq.add(i * 64 + PREFETCH) as *const i8);
                }
                let wv = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64 + 32 * h) as *const __m256i), flip);
                let abs = _mm256_sign_epi8(wv, wv);
                let dw = _mm256_cvtph_ps(_mm_set1_epi32(*ws.add(i) as i32));
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs, _mm256_sign_epi8(x0, wv)), ones);
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs, _mm256_sign_epi8(x1, wv)), ones);
                acc[0][r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p0), dx0), dw, acc[0][r]);
                acc[1][r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p1), dx1), dw, acc[1][r]);
            }
        }
    }
    acc.map(|t| t.map(|v| sum8(v)))
}

/// `rows_q4k_avx2` for two tokens at once.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn rows_q4k_avx2_x2(w: &Q4KMatrix, g: usize, a0: &QActs, a1: &QActs) -> [[f32; GROUP]; 2] {
    let n = w.chunks;
    let (wq, ws, wm) = (w.quants.as_ptr(), w.scales.as_ptr(), w.mins.as_ptr());
    let (nibble, ones) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi16(1));
    let mut acc = [[_mm256_setzero_ps(); GROUP]; 2];
    for c in 0..n {
        let load = |a: &QActs| {
            let xq = a.quants.as_ptr().add(c) as *const u8;
            let dx = a.scales.as_ptr().add(c) as *const f32;
            let sums = a.sums.as_ptr().add(c) as *const f32;
            (
                [_mm256_load_si256(xq as *const __m256i), _mm256_load_si256(xq.add(32) as *const __m256i)],
                [_mm256_load_ps(dx), _mm256_load_ps(dx.add(8))],
                _mm256_add_ps(_mm256_load_ps(sums), _mm256_load_ps(sums.add(8))),
            )
        };
        let tokens = [load(a0), load(a1)];
        for r in 0..GROUP {
            let i = (g * n + c) * GROUP + r;
            _mm_prefetch::<_MM_HINT_T0>((wq.add(i) as *const i8).add(PREFETCH / 2));
            let packed = _mm256_load_si256(wq.add(i) as *const __m256i);
            let lo = _mm256_and_si256(packed, nibble);
            let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
            let scale = _mm256_castpd_ps(_mm256_set1_pd(f64::from_bits((ws.add(i) as *const u64).read())));
            let min = _mm256_castpd_ps(_mm256_set1_pd(f64::from_bits((wm.add(i) as *const u64).read())));
            for (t, (x, dx, sums)) in tokens.iter().enumerate() {
                let p0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x[0]), ones));
                let p1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, x[1]), ones));
                let dot = _mm256_fmadd_ps(p1, dx[1], _mm256_mul_ps(p0, dx[0]));
                acc[t][r] = _mm256_fmadd_ps(dot, scale, acc[t][r]);
                acc[t][r] = _mm256_fnmadd_ps(min, *sums, acc[t][r]);
            }
        }
    }
    acc.map(|t| t.map(|v| sum8(v)))
}

/// `rows_q6k_avx2` for two tokens at once.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn rows_q6k_avx2_x2(w: &Q6KMatrix, g: usize, a0: &QActs, a1: &QActs) -> [[f32; GROUP]; 2] {
    let n = w.chunks;
    let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
    let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(-128));
    let mut acc = [[_mm256_setzero_ps(); GROUP]; 2];
    for c in 0..n {
        let load = |a: &QActs| {
            let xq = a.quants.as_ptr().add(c) as *const u8;
            let dx = a.scales.as_ptr().add(c) as *const f32;
            (
                [_mm256_load_si256(xq as *const __m256i), _mm256_load_si256(xq.add(32) as *const __m256i)],
                [_mm256_load_ps(dx), _mm256_load_ps(dx.add(8))],
            )
        };
        let tokens = [load(a0), load(a1)];
        for r in 0..GROUP {
            let i = (g * n + c) * GROUP + r;
            _mm_prefetch::<_MM_HINT_T0>(wq.add(i * 64 + PREFETCH) as *const i8);
            let s = _mm_loadu_ps(ws.add(i) as *const f32);
            let scales = [_mm_shuffle_ps::<0b10_00_10_00>(s, s), _mm_shuffle_ps::<0b11_01_11_01>(s, s)];
            for h in 0..2 {
                let wv = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64 + 32 * h) as *const __m256i), flip);
                let abs = _mm256_sign_epi8(wv, wv);
                let scale = _mm256_set_m128(scales[h], scales[h]);
                for (t, (x, dx)) in tokens.iter().enumerate() {
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(abs, _mm256_sign_epi8(x[h], wv)), ones);
                    acc[t][r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dx[h]), scale, acc[t][r]);
                }
            }
        }
    }
    acc.map(|t| t.map(|v| sum8(v)))
}
