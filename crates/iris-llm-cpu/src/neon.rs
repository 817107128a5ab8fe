//! The matrix-vector kernels on 64-bit ARM (a Raspberry Pi 5, an RK3588, a Jetson): NEON for
//! every ARMv8 core, and `sdot` (four byte products summed into each 32-bit lane in one
//! instruction) on the cores that have the dot-product extension (Cortex-A55/A76 and later).
//!
//! Same contract and layouts as the x86 kernels: rows in groups of four, 64-byte chunks with
//! the two blocks of 32 interleaved four bytes at a time, so in every 16-byte vector the lanes
//! alternate between the chunk's two blocks and one scale vector `[s0, s1, s0, s1]` serves all
//! four. The integer sums are exact; the floating-point part multiplies each chunk's sums by
//! both sides' scales and accumulates in four lanes, summed at the end.
//!
//! `vdotq_s32` is still unstable in Rust's standard library, so `sdot` is one line of `asm!`.

use std::arch::aarch64::*;
use std::ops::Range;

use crate::kquant::{Q4KMatrix, Q6KMatrix};
use crate::q8::{scale, Q8Matrix, QActs, GROUP};

/// `acc + Σ a·b` over each lane's four bytes, with the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    std::arch::asm!("sdot {0:v}.4s, {1:v}.16b, {2:v}.16b", inout(vreg) acc, in(vreg) a, in(vreg) b, options(pure, nomem, nostack));
    acc
}

/// The same with NEON alone: widening multiplies, then pairwise sums (the products of two
/// signed bytes, at most 128·128, fit 16 bits).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot4(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    let hi = vpaddlq_s16(vmull_high_s8(a, b));
    vaddq_s32(acc, vpaddq_s32(lo, hi))
}

/// Lanes `[a, b, a, b]`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn pair(a: f32, b: f32) -> float32x4_t {
    vld1q_f32([a, b, a, b].as_ptr())
}

/// Writes one group's results for the rows of `rows`.
#[inline]
unsafe fn store(out: *mut f32, stride: usize, t: usize, r0: usize, rows: &Range<usize>, v: [f32; GROUP]) {
    for (i, v) in v.iter().enumerate() {
        if rows.contains(&(r0 + i)) {
            *out.add(t * stride + r0 + i) = *v;
        }
    }
}

/// The loops every kernel shares: row groups, then tokens, then chunks, the activation's chunk
/// (`$x`, four 16-byte vectors; `$dx`, its scales; `$pre`, anything else taken once per chunk)
/// loaded once for the group's four rows; `$body` adds chunk `$c` of the row stored at `$i` to
/// `$acc`.
macro_rules! each_chunk {
    ($n:expr, $rows:expr, $acts:expr, $out:expr, $stride:expr,
     |$a:ident, $c:ident, $x:ident, $dx:ident, $pre_name:ident = $pre:expr, $i:ident, $acc:ident| $body:block) => {{
        let mut g = $rows.start / GROUP;
        while g * GROUP < $rows.end {
            for (t, $a) in $acts.iter().enumerate() {
                let mut accs = [vdupq_n_f32(0.0); GROUP];
                for $c in 0..$n {
                    let xq = $a.quants.as_ptr().add($c) as *const i8;
                    let $x = [vld1q_s8(xq), vld1q_s8(xq.add(16)), vld1q_s8(xq.add(32)), vld1q_s8(xq.add(48))];
                    let $dx = vld1q_f32($a.scales.as_ptr().add($c) as *const f32);
                    let $pre_name = $pre;
                    for (r, $acc) in accs.iter_mut().enumerate() {
                        let $i = (g * $n + $c) * GROUP + r;
                        $body
                    }
                }
                store($out, $stride, t, g * GROUP, &$rows, accs.map(|v| vaddvq_f32(v)));
            }
            g += 1;
        }
    }};
}

