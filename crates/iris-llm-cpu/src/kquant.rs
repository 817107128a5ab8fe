//! GGUF's K-quants in the kernels' layout: Q4_K (`d·sc·q − dmin·m` per 32 values, q of 4 bits)
//! and Q6_K (`d·sc·(q − 32)` per 16 values, q of 6 bits). As in `q8`, a chunk holds two blocks
//! of 32 interleaved four bytes at a time and rows come in groups of four; the sub-block scales
//! (and Q4_K's minimums) are multiplied out to f32 at load, exactly as llama.cpp computes them;
//! Q4_K also keeps them as integers, with d and dmin per 256 values, for the AVX2 kernel,
//! which sums as llama.cpp's does.
//! Q4_K keeps its nibbles packed (32 bytes per 64 values, unpacked in registers); Q6_K is
//! widened to a byte per value.

use half::f16;

use crate::q8::{at, slot, Chunk, QActs, GROUP};

const QK_K: usize = 256;

#[repr(C, align(32))]
#[derive(Clone, Copy)]
pub struct Packed(pub [u8; 32]);

pub struct Q4KMatrix {
    pub rows: usize,
    pub cols: usize,
    pub chunks: usize,
    /// Byte k: value slot k in the low nibble, slot k + 32 in the high one.
    pub(crate) quants: Vec<Packed>,
    /// Per chunk: d·sc of its two blocks, and dmin·m.
    pub(crate) scales: Vec<[f32; 2]>,
    pub(crate) mins: Vec<[f32; 2]>,
    /// Per chunk, for the AVX2 kernel's integer sums (llama.cpp's): the two 6-bit scales as
    /// bytes `sa, sa, sb, sb`, the pattern of a chunk's four-byte lanes.
    pub(crate) int_scales: Vec<[u8; 4]>,
    /// Per 256 values of a row (in the order of `at` over super-blocks): d and dmin, and the
    /// eight 6-bit minimums.
    pub(crate) super_d: Vec<[f32; 2]>,
    pub(crate) super_mins: Vec<[u8; 8]>,
}

pub struct Q6KMatrix {
    pub rows: usize,
    pub cols: usize,
    pub chunks: usize,
    /// (q − 32) offset by 128, interleaved as Q8_0.
    pub(crate) quants: Vec<Chunk>,
    /// Per chunk: d·sc of values 0–15 and 16–31 of the first block, then of the second.
    pub(crate) scales: Vec<[f32; 4]>,
    /// Per 256 values of a row (in the order of `at` over super-blocks), for the AVX2 kernel's
    /// integer sums (llama.cpp's): d, and the sixteen 8-bit scales.
    pub(crate) super_d: Vec<f32>,
    pub(crate) super_scales: Vec<[i8; 16]>,
}

/// llama.cpp's `get_scale_min_k4`: the 6-bit scale and minimum of sub-block `j`.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn shape_ok(raw: &[u8], rows: usize, cols: usize, block_bytes: usize) -> bool {
    cols % QK_K == 0 && raw.len() == rows * cols / QK_K * block_bytes
}

impl Q4KMatrix {
    pub fn from_q4_k(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !shape_ok(raw, rows, cols, 144) {
            return None;
        }
        let chunks = cols / 64;
        let stored = rows.div_ceil(GROUP) * GROUP * chunks;
        let mut m = Self {
            rows,
            cols,
            chunks,
            quants: vec![Packed([0; 32]); stored],
            scales: vec![[0.0; 2]; stored],
            mins: vec![[0.0; 2]; stored],
            int_scales: vec![[0; 4]; stored],
            super_d: vec![[0.0; 2]; stored / 4],
            super_mins: vec![[0; 8]; stored / 4],
        };
        for r in 0..rows {
            for s in 0..cols / QK_K {
                let b = &raw[(r * cols / QK_K + s) * 144..][..144];
                let (d, dmin) = (f16::from_le_bytes([b[0], b[1]]).to_f32(), f16::from_le_bytes([b[2], b[3]]).to_f32());
                let (sc, qs) = (&b[4..16], &b[16..]);
                let k = at(chunks / 4, r, s);
                m.super_d[k] = [d, dmin];
                m.super_mins[k] = std::array::from_fn(|j| scale_min_k4(j, sc).1);
                for p in 0..4 {
                    let i = at(chunks, r, s * 4 + p);
                    let mut unpacked = [0u8; 64];
                    for l in 0..32 {
                        unpacked[slot(0, l)] = qs[32 * p + l] & 0x0F;
                        unpacked[slot(1, l)] = qs[32 * p + l] >> 4;
                    }
                    for k in 0..32 {
                        m.quants[i].0[k] = unpacked[k] | (unpacked[k + 32] << 4);
                    }
                    let ((sa, ma), (sb, mb)) = (scale_min_k4(2 * p, sc), scale_min_k4(2 * p + 1, sc));
                    m.int_scales[i] = [sa, sa, sb, sb];
                    m.scales[i] = [d * f32::from(sa), d * f32::from(sb)];
                    m.mins[i] = [dmin * f32::from(ma), dmin * f32::from(mb)];
                }
            }
        }
        Some(m)
    }

