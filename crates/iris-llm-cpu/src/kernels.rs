//! The matrix-vector kernels: rows of repacked weights times quantised activations.
//!
//! Implementations of one contract, chosen once at start-up by what the CPU has: AVX-512 VNNI
//! (`vpdpbusd` multiplies 64 byte pairs into 16 lanes at once) and AVX2 (`vpmaddubsw` then
//! `vpmaddwd` on 32 bytes at a time, with the sign trick of llama.cpp's dots where both sides
//! are signed) for every format, NEON and `sdot` on 64-bit ARM (`neon`), and plain Rust
//! (`Matrix::dot_scalar`) elsewhere. Rows
//! are taken four at a time so the activation chunk is loaded once per four rows and the four
//! accumulations run side by side; for a batch of tokens (prefill) the four rows stay in L1
//! while every token passes over them.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512 VNNI, and AMX tiles for a pre-fill's K-quant products (`x86::amx`).
    Amx,
    Avx512Vnni,
    Avx2,
    /// 64-bit ARM with the dot-product extension (`sdot`).
    NeonDot,
    /// 64-bit ARM, NEON alone (every ARMv8 core).
    Neon,
    Scalar,
}

impl Kernel {
    /// The best kernel this CPU has, or a lesser one named by `IRIS_LLM_KERNEL` (`avx512`,
    /// `avx2`, `neon`, `scalar`) so the slower paths can be measured on a machine that has the faster
    /// one (a kernel the CPU lacks is never chosen).
    pub fn detect() -> Self {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            let best = Self::best();
            let asked = match std::env::var("IRIS_LLM_KERNEL").as_deref() {
                Ok("avx512") => Kernel::Avx512Vnni,
                Ok("avx2") => Kernel::Avx2,
                Ok("neon") => Kernel::Neon,
                Ok("scalar") => Kernel::Scalar,
                _ => best,
            };
            // Within an architecture, Amx > Avx512Vnni > Avx2 > Scalar and NeonDot > Neon >
            // Scalar; only a lesser or equal one of the same family is allowed.
            let rank = |k: Kernel| match k {
                Kernel::Amx => 3,
                Kernel::Avx512Vnni | Kernel::NeonDot => 2,
                Kernel::Avx2 | Kernel::Neon => 1,
                Kernel::Scalar => 0,
            };
            let arm = |k: Kernel| matches!(k, Kernel::Neon | Kernel::NeonDot);
            if rank(asked) <= rank(best) && (asked == Kernel::Scalar || arm(asked) == arm(best)) {
                asked
            } else {
                best
            }
        })
    }

    fn best() -> Self {
        {
            #[cfg(target_arch = "x86_64")]
            {
                let f = |s: &str| match s {
                    "avx512vnni" => is_x86_feature_detected!("avx512vnni"),
                    "avx512bw" => is_x86_feature_detected!("avx512bw"),
                    "avx512f" => is_x86_feature_detected!("avx512f"),
                    "avx2" => is_x86_feature_detected!("avx2"),
                    "fma" => is_x86_feature_detected!("fma"),
                    "f16c" => is_x86_feature_detected!("f16c"),
                    _ => false,
                };
                if ["avx512f", "avx512bw", "avx512vnni", "fma", "f16c"].iter().all(|s| f(s)) {
                    return if x86::amx::available() { Kernel::Amx } else { Kernel::Avx512Vnni };
                }
                if ["avx2", "fma", "f16c"].iter().all(|s| f(s)) {
                    return Kernel::Avx2;
                }
            }
            #[cfg(target_arch = "aarch64")]
            {
                if std::arch::is_aarch64_feature_detected!("dotprod") {
                    return Kernel::NeonDot;
                }
                if std::arch::is_aarch64_feature_detected!("neon") {
                    return Kernel::Neon;
                }
            }
            Kernel::Scalar
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "amx",
            Kernel::Avx512Vnni => "avx512-vnni",
            Kernel::Avx2 => "avx2",
            Kernel::NeonDot => "neon-dotprod",
            Kernel::Neon => "neon",
            Kernel::Scalar => "scalar",
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use crate::q8::{Q8Matrix, QActs, GROUP};

    /// Walks the row groups in order, every token per group (the group stays in L1).
    macro_rules! driver {
        ($name:ident, $matrix:ty, $rows:ident, $features:literal) => {
            #[target_feature(enable = $features)]
            pub unsafe fn $name(w: &$matrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
                let mut r = rows.start - rows.start % GROUP;
                while r < rows.end {
                    for (t, a) in acts.iter().enumerate() {
                        let v = $rows(w, r / GROUP, a);
                        for (i, v) in v.iter().enumerate() {
                            if (rows.start..rows.end).contains(&(r + i)) {
                                *out.add(t * stride + r + i) = *v;
                            }
                        }
                    }
                    r += GROUP;
                }
            }
        };
    }

    /// How far ahead of the rows in use to prefetch, in bytes.
    const PREFETCH: usize = 2048;

    pub(crate) mod amx;
    mod kquant;
    mod kquant512;
    pub use kquant::*;
    pub use kquant512::*;

    driver!(matmul_vnni, Q8Matrix, rows_vnni, "avx512f,avx512bw,avx512vnni,fma,f16c");
    driver!(matmul_avx2_each, Q8Matrix, rows_avx2, "avx2,fma,f16c");

    /// Q8 on AVX2. A prompt's pre-fill goes row by row, six tokens at a time (the rest as one
    /// smaller tile), so each weight vector is prepared once per six tokens. Decode, and fewer
    /// than six tokens, go four rows at a time, the activation loaded once for them. Both sum a
    /// chunk's two halves as integers before one conversion, scaling and add (the lanes of both
    /// halves hold the same blocks): three operations fewer per 64 values and token.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn matmul_avx2(w: &Q8Matrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
        const TILE: usize = 6;
        let tiles = acts.len() / TILE;
        if tiles == 0 {
            return matmul_avx2_each(w, rows, acts, out, stride);
        }
        for k in 0..tiles {
            let t0 = k * TILE;
            for r in rows.clone() {
                let v = row_avx2_tokens::<TILE>(w, r, std::array::from_fn(|j| &acts[t0 + j]));
                v.into_iter().enumerate().for_each(|(j, v)| *out.add((t0 + j) * stride + r) = v);
            }
        }
        // The tokens left over, as one smaller tile.
        let (t0, rest) = (tiles * TILE, &acts[tiles * TILE..]);
        for r in rows {
            let put = |v: &[f32]| v.iter().enumerate().for_each(|(j, v)| *out.add((t0 + j) * stride + r) = *v);
            match rest.len() {
                1 => put(&row_avx2_tokens::<1>(w, r, [&rest[0]])),
                2 => put(&row_avx2_tokens::<2>(w, r, std::array::from_fn(|j| &rest[j]))),
                3 => put(&row_avx2_tokens::<3>(w, r, std::array::from_fn(|j| &rest[j]))),
                4 => put(&row_avx2_tokens::<4>(w, r, std::array::from_fn(|j| &rest[j]))),
                5 => put(&row_avx2_tokens::<5>(w, r, std::array::from_fn(|j| &rest[j]))),
                _ => {}
            }
        }
    }

    /// Signed bytes times signed bytes, pairs summed into eight i32 lanes: `vpmaddubsw` needs one
    /// side unsigned, so |w| meets x with w's sign (llama.cpp's trick).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn signed_dot(w: __m256i, x: __m256i, ones: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), ones)
    }

    /// The sum of a vector's eight lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn sum8(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma,f16c")]
    unsafe fn rows_vnni(w: &Q8Matrix, g: usize, a: &QActs) -> [f32; GROUP] {
        let n = w.chunks;
        let (wq, ws) = (w.quants.as_ptr(), w.scales.as_ptr());
        let mut acc = [_mm512_setzero_ps(); GROUP];
        for c in 0..n {
            let x = _mm512_load_si512(a.quants.as_ptr().add(c) as *const _);
            let init = _mm512_load_si512(a.init.as_ptr().add(c) as *const _);
            let dx = _mm512_load_ps(a.scales.as_ptr().add(c) as *const f32);
            for (r, acc) in acc.iter_mut().enumerate() {
                let i = (g * n + c) * GROUP + r;
                _mm_prefetch::<_MM_HINT_T0>((wq.add(i) as *const i8).add(PREFETCH));
                let dot = _mm512_dpbusd_epi32(init, _mm512_load_si512(wq.add(i) as *const _), x);
                let dw = _mm512_cvtph_ps(_mm256_set1_epi32(*ws.add(i) as i32));
                *acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dx), dw, *acc);
            }
        }
        acc.map(|v| _mm512_reduce_add_ps(v))
    }

    /// Row `r` of `w` times `T` tokens at once (a prompt's pre-fill): each weight vector is
    /// loaded, made signed and its absolute value taken once for all of them. Each token's
    /// arithmetic is `rows_avx2`'s, in the same order, so its sums are bit for bit the same.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row_avx2_tokens<const T: usize>(w: &Q8Matrix, r: usize, a: [&QActs; T]) -> [f32; T] {
        let n = w.chunks;
        let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
        let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(-128));
        let mut acc = [_mm256_setzero_ps(); T];
        let xs: [*const u8; T] = std::array::from_fn(|t| a[t].quants.as_ptr() as *const u8);
        let ds: [*const f32; T] = std::array::from_fn(|t| a[t].scales.as_ptr() as *const f32);
        for c in 0..n {
            let i = ((r / GROUP) * n + c) * GROUP + r % GROUP;
            _mm_prefetch::<_MM_HINT_T0>(wq.add(i * 64 + PREFETCH) as *const i8);
            let dw = _mm256_cvtph_ps(_mm_set1_epi32(*ws.add(i) as i32));
            let w0 = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64) as *const __m256i), flip);
            let w1 = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64 + 32) as *const __m256i), flip);
            let (abs0, abs1) = (_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(w1, w1));
            for t in 0..T {
                let x = xs[t].add(c * 64);
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs0, _mm256_sign_epi8(_mm256_load_si256(x as *const __m256i), w0)), ones);
                let p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(abs1, _mm256_sign_epi8(_mm256_load_si256(x.add(32) as *const __m256i), w1)),
                    ones,
                );
                // Lane l of both halves holds the same block: its eight products add exactly.
                let p = _mm256_add_epi32(p0, p1);
                let dx = _mm256_load_ps(ds[t].add(c * 16));
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dx), dw, acc[t]);
            }
        }
        acc.map(|v| sum8(v))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_avx2(w: &Q8Matrix, g: usize, a: &QActs) -> [f32; GROUP] {
        let n = w.chunks;
        let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
        let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(-128));
        let mut acc = [_mm256_setzero_ps(); GROUP];
        for c in 0..n {
            let x = a.quants.as_ptr().add(c) as *const u8;
            let (x0, x1) = (_mm256_load_si256(x as *const __m256i), _mm256_load_si256(x.add(32) as *const __m256i));
            // The chunk's scales repeat in its second half (lane l is block l % 2 in both).
            let dx = _mm256_load_ps(a.scales.as_ptr().add(c) as *const f32);
            for (r, acc) in acc.iter_mut().enumerate() {
                let i = (g * n + c) * GROUP + r;
                _mm_prefetch::<_MM_HINT_T0>(wq.add(i * 64 + PREFETCH) as *const i8);
                let w0 = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64) as *const __m256i), flip);
                let w1 = _mm256_xor_si256(_mm256_load_si256(wq.add(i * 64 + 32) as *const __m256i), flip);
                // Lane l of both halves holds the same block: its eight products add exactly.
                let p = _mm256_add_epi32(signed_dot(w0, x0, ones), signed_dot(w1, x1, ones));
                let dw = _mm256_cvtph_ps(_mm_set1_epi32(*ws.add(i) as i32));
                *acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dx), dw, *acc);
            }
        }
        acc.map(|v| sum8(v))
    }
}
