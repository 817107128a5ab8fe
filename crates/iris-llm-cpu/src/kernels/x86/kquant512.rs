//! The K-quant kernels on AVX-512 (BW): the AVX2 kernels' arithmetic (`kquant`) on 64 values
//! at once. A Q4_K chunk's low and high nibbles go side by side in one register, against its 64
//! activation bytes as they lie; a Q6_K chunk's 64 bytes are one load. Every sum per row and
//! super-block is the same exact integer as the AVX2 kernel's, and everything after it the same
//! float arithmetic in the same order, so results are bit for bit the AVX2 kernels' (a prompt
//! pre-filled on either gives the same logits). Per 64 values and token: `vpmaddubsw`,
//! `vpmaddwd` and an add, against five 256-bit operations on AVX2.

use std::arch::x86_64::*;
use std::ops::Range;

use super::kquant::{q4k_super_block, q6k_super_block, tiles};
use super::PREFETCH;
use crate::kquant::{Q4KMatrix, Q6KMatrix};
use crate::q8::{QActs, GROUP};

driver!(matmul_q4k_512_each, Q4KMatrix, rows_q4k_512, "avx512f,avx512bw,avx2,fma,f16c");
driver!(matmul_q6k_512_each, Q6KMatrix, rows_q6k_512, "avx512f,avx512bw,avx2,fma,f16c");

/// Q4_K: a pre-fill's tokens four, then two at a time per group of rows, the rest one at a time
/// (tiles of eight measured no faster: `vpmaddubsw` and `vpmaddwd` share one port).
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
pub unsafe fn matmul_q4k_512(w: &Q4KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    let done = tiles::<4>(rows.clone(), acts, out, stride, |g, a| rows_q4k_512_tokens(w, g, a));
    let done = done + tiles::<2>(rows.clone(), &acts[done..], out.add(done * stride), stride, |g, a| rows_q4k_512_tokens(w, g, a));
    matmul_q4k_512_each(w, rows, &acts[done..], out.add(done * stride), stride);
}

/// Q6_K, tiled as Q4_K.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
pub unsafe fn matmul_q6k_512(w: &Q6KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    let done = tiles::<4>(rows.clone(), acts, out, stride, |g, a| rows_q6k_512_tokens(w, g, a));
    let done = done + tiles::<2>(rows.clone(), &acts[done..], out.add(done * stride), stride, |g, a| rows_q6k_512_tokens(w, g, a));
    matmul_q6k_512_each(w, rows, &acts[done..], out.add(done * stride), stride);
}

#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn rows_q4k_512(w: &Q4KMatrix, g: usize, a: &QActs) -> [f32; GROUP] {
    rows_q4k_512_tokens::<1>(w, g, [a])[0]
}

#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn rows_q6k_512(w: &Q6KMatrix, g: usize, a: &QActs) -> [f32; GROUP] {
    rows_q6k_512_tokens::<1>(w, g, [a])[0]
}

/// Sixteen i32 lanes to four, as the AVX2 kernels' eight are (exact integer adds).
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn quarters(v: __m512i) -> __m128i {
    let half = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
    _mm_add_epi32(_mm256_castsi256_si128(half), _mm256_extracti128_si256::<1>(half))
}