macro_rules! kernels {
    ($q8:ident, $q4k:ident, $q6k:ident, $dot:ident, $features:literal) => {
        /// Q8_0 (and the formats made into it): four rows, each chunk's activation loaded once.
        ///
        /// # Safety
        /// As [`crate::Matrix::matmul`]; the CPU must have `$features`.
        #[target_feature(enable = $features)]
        pub unsafe fn $q8(w: &Q8Matrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
            let n = w.chunks;
            let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
            let flip = vdupq_n_u8(0x80);
            each_chunk!(n, rows, acts, out, stride, |a, c, x, dx, _none = (), i, acc| {
                let p = wq.add(i * 64);
                let mut s = vdupq_n_s32(0);
                for k in 0..4 {
                    let wv = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p.add(16 * k)), flip));
                    s = $dot(s, wv, x[k]);
                }
                let dw = pair(scale(*ws.add(i), 0), scale(*ws.add(i), 1));
                *acc = vfmaq_f32(*acc, vmulq_f32(vcvtq_f32_s32(s), dx), dw);
            });
        }

        /// Q4_K: the nibbles unpacked in registers (at most 15, so signed bytes), the minimum
        /// times the activation's sums taken off.
        ///
        /// # Safety
        /// As [`crate::Matrix::matmul`]; the CPU must have `$features`.
        #[target_feature(enable = $features)]
        pub unsafe fn $q4k(w: &Q4KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
            let n = w.chunks;
            let (wq, ws, wm) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr(), w.mins.as_ptr());
            let nibble = vdupq_n_u8(0x0F);
            // The activation's sums: one scale for the whole chunk (it lies in one Q8_K block).
            let sums_of = |a: &QActs, c: usize| {
                let s = a.sums.as_ptr().add(c) as *const f32;
                vaddq_f32(vaddq_f32(vld1q_f32(s), vld1q_f32(s.add(4))), vaddq_f32(vld1q_f32(s.add(8)), vld1q_f32(s.add(12))))
            };
            each_chunk!(n, rows, acts, out, stride, |a, c, x, dx, sums = sums_of(a, c), i, acc| {
                let (p0, p1) = (vld1q_u8(wq.add(i * 32)), vld1q_u8(wq.add(i * 32 + 16)));
                let q = [vandq_u8(p0, nibble), vandq_u8(p1, nibble), vshrq_n_u8::<4>(p0), vshrq_n_u8::<4>(p1)];
                let mut d = vdupq_n_s32(0);
                for k in 0..4 {
                    d = $dot(d, vreinterpretq_s8_u8(q[k]), x[k]);
                }
                let ([s0, s1], [m0, m1]) = (*ws.add(i), *wm.add(i));
                *acc = vfmaq_f32(*acc, vmulq_f32(vcvtq_f32_s32(d), dx), pair(s0, s1));
                *acc = vfmsq_f32(*acc, pair(m0, m1), sums);
            });
        }

        /// Q6_K: the bytes back to signed (q − 32); the first 16 bytes' lanes take the scales
        /// of values 0–15 of their blocks, the next 16 bytes' those of values 16–31.
        ///
        /// # Safety
        /// As [`crate::Matrix::matmul`]; the CPU must have `$features`.
        #[target_feature(enable = $features)]
        pub unsafe fn $q6k(w: &Q6KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
            let n = w.chunks;
            let (wq, ws) = (w.quants.as_ptr() as *const u8, w.scales.as_ptr());
            let flip = vdupq_n_u8(0x80);
            each_chunk!(n, rows, acts, out, stride, |a, c, x, dx, _none = (), i, acc| {
                let p = wq.add(i * 64);
                let q: [int8x16_t; 4] = std::array::from_fn(|k| vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p.add(16 * k)), flip)));
                let low = $dot($dot(vdupq_n_s32(0), q[0], x[0]), q[1], x[1]);
                let high = $dot($dot(vdupq_n_s32(0), q[2], x[2]), q[3], x[3]);
                let [s0, s1, s2, s3] = *ws.add(i);
                *acc = vfmaq_f32(*acc, vmulq_f32(vcvtq_f32_s32(low), dx), pair(s0, s2));
                *acc = vfmaq_f32(*acc, vmulq_f32(vcvtq_f32_s32(high), dx), pair(s1, s3));
            });
        }
    };
}

kernels!(matmul_q8, matmul_q4k, matmul_q6k, dot4, "neon");
kernels!(matmul_q8_dot, matmul_q4k_dot, matmul_q6k_dot, sdot, "neon,dotprod");
