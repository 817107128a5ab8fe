//! The K-quant kernels for x86: Q4_K and Q6_K on AVX2 (llama.cpp's integer arithmetic, a
//! pre-fill's tokens in tiles); `kquant512` runs the same arithmetic on AVX-512.

use std::arch::x86_64::*;
use std::ops::Range;

use super::PREFETCH;
use crate::kquant::{Q4KMatrix, Q6KMatrix};
use crate::q8::{QActs, GROUP};

driver!(matmul_q4k_avx2_each, Q4KMatrix, rows_q4k_avx2, "avx2,fma,f16c");

/// Q4_K on AVX2: a pre-fill's tokens four at a time per group of rows (each chunk unpacked
/// once for all four: 6¼ operations per 64 values and token, against 7½ two at a time),
/// the rest two and then one at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul_q4k_avx2(w: &Q4KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    let done = tiles::<4>(rows.clone(), acts, out, stride, |g, a| rows_q4k_avx2_tokens(w, g, a));
    let done = done + tiles::<2>(rows.clone(), &acts[done..], out.add(done * stride), stride, |g, a| rows_q4k_avx2_tokens(w, g, a));
    matmul_q4k_avx2_each(w, rows, &acts[done..], out.add(done * stride), stride);
}

/// Q6_K on AVX2, tiled as Q4_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul_q6k_avx2(w: &Q6KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    let done = tiles::<4>(rows.clone(), acts, out, stride, |g, a| rows_q6k_avx2_tokens(w, g, a));
    let done = done + tiles::<2>(rows.clone(), &acts[done..], out.add(done * stride), stride, |g, a| rows_q6k_avx2_tokens(w, g, a));
    matmul_q6k_avx2_each(w, rows, &acts[done..], out.add(done * stride), stride);
}

/// As many whole tiles of `T` tokens as `acts` holds, each group of rows by `group`;
/// returns the tokens done.
#[inline(always)]
pub(super) unsafe fn tiles<const T: usize>(
    rows: Range<usize>,
    acts: &[QActs],
    out: *mut f32,
    stride: usize,
    group: impl Fn(usize, [&QActs; T]) -> [[f32; GROUP]; T],
) -> usize {
    let tiles = acts.len() / T;
    let mut r = rows.start - rows.start % GROUP;
    while tiles > 0 && r < rows.end {
        for k in 0..tiles {
            let v = group(r / GROUP, std::array::from_fn(|j| &acts[k * T + j]));
            for (j, v) in v.iter().enumerate() {
                for (i, v) in v.iter().enumerate() {
                    if (rows.start..rows.end).contains(&(r + i)) {
                        *out.add((k * T + j) * stride + r + i) = *v;
                    }
                }
            }
        }
        r += GROUP;
    }
    tiles * T
}

driver!(matmul_q6k_avx2_each, Q6KMatrix, rows_q6k_avx2, "avx2,fma,f16c");

/// Q4_K on AVX2: the low nibbles (slots 0–31) against the first 32 activations, the high
/// ones against the rest. The quants are unsigned and at most 15, so `vpmaddubsw` cannot
/// saturate (2·15·127 < 2^15). Lanes alternate between the chunk's two blocks in both
/// halves, so one scale vector serves both.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4k_avx2(w: &Q4KMatrix, g: usize, a: &QActs) -> [f32; GROUP] {
    rows_q4k_avx2_tokens::<1>(w, g, [a])[0]
}

/// A group of rows times `T` tokens: each chunk's nibbles unpacked once for all of them
/// (a prompt's pre-fill), each token's sums made as for one token alone. The arithmetic is
/// that of llama.cpp's AVX2 kernel for Q4_K (its rows repacked eight at a time): per
/// super-block of 256 values and per row, the products weighted by the 6-bit scales and
/// the minimums times the activation's block sums are exact integers; each is converted
/// once and added in with d (or dmin) times the activation's scale, and the minimums' total
/// is taken off at the end, in llama.cpp's order.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4k_avx2_tokens<const T: usize>(w: &Q4KMatrix, g: usize, a: [&QActs; T]) -> [[f32; GROUP]; T] {
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
            let mut row = [_mm256_setzero_si256(); T];
            for j in 0..4 {
                let c = 4 * s + j;
                let i = (g * n + c) * GROUP + r;
                _mm_prefetch::<_MM_HINT_T0>((wq.add(i) as *const i8).add(PREFETCH / 2));
                let packed = _mm256_load_si256(wq.add(i) as *const __m256i);
                let lo = _mm256_and_si256(packed, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
                // Widened to 16-bit lanes `sa, sa, sb, sb`, four times.
                let scale = _mm256_cvtepu8_epi16(_mm_set1_epi32(i32::from_le_bytes(*wi.add(i))));
                for t in 0..T {
                    let xq = a[t].quants.as_ptr().add(c) as *const __m256i;
                    // Both halves' lanes share a block, so their pair sums add as 16-bit
                    // integers (at most 2·2·15·127 < 2^15); times a scale of at most 63,
                    // four chunks stay far inside 32 bits.
                    let pairs = _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo, _mm256_load_si256(xq)),
                        _mm256_maddubs_epi16(hi, _mm256_load_si256(xq.add(1))),
                    );
                    row[t] = _mm256_add_epi32(row[t], _mm256_madd_epi16(pairs, scale));
                }
            }
            for t in 0..T {
                sums[t][r] = _mm_add_epi32(_mm256_castsi256_si128(row[t]), _mm256_extracti128_si256::<1>(row[t]));
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

/// A Q4_K super-block's end for four rows and `T` tokens: the rows' exact integer sums (and
/// their minimums' sums) converted once each and added in with d (dmin) times the activation's
/// scale, in llama.cpp's order.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn q4k_super_block<const T: usize>(
    w: &Q4KMatrix,
    k: usize,
    s: usize,
    a: &[&QActs; T],
    sums: &[[__m128i; GROUP]; T],
    mins: &[[__m128i; GROUP]; T],
    acc: &mut [__m128; T],
    acc_min: &mut [__m128; T],
) {
    // The four rows' d and dmin, as lanes.
    let dd = w.super_d.as_ptr().add(k) as *const f32;
    let (v0, v1) = (_mm_loadu_ps(dd), _mm_loadu_ps(dd.add(4)));
    let (d, dmin) = (_mm_shuffle_ps::<0b10_00_10_00>(v0, v1), _mm_shuffle_ps::<0b11_01_11_01>(v0, v1));
    for t in 0..T {
        // Q8_K: one scale for the whole super-block.
        let dx = _mm_set1_ps(a[t].scales.get_unchecked(4 * s).0[0]);
        acc[t] = _mm_fmadd_ps(row_totals(sums[t]), _mm_mul_ps(d, dx), acc[t]);
        acc_min[t] = _mm_fmadd_ps(row_totals(mins[t]), _mm_mul_ps(dmin, dx), acc_min[t]);
    }
}

