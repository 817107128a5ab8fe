//! One weight matrix in whichever of the kernels' formats its GGUF type maps to, and the
//! dispatch of a product to the kernel for that format on this CPU.
//!
//! Q8_0, Q5_0 and Q4_0 become int8 with one scale per 32 values, exactly (a 4- or 5-bit value
//! minus its offset is a small integer). Q4_1 and Q5_1 (`d·q + m`) become the same int8 form for
//! `d·q` and keep each block's minimum `m`, which meets the sum of the activation's block, as in
//! llama.cpp's Q8_1 product. Q4_K and Q6_K keep their own layouts (`kquant`). The activations
//! are quantised as llama.cpp quantises them for each type: Q8_0 for the first three, Q8_1 (Q8_0
//! with block sums) for Q4_1 and Q5_1, Q8_K for the K-quants, f16 for F16.

use std::ops::Range;

use candle_core::quantized::GgmlDType;

use crate::f16::F16Matrix;
use crate::kernels::Kernel;
use crate::kquant::{Q4KMatrix, Q6KMatrix, Slots};
use crate::q8::{dot_scalar, ActKind, Q8Matrix, QActs};

pub enum Matrix {
    Q8(Q8Matrix),
    /// Q4_1 or Q5_1: the int8 part, and per row and block of 32, the minimum.
    Q8Min(Q8Matrix, Vec<f32>),
    Q4K(Q4KMatrix),
    Q6K(Q6KMatrix),
    F16(F16Matrix),
}

