//! One weight matrix in whichever of the kernels' formats its GGUF type maps to, and the
//! dispatch of a product to the kernel for that format on this CPU.
//!
//! Q8_0, Q5_0 and Q4_0 become int8 with one scale per 32 values, exactly (a 4- or 5-bit value
//! minus its offset is a small integer). Q4_K and Q6_K keep their own layouts (`kquant`). The
//! activations are quantised as llama.cpp quantises them for each type: Q8_0 for the first
//! three, Q8_K for the K-quants.

use std::ops::Range;

use candle_core::quantized::GgmlDType;

use crate::kernels::Kernel;
use crate::kquant::{Q4KMatrix, Q6KMatrix, Slots};
use crate::q8::{dot_scalar, ActKind, Q8Matrix, QActs};

pub enum Matrix {
    Q8(Q8Matrix),
    Q4K(Q4KMatrix),
    Q6K(Q6KMatrix),
}

impl Matrix {
    /// Whether this engine runs a matrix of `dtype` with `kernel` at a useful speed.
    pub fn takes(dtype: GgmlDType, kernel: Kernel) -> bool {
        match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_0 => true,
            // The K-quants have AVX-512 VNNI and AVX2 kernels (and the plain-Rust reference).
            GgmlDType::Q4K | GgmlDType::Q6K => kernel != Kernel::Scalar,
            _ => false,
        }
    }

    /// Bytes a matrix of `elems` values of `dtype` takes once repacked (per 64 values: int8 and
    /// two f16 scales; Q4_K packed nibbles and four f32; Q6_K int8 and four f32).
    pub fn repacked_bytes(dtype: GgmlDType, elems: usize) -> Option<u64> {
        let per_64 = match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_0 => 68,
            GgmlDType::Q4K => 48,
            GgmlDType::Q6K => 80,
            _ => return None,
        };
        Some((elems.div_ceil(64) * per_64) as u64)
    }

    pub fn from_gguf(dtype: GgmlDType, raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        match dtype {
            GgmlDType::Q8_0 => Q8Matrix::from_q8_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q5_0 => Q8Matrix::from_q5_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q4_0 => Q8Matrix::from_q4_0(raw, rows, cols).map(Self::Q8),
            GgmlDType::Q4K => Q4KMatrix::from_q4_k(raw, rows, cols).map(Self::Q4K),
            GgmlDType::Q6K => Q6KMatrix::from_q6_k(raw, rows, cols).map(Self::Q6K),
            _ => None,
        }
    }

    pub fn rows(&self) -> usize {
        match self {
            Self::Q8(m) => m.rows,
            Self::Q4K(m) => m.rows,
            Self::Q6K(m) => m.rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Self::Q8(m) => m.cols,
            Self::Q4K(m) => m.cols,
            Self::Q6K(m) => m.cols,
        }
    }

    pub fn act_kind(&self) -> ActKind {
        match self {
            Self::Q8(_) => ActKind::Q8_0,
            Self::Q4K(_) | Self::Q6K(_) => ActKind::Q8K,
        }
    }

    /// Row `r` as f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self {
            Self::Q8(m) => m.dequantize_row(r, out),
            Self::Q4K(m) => m.dequantize_row(r, out),
            Self::Q6K(m) => m.dequantize_row(r, out),
        }
    }

    /// The plain-Rust product of row `r` and `a` (the reference the kernels are tested against).
    pub fn dot_scalar(&self, r: usize, a: &QActs) -> f32 {
        match self {
            Self::Q8(m) => dot_scalar(m, r, a),
            Self::Q4K(m) => m.dot_scalar(r, a),
            Self::Q6K(m) => m.dot_scalar(r, a),
        }
    }

    /// `out[t * stride + r] = row r · acts[t]` for the rows in `rows`.
    ///
    /// # Safety
    /// `out` must be valid for those writes, and no other thread may touch those elements.
    pub unsafe fn matmul(&self, kernel: Kernel, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
        let chunks = match self {
            Self::Q8(m) => m.chunks,
            Self::Q4K(m) => m.chunks,
            Self::Q6K(m) => m.chunks,
        };
        assert!(rows.end <= self.rows() && acts.iter().all(|a| a.quants.len() == chunks && a.kind == self.act_kind()));
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::x86;
            match (self, kernel) {
                (Self::Q8(m), Kernel::Avx512Vnni) => return x86::matmul_vnni(m, rows, acts, out, stride),
                (Self::Q8(m), Kernel::Avx2) => return x86::matmul_avx2(m, rows, acts, out, stride),
                (Self::Q4K(m), Kernel::Avx512Vnni) => return x86::matmul_q4k_vnni(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::Avx512Vnni) => return x86::matmul_q6k_vnni(m, rows, acts, out, stride),
                (Self::Q4K(m), Kernel::Avx2) => return x86::matmul_q4k_avx2(m, rows, acts, out, stride),
                (Self::Q6K(m), Kernel::Avx2) => return x86::matmul_q6k_avx2(m, rows, acts, out, stride),
                _ => {}
            }
        }
        for r in rows {
            for (t, a) in acts.iter().enumerate() {
                *out.add(t * stride + r) = self.dot_scalar(r, a);
            }
        }
    }
}