/// Four rows' integer lanes to their four totals (exact), as floats.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn row_totals(v: [__m128i; GROUP]) -> __m128 {
    _mm_cvtepi32_ps(_mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3])))
}

/// Q6_K on AVX2, in llama.cpp's arithmetic: the stored bytes (q + 96) back to the unsigned
/// 6-bit q, which `vpmaddubsw` takes as they are (2·63·127 < 2^15); the pair sums times the
/// 8-bit scales (`vpmaddwd`) summed as integers over the 256 values of a super-block, and
/// 32 times the scales times the activation's sums of 16 taken off there, once (the −32 of
/// every q); one conversion and scaling per super-block and row. Lanes alternate between
/// the chunk's two blocks; the first half holds values 0–15 of each (scales 0 and 2), the
/// second 16–31 (scales 1 and 3).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q6k_avx2(w: &Q6KMatrix, g: usize, a: &QActs) -> [f32; GROUP] {
    rows_q6k_avx2_tokens::<1>(w, g, [a])[0]
}

/// A group of rows times `T` tokens, each chunk's bytes loaded and made unsigned once for
/// all of them, each token's sums made as for one token alone.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q6k_avx2_tokens<const T: usize>(w: &Q6KMatrix, g: usize, a: [&QActs; T]) -> [[f32; GROUP]; T] {
    let n = w.chunks;
    let supers = n / 4;
    let wq = w.quants.as_ptr();
    let offset = _mm256_set1_epi8(96);
    // Per chunk of a super-block and half: its two scales as bytes `sa, sa, sb, sb`, four times.
    let pattern = |j: i8, h: i8| {
        let (a, b) = (4 * j + h, 4 * j + h + 2);
        _mm_setr_epi8(a, a, b, b, a, a, b, b, a, a, b, b, a, a, b, b)
    };
    let patterns = [0, 1, 2, 3].map(|j| [pattern(j, 0), pattern(j, 1)]);
    let mut acc = [_mm_setzero_ps(); T];
    for s in 0..supers {
        let k = (g * supers + s) * GROUP;
        let mut sums = [[_mm_setzero_si128(); GROUP]; T];
        for r in 0..GROUP {
            let sc = _mm_loadu_si128(w.super_scales.as_ptr().add(k + r) as *const __m128i);
            let sc16 = _mm256_cvtepi8_epi16(sc);
            let mut row: [__m256i; T] = std::array::from_fn(|t| {
                let sixteens = _mm256_loadu_si256(a[t].sixteen_sums.as_ptr().add(s) as *const __m256i);
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, sixteens)))
            });
            for (j, pattern) in patterns.iter().enumerate() {
                let c = 4 * s + j;
                let i = (g * n + c) * GROUP + r;
                let wv = wq.add(i) as *const __m256i;
                _mm_prefetch::<_MM_HINT_T0>((wv as *const i8).add(PREFETCH));
                let q = [_mm256_sub_epi8(_mm256_load_si256(wv), offset), _mm256_sub_epi8(_mm256_load_si256(wv.add(1)), offset)];
                let scale = pattern.map(|p| _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, p)));
                for t in 0..T {
                    let xq = a[t].quants.as_ptr().add(c) as *const __m256i;
                    let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[0], _mm256_load_si256(xq)), scale[0]);
                    let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[1], _mm256_load_si256(xq.add(1))), scale[1]);
                    row[t] = _mm256_add_epi32(row[t], _mm256_add_epi32(p0, p1));
                }
            }
            for t in 0..T {
                sums[t][r] = _mm_add_epi32(_mm256_castsi256_si128(row[t]), _mm256_extracti128_si256::<1>(row[t]));
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

/// A Q6_K super-block's end for four rows and `T` tokens, as `q4k_super_block` (no minimums).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k_super_block<const T: usize>(
    w: &Q6KMatrix,
    k: usize,
    s: usize,
    a: &[&QActs; T],
    sums: &[[__m128i; GROUP]; T],
    acc: &mut [__m128; T],
) {
    let d = _mm_loadu_ps(w.super_d.as_ptr().add(k));
    for t in 0..T {
        // Q8_K: one scale for the whole super-block.
        let dx = _mm_set1_ps(a[t].scales.get_unchecked(4 * s).0[0]);
        acc[t] = _mm_fmadd_ps(row_totals(sums[t]), _mm_mul_ps(d, dx), acc[t]);
    }
}