impl Matrix {
    /// Whether this engine runs a matrix of `dtype` with `kernel` at a useful speed.
    pub fn takes(dtype: GgmlDType, kernel: Kernel) -> bool {
        match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_1 => true,
            // The K-quants have AVX-512 VNNI, AVX2 and NEON kernels (and the plain-Rust
            // reference); F16 has an x86 kernel only.
            GgmlDType::Q4K | GgmlDType::Q6K => kernel != Kernel::Scalar,
            GgmlDType::F16 => matches!(kernel, Kernel::Avx2 | Kernel::Avx512Vnni | Kernel::Amx),
            _ => false,
        }
    }

    /// Bytes a matrix of `elems` values of `dtype` takes once repacked (per 64 values: int8 and
    /// two f16 scales; Q4_K packed nibbles and four f32; Q6_K int8 and four f32).
    pub fn repacked_bytes(dtype: GgmlDType, elems: usize) -> Option<u64> {
        let per_64 = match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_0 => 68,
            GgmlDType::Q4_1 | GgmlDType::Q5_1 => 76,
            // 32 bytes of nibbles, f32 scales and minimums, the integer scales, and (per 256
            // values) d, dmin and the integer minimums for the AVX2 kernel.
            GgmlDType::Q4K => 48 + 4 + 4,
            GgmlDType::Q6K => 80,
            GgmlDType::F16 => 128,
            _ => return None,
        };
        Some((elems.div_ceil(64) * per_64) as u64)
    }

    pub fn from_gguf(dtype: GgmlDType, raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        match dtype {
            GgmlDType::Q8_0 => Q8Matrix::from_q8_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q5_0 => Q8Matrix::from_q5_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q4_0 => Q8Matrix::from_q4_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q4_1 => Q8Matrix::from_q4_1(raw, rows, cols).map(|(m, mins)| Self::Q8Min(m, mins)),
            GgmlDType::Q5_1 => Q8Matrix::from_q5_1(raw, rows, cols).map(|(m, mins)| Self::Q8Min(m, mins)),
            GgmlDType::Q4K => Q4KMatrix::from_q4_k(raw, rows, cols).map(Self::Q4K),
            GgmlDType::Q6K => Q6KMatrix::from_q6_k(raw, rows, cols).map(Self::Q6K),
            GgmlDType::F16 => F16Matrix::from_f16(raw, rows, cols).map(Self::F16),
            _ => None,
        }
    }

    pub fn rows(&self) -> usize {
        match self {
            Self::Q8(m) | Self::Q8Min(m, _) => m.rows,
            Self::Q4K(m) => m.rows,
            Self::Q6K(m) => m.rows,
            Self::F16(m) => m.rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Self::Q8(m) | Self::Q8Min(m, _) => m.cols,
            Self::Q4K(m) => m.cols,
            Self::Q6K(m) => m.cols,
            Self::F16(m) => m.cols,
        }
    }

    pub fn act_kind(&self) -> ActKind {
        match self {
            Self::Q8(_) => ActKind::Q8_0,
            Self::Q8Min(..) => ActKind::Q8_1,
            Self::Q4K(_) | Self::Q6K(_) => ActKind::Q8K,
            Self::F16(_) => ActKind::F16,
        }
    }

    /// Row `r` as f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self {
            Self::Q8(m) => m.dequantize_row(r, out),
            Self::Q8Min(m, mins) => {
                m.dequantize_row(r, out);
                let blocks = m.cols / crate::q8::QK;
                out.iter_mut().enumerate().for_each(|(i, o)| *o += mins[r * blocks + i / crate::q8::QK]);
            }
            Self::Q4K(m) => m.dequantize_row(r, out),
            Self::Q6K(m) => m.dequantize_row(r, out),
            Self::F16(m) => m.dequantize_row(r, out),
        }
    }

    /// The plain-Rust product of row `r` and `a` (the reference the kernels are tested against).
    pub fn dot_scalar(&self, r: usize, a: &QActs) -> f32 {
        match self {
            Self::Q8(m) => dot_scalar(m, r, a),
            Self::Q8Min(m, mins) => dot_scalar(m, r, a) + crate::q8::min_share(mins, m.cols / crate::q8::QK, r, a),
            Self::Q4K(m) => m.dot_scalar(r, a),
            Self::Q6K(m) => m.dot_scalar(r, a),
            Self::F16(m) => m.dot_scalar(r, a),
        }
    }

    /// `out[t * stride + r] = row r · acts[t]` for the rows in `rows`.
    ///
    /// # Safety
    /// `out` must be valid for those writes, and no other thread may touch those elements.
    pub unsafe fn matmul(&self, kernel: Kernel, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
        let fits = |a: &QActs| match self {
            Self::Q8(m) | Self::Q8Min(m, _) => a.quants.len() == m.chunks,
            Self::Q4K(m) => a.quants.len() == m.chunks,
            Self::Q6K(m) => a.quants.len() == m.chunks,
            Self::F16(m) => a.halves.len() == m.cols,
        };
        assert!(rows.end <= self.rows() && acts.iter().all(|a| fits(a) && a.kind == self.act_kind()));
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::x86;
            match (self, kernel) {
                (Self::Q8(m) | Self::Q8Min(m, _), Kernel::Avx512Vnni | Kernel::Amx) => x86::matmul_vnni(m, rows.clone(), acts, out, stride),
                (Self::Q8(m) | Self::Q8Min(m, _), Kernel::Avx2) => x86::matmul_avx2(m, rows.clone(), acts, out, stride),
                // The K-quants on AVX-512 sum as the AVX2 kernels do (integers per super-block,
                // llama.cpp's arithmetic; bit for bit the same results), 64 values at a time. The
                // earlier VNNI kernel's float sums per chunk pre-filled the default model at
                // x0.71 of llama.cpp on a Sapphire Rapids, the AVX2 kernels at x0.93.
                // A pre-fill's tokens on AMX tiles of 16 (fewer would be mostly padding).
                (Self::Q4K(m), Kernel::Amx) if acts.len() >= x86::amx::MIN_TOKENS => {
                    return x86::amx::matmul_q4k_amx(m, rows, acts, out, stride)
                }
                (Self::Q6K(m), Kernel::Amx) if acts.len() >= x86::amx::MIN_TOKENS => {
                    return x86::amx::matmul_q6k_amx(m, rows, acts, out, stride)
                }
                (Self::Q4K(m), Kernel::Avx512Vnni | Kernel::Amx) => return x86::matmul_q4k_512(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::Avx512Vnni | Kernel::Amx) => return x86::matmul_q6k_512(m, rows, acts, out, stride),
                (Self::Q4K(m), Kernel::Avx2) => return x86::matmul_q4k_avx2(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::Avx2) => return x86::matmul_q6k_avx2(m, rows, acts, out, stride),
                // Memory-bound: AVX2's eight lanes keep up on an AVX-512 CPU too.
                (Self::F16(m), Kernel::Avx2 | Kernel::Avx512Vnni | Kernel::Amx) => {
                    return crate::f16::matmul_avx2(m, rows, acts, out, stride)
                }
                _ => {
                    self.matmul_scalar(rows, acts, out, stride);
                    return;
                }
            }
            // The Q8 kernels ran: a minimum (Q4_1, Q5_1) adds its share.
            if let Self::Q8Min(m, mins) = self {
                crate::q8::add_mins(mins, m.cols / crate::q8::QK, rows, acts, out, stride);
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use crate::neon;
            match (self, kernel) {
                (Self::Q8(m) | Self::Q8Min(m, _), Kernel::NeonDot) => neon::matmul_q8_dot(m, rows.clone(), acts, out, stride),
                (Self::Q8(m) | Self::Q8Min(m, _), Kernel::Neon) => neon::matmul_q8(m, rows.clone(), acts, out, stride),
                (Self::Q4K(m), Kernel::NeonDot) => return neon::matmul_q4k_dot(m, rows, acts, out, stride),
                (Self::Q4K(m), Kernel::Neon) => return neon::matmul_q4k(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::NeonDot) => return neon::matmul_q6k_dot(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::Neon) => return neon::matmul_q6k(m, rows, acts, out, stride),
                _ => {
                    self.matmul_scalar(rows, acts, out, stride);
                    return;
                }
            }
            if let Self::Q8Min(m, mins) = self {
                crate::q8::add_mins(mins, m.cols / crate::q8::QK, rows, acts, out, stride);
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            // Only the plain-Rust path exists elsewhere.
            let _ = kernel;
            self.matmul_scalar(rows, acts, out, stride);
        }
    }

    /// # Safety
    /// As [`Self::matmul`].
    unsafe fn matmul_scalar(&self, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
        for r in rows {
            for (t, a) in acts.iter().enumerate() {
                *out.add(t * stride + r) = self.dot_scalar(r, a);
            }
        }
    }
}