    /// The value at slot `pos` (0..64) of chunk `i`.
    fn value(&self, i: usize, pos: usize) -> f32 {
        let q = if pos < 32 { self.quants[i].0[pos] & 0x0F } else { self.quants[i].0[pos - 32] >> 4 };
        let half = (pos / 4) % 2;
        self.scales[i][half] * f32::from(q) - self.mins[i][half]
    }
}

impl Q6KMatrix {
    pub fn from_q6_k(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !shape_ok(raw, rows, cols, 210) {
            return None;
        }
        let chunks = cols / 64;
        let stored = rows.div_ceil(GROUP) * GROUP * chunks;
        let mut m = Self {
            rows,
            cols,
            chunks,
            quants: vec![Chunk([128; 64]); stored],
            scales: vec![[0.0; 4]; stored],
            super_d: vec![0.0; stored / 4],
            super_scales: vec![[0; 16]; stored / 4],
        };
        for r in 0..rows {
            for s in 0..cols / QK_K {
                let b = &raw[(r * cols / QK_K + s) * 210..][..210];
                let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
                let d = f16::from_le_bytes([b[208], b[209]]).to_f32();
                let k = at(chunks / 4, r, s);
                m.super_d[k] = d;
                m.super_scales[k] = std::array::from_fn(|g| sc[g] as i8);
                // llama.cpp's `dequantize_row_q6_K`, keeping the integers.
                let mut q = [0i8; QK_K];
                for n in 0..2 {
                    let (ql, qh, y) = (&ql[64 * n..], &qh[32 * n..], 128 * n);
                    for l in 0..32 {
                        q[y + l] = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i8 - 32;
                        q[y + l + 32] = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                        q[y + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                        q[y + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    }
                }
                for p in 0..4 {
                    let i = at(chunks, r, s * 4 + p);
                    for j in 0..64 {
                        m.quants[i].0[slot(j / 32, j % 32)] = (q[64 * p + j] as u8) ^ 0x80;
                    }
                    for g in 0..4 {
                        m.scales[i][g] = d * f32::from(sc[4 * p + g] as i8);
                    }
                }
            }
        }
        Some(m)
    }

    fn value(&self, i: usize, pos: usize) -> f32 {
        let (lane, half) = (pos / 4, (pos / 4) % 2);
        let group = half * 2 + lane / 8;
        f32::from((self.quants[i].0[pos] ^ 0x80) as i8) * self.scales[i][group]
    }
}

/// The format-independent parts: dequantising a row, and the plain-Rust dot product.
pub(crate) trait Slots {
    fn chunks(&self) -> usize;
    fn cols(&self) -> usize;
    fn value(&self, i: usize, pos: usize) -> f32;

    fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        for (e, o) in out.iter_mut().enumerate().take(self.cols()) {
            let (b, j) = (e / 32, e % 32);
            *o = self.value(at(self.chunks(), r, b / 2), slot(b % 2, j));
        }
    }

    fn dot_scalar(&self, r: usize, a: &QActs) -> f32 {
        let mut sum = 0f32;
        for c in 0..self.chunks() {
            let i = at(self.chunks(), r, c);
            for pos in 0..64 {
                sum += self.value(i, pos) * f32::from(a.quants[c].0[pos] as i8) * a.scales[c].0[pos / 4];
            }
        }
        sum
    }
}

macro_rules! slots {
    ($($matrix:ty),*) => {$(
        impl Slots for $matrix {
            fn chunks(&self) -> usize {
                self.chunks
            }
            fn cols(&self) -> usize {
                self.cols
            }
            fn value(&self, i: usize, pos: usize) -> f32 {
                <$matrix>::value(self, i, pos)
            }
        }
    )*};
}

slots!(Q4KMatrix, Q6KMatrix);