/// `rows_q4k_avx2_tokens` on 64 values at a time: the nibbles of a chunk as `[low | high]`
/// meet its activation bytes `[first 32 | last 32]`, the scale pattern repeated in both halves.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn rows_q4k_512_tokens<const T: usize>(w: &Q4KMatrix, g: usize, a: [&QActs; T]) -> [[f32; GROUP]; T] {
    let n = w.chunks;
    let supers = n / 4;
    let (wq, wi) = (w.quants.as_ptr(), w.int_scales.as_ptr());
    let nibble = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm_setzero_ps(); T];
    let mut acc_min = [_mm_setzero_ps(); T];
    for s in 0..supers {
        let k = (g * supers + s) * GROUP;
        let mut sums = [[_mm_setzero_si128(); GROUP]; T];
        let mut mins = [[_mm_setzero_si128(); GROUP]; T];
        for r in 0..GROUP {
            let row_mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(w.super_mins.as_ptr().add(k + r) as *const __m128i));
            let mut row = [_mm512_setzero_si512(); T];
            for j in 0..4 {
                let c = 4 * s + j;
                let i = (g * n + c) * GROUP + r;
                _mm_prefetch::<_MM_HINT_T0>((wq.add(i) as *const i8).add(PREFETCH / 2));
                let packed = _mm256_load_si256(wq.add(i) as *const __m256i);
                let lo = _mm256_and_si256(packed, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
                let q = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let scale = _mm512_cvtepu8_epi16(_mm256_set1_epi32(i32::from_le_bytes(*wi.add(i))));
                for t in 0..T {
                    let x = _mm512_load_si512(a[t].quants.as_ptr().add(c) as *const _);
                    row[t] = _mm512_add_epi32(row[t], _mm512_madd_epi16(_mm512_maddubs_epi16(q, x), scale));
                }
            }
            for t in 0..T {
                sums[t][r] = quarters(row[t]);
                let block_sums = _mm_loadu_si128(a[t].block_quant_sums.as_ptr().add(s) as *const __m128i);
                mins[t][r] = _mm_madd_epi16(row_mins, block_sums);
            }
        }
        q4k_super_block(w, k, s, &a, &sums, &mins, &mut acc, &mut acc_min);
    }
    std::array::from_fn(|t| {
        let mut out = [0f32; GROUP];
        _mm_storeu_ps(out.as_mut_ptr(), _mm_sub_ps(acc[t], acc_min[t]));
        out
    })
}

/// `rows_q6k_avx2_tokens` on 64 values at a time: a chunk's bytes in one load, the two halves'
/// scale patterns side by side.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn rows_q6k_512_tokens<const T: usize>(w: &Q6KMatrix, g: usize, a: [&QActs; T]) -> [[f32; GROUP]; T] {
    let n = w.chunks;
    let supers = n / 4;
    let wq = w.quants.as_ptr();
    let offset = _mm512_set1_epi8(96);
    // Per chunk of a super-block: the first half's two scales as bytes `sa, sa, sb, sb` four
    // times, then the second half's.
    let pattern = |j: i8| {
        let (a0, b0, a1, b1) = (4 * j, 4 * j + 2, 4 * j + 1, 4 * j + 3);
        _mm256_setr_epi8(
            a0, a0, b0, b0, a0, a0, b0, b0, a0, a0, b0, b0, a0, a0, b0, b0, a1, a1, b1, b1, a1, a1, b1, b1, a1, a1, b1, b1, a1, a1, b1, b1,
        )
    };
    let patterns = [0, 1, 2, 3].map(pattern);
    let mut acc = [_mm_setzero_ps(); T];
    for s in 0..supers {
        let k = (g * supers + s) * GROUP;
        let mut sums = [[_mm_setzero_si128(); GROUP]; T];
        for r in 0..GROUP {
            let sc = _mm_loadu_si128(w.super_scales.as_ptr().add(k + r) as *const __m128i);
            let sc16 = _mm256_cvtepi8_epi16(sc);
            // The AVX2 kernel's start, in the low eight lanes.
            let mut row: [__m512i; T] = std::array::from_fn(|t| {
                let sixteens = _mm256_loadu_si256(a[t].sixteen_sums.as_ptr().add(s) as *const __m256i);
                let start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, sixteens)));
                _mm512_castsi256_si512(start)
            });
            row.iter_mut().for_each(|v| *v = _mm512_inserti64x4::<1>(*v, _mm256_setzero_si256()));
            let sc2 = _mm256_broadcastsi128_si256(sc);
            for (j, pattern) in patterns.iter().enumerate() {
                let c = 4 * s + j;
                let i = (g * n + c) * GROUP + r;
                let wv = wq.add(i) as *const __m512i;
                _mm_prefetch::<_MM_HINT_T0>((wv as *const i8).add(PREFETCH));
                let q = _mm512_sub_epi8(_mm512_load_si512(wv as *const _), offset);
                let scale = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(sc2, *pattern));
                for t in 0..T {
                    let x = _mm512_load_si512(a[t].quants.as_ptr().add(c) as *const _);
                    row[t] = _mm512_add_epi32(row[t], _mm512_madd_epi16(_mm512_maddubs_epi16(q, x), scale));
                }
            }
            for t in 0..T {
                sums[t][r] = quarters(row[t]);
            }
        }
        q6k_super_block(w, k, s, &a, &sums, &mut acc);
    }
    std::array::from_fn(|t| {
        let mut out = [0f32; GROUP];
        _mm_storeu_ps(out.as_mut_ptr(), acc[t]);
        out
    })
}
