//! The weight and activation formats of the kernels: GGUF's Q8_0 (blocks of 32 int8 with one
//! f16 scale), repacked at load so that a 64-byte load holds two blocks interleaved four bytes at
//! a time. A 32-bit lane of a SIMD dot product then belongs to one block (even lanes to the
//! first, odd lanes to the second), so scales apply lane-wise and a row needs one horizontal sum
//! at its end, not one per block. Rows are stored in groups of four, chunk by chunk
//! (`[chunk 0 of rows 0..4][chunk 1 of rows 0..4]…`), so the kernels, which work on four rows
//! at once, read memory strictly in order. Weight bytes are stored offset by 128 (unsigned),
//! the form AVX-512 VNNI's `vpdpbusd` takes; the activation side carries the correction.

use half::f16;

pub const QK: usize = 32;
/// GGUF Q8_0 block: f16 scale then 32 int8.
pub const Q8_0_BLOCK_BYTES: usize = 34;
/// Rows per group.
pub const GROUP: usize = 4;

#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct Chunk(pub [u8; 64]);

#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct I32x16(pub [i32; 16]);

#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct F32x16(pub [f32; 16]);

/// Byte `j` of block `half` (0 or 1) sits at this position of its chunk.
#[inline]
pub(crate) fn slot(half: usize, j: usize) -> usize {
    (j / 4) * 8 + half * 4 + j % 4
}

/// Rows of Q8_0 weights in the kernels' layout.
pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    /// 64-byte chunks per row (two blocks each; a last odd block is padded with zeros).
    pub chunks: usize,
    /// Rows rounded up to whole groups (the padding rows are zero).
    pub(crate) quants: Vec<Chunk>,
    /// Per chunk, its two f16 scales (first block in the low half), in the same order.
    pub(crate) scales: Vec<u32>,
}

/// Where chunk `c` of row `r` is stored.
#[inline]
pub(crate) fn at(chunks: usize, r: usize, c: usize) -> usize {
    ((r / GROUP) * chunks + c) * GROUP + r % GROUP
}

impl Q8Matrix {
    /// From GGUF Q8_0 data: `rows` rows of `cols` values (`cols` a multiple of 32).
    pub fn from_q8_0(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        Self::from_blocks(raw, rows, cols, Q8_0_BLOCK_BYTES, |b| {
            let mut q = [0i8; QK];
            q.iter_mut().zip(&b[2..]).for_each(|(q, v)| *q = *v as i8);
            q
        })
    }

    /// From GGUF Q4_0 data (`d·(q − 8)`, q of 4 bits): exactly, as int8 with the same scale.
    pub fn from_q4_0(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        Self::from_blocks(raw, rows, cols, 18, |b| {
            let mut q = [0i8; QK];
            for j in 0..16 {
                q[j] = (b[2 + j] & 0x0F) as i8 - 8;
                q[j + 16] = (b[2 + j] >> 4) as i8 - 8;
            }
            q
        })
    }

    /// From GGUF Q5_0 data (`d·(q − 16)`, q of 5 bits, the fifth in a 32-bit mask): exactly.
    pub fn from_q5_0(raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        Self::from_blocks(raw, rows, cols, 22, |b| {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let mut q = [0i8; QK];
            for j in 0..16 {
                let hi0 = ((qh >> j) & 1) << 4;
                let hi1 = ((qh >> (j + 16)) & 1) << 4;
                q[j] = ((b[6 + j] & 0x0F) as u32 | hi0) as i8 - 16;
                q[j + 16] = ((b[6 + j] >> 4) as u32 | hi1) as i8 - 16;
            }
            q
        })
    }

    /// From GGUF Q4_1 data (`d·q + m`, q of 4 bits): the `d·q` part exactly as int8 with the
    /// same scale, and each block's minimum `m` (applied through the activations' block sums).
    pub fn from_q4_1(raw: &[u8], rows: usize, cols: usize) -> Option<(Self, Vec<f32>)> {
        let m = Self::from_blocks(raw, rows, cols, 20, |b| {
            let mut q = [0i8; QK];
            for j in 0..16 {
                q[j] = (b[4 + j] & 0x0F) as i8;
                q[j + 16] = (b[4 + j] >> 4) as i8;
            }
            q
        })?;
        Some((m, mins(raw, 20)))
    }

    /// From GGUF Q5_1 data (`d·q + m`, q of 5 bits, the fifth in a 32-bit mask), as Q4_1.
    pub fn from_q5_1(raw: &[u8], rows: usize, cols: usize) -> Option<(Self, Vec<f32>)> {
        let m = Self::from_blocks(raw, rows, cols, 24, |b| {
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let mut q = [0i8; QK];
            for j in 0..16 {
                q[j] = ((b[8 + j] & 0x0F) as u32 | (((qh >> j) & 1) << 4)) as i8;
                q[j + 16] = ((b[8 + j] >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4)) as i8;
            }
            q
        })?;
        Some((m, mins(raw, 24)))
    }

    /// Blocks of `block_bytes`, each an f16 scale first, whose values `values` gives as int8.
    fn from_blocks(raw: &[u8], rows: usize, cols: usize, block_bytes: usize, values: impl Fn(&[u8]) -> [i8; QK]) -> Option<Self> {
        if cols % QK != 0 || raw.len() != rows * cols / QK * block_bytes {
            return None;
        }
        let blocks = cols / QK;
        let chunks = blocks.div_ceil(2);
        let stored = rows.div_ceil(GROUP) * GROUP * chunks;
        let mut m = Self { rows, cols, chunks, quants: vec![Chunk([128; 64]); stored], scales: vec![0; stored] };
        for r in 0..rows {
            for b in 0..blocks {
                let block = &raw[(r * blocks + b) * block_bytes..][..block_bytes];
                let (c, half) = (at(chunks, r, b / 2), b % 2);
                for (j, q) in values(block).iter().enumerate() {
                    m.quants[c].0[slot(half, j)] = (*q as u8) ^ 0x80;
                }
                m.scales[c] |= u32::from(u16::from_le_bytes([block[0], block[1]])) << (16 * half);
            }
        }
        Some(m)
    }

    /// Row `r` as f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate().take(self.cols) {
            let (b, j) = (i / QK, i % QK);
            let c = at(self.chunks, r, b / 2);
            let q = (self.quants[c].0[slot(b % 2, j)] ^ 0x80) as i8;
            *o = f32::from(q) * scale(self.scales[c], b % 2);
        }
    }
}

/// The f16 minimum after each block's f16 scale (Q4_1, Q5_1), row by row.
fn mins(raw: &[u8], block_bytes: usize) -> Vec<f32> {
    raw.chunks_exact(block_bytes).map(|b| f16::from_le_bytes([b[2], b[3]]).to_f32()).collect()
}

#[inline]
pub(crate) fn scale(pair: u32, half: usize) -> f32 {
    f16::from_bits((pair >> (16 * half)) as u16).to_f32()
}

/// llama.cpp's Q8_0 rounding: scale amax/127 kept as f16, values rounded half to even.
fn quantize_block(x: &[f32]) -> (u16, [i8; QK]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut q = [0i8; QK];
    for (q, v) in q.iter_mut().zip(x) {
        // Round half to even (the SIMD rounding llama.cpp uses) without a libm call: adding
        // 1.5·2²³ leaves no fraction bits, so the FPU rounds in its default mode.
        *q = ((v * id + 12_582_912.0) - 12_582_912.0) as i8;
    }
    (f16::from_f32(d).to_bits(), q)
}

/// How an activation vector is quantised: as llama.cpp does for the weights it meets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ActKind {
    /// Blocks of 32 with an f16 scale (for Q8_0, Q5_0, Q4_0 weights).
    #[default]
    Q8_0,
    /// Blocks of 256 with an f32 scale (llama.cpp's Q8_K, for the K-quants).
    Q8K,
    /// Rounded to f16 (for F16 weights).
    F16,
    /// As Q8_0, with each block's sum (llama.cpp's Q8_1, for Q4_1 and Q5_1 weights).
    Q8_1,
}

/// Every kind, in the order of their discriminants (`kind as usize` indexes by kind).
pub const ACT_KINDS: [ActKind; 4] = [ActKind::Q8_0, ActKind::Q8K, ActKind::F16, ActKind::Q8_1];

/// One activation vector quantised in the weights' layout, with what the kernels need. Per
/// 32-bit lane (four values): the scale, the sum of the four quants times -128 (the weights'
/// byte offset, taken back out by starting `vpdpbusd` from it), and that sum times the scale
/// (for weights with a minimum, Q4_K).
#[derive(Default)]
pub struct QActs {
    pub(crate) len: usize,
    pub(crate) kind: ActKind,
    /// Signed int8 (as bytes), interleaved as the weights.
    pub(crate) quants: Vec<Chunk>,
    pub(crate) init: Vec<I32x16>,
    pub(crate) scales: Vec<F32x16>,
    pub(crate) sums: Vec<F32x16>,
    /// Per block of 32 (Q8_1 only): the scale times the sum of the quants, rounded to f16, as
    /// llama.cpp's Q8_1 keeps it for weights with a minimum (Q4_1, Q5_1).
    pub(crate) block_sums: Vec<f32>,
    /// The values rounded to f16 (F16 only), kept widened back to f32 (exactly), so the AVX2
    /// kernel's tiles of tokens are not converted once per row.
    pub(crate) halves: Vec<f32>,
    /// Per 256 values (Q8_K only): each block of 32's sum of quants, as llama.cpp's `bsums`
    /// give them, for the minimums of Q4_K.
    pub(crate) block_quant_sums: Vec<[i16; 8]>,
    /// Per 256 values (Q8_K only): the sums of quants of each 16 (llama.cpp's `bsums`), for
    /// the −32 of Q6_K's values.
    pub(crate) sixteen_sums: Vec<[i16; 16]>,
}

impl QActs {
    /// As Q8_0 (blocks of 32).
    pub fn quantize(&mut self, x: &[f32]) {
        self.fill(x, ActKind::Q8_0, QK, |block, out| {
            let (d, q) = quantize_block(block);
            out.copy_from_slice(&q);
            f16::from_bits(d).to_f32()
        });
    }

    /// As Q8_0, plus each block's sum: only for the matrices with a minimum, so the others'
    /// quantisation does not pay for it.
    fn quantize_q8_1(&mut self, x: &[f32]) {
        self.quantize(x);
        self.kind = ActKind::Q8_1;
        self.block_sums.clear();
        for (b, block) in x.chunks(QK).enumerate() {
            // llama.cpp multiplies the sum by the scale before it is rounded to f16.
            let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let sum: i32 = (0..QK).map(|j| i32::from(self.quants[b / 2].0[slot(b % 2, j)] as i8)).sum();
            self.block_sums.push(f16::from_f32(sum as f32 * d).to_f32());
        }
    }

    /// As llama.cpp's Q8_K (blocks of 256; the length must be a multiple of 256).
    pub fn quantize_k(&mut self, x: &[f32]) {
        self.quantize_k_blocks(x);
        // A lane holds four values of one block: lanes of even index the chunk's first block.
        self.block_quant_sums.clear();
        self.block_quant_sums.extend(self.init.chunks(4).map(|chunks| {
            std::array::from_fn(|j| {
                let lanes = &chunks.get(j / 2).map_or([0; 16], |c| c.0);
                (lanes.iter().skip(j % 2).step_by(2).sum::<i32>() / -128) as i16
            })
        }));
        // Sixteen values of a block fill every other lane of one half of its chunk.
        self.sixteen_sums.clear();
        self.sixteen_sums.extend(self.init.chunks(4).map(|chunks| {
            std::array::from_fn(|g| {
                let (lanes, block, second) = (chunks.get(g / 4).map_or([0; 16], |c| c.0), (g % 4) / 2, g % 2);
                (lanes.iter().skip(8 * second + block).step_by(2).take(4).sum::<i32>() / -128) as i16
            })
        }));
    }

    fn quantize_k_blocks(&mut self, x: &[f32]) {
        self.fill(x, ActKind::Q8K, 256, |block, out| {
            let (mut max, mut amax) = (0f32, 0f32);
            for v in block {
                if v.abs() > amax {
                    (amax, max) = (v.abs(), *v);
                }
            }
            if amax == 0.0 {
                out.fill(0);
                return 0.0;
            }
            let iscale = -127.0 / max;
            for (o, v) in out.iter_mut().zip(block) {
                *o = ((iscale * v + 12_582_912.0) - 12_582_912.0).min(127.0) as i8;
            }
            1.0 / iscale
        });
    }

    pub fn quantize_as(&mut self, x: &[f32], kind: ActKind) {
        match kind {
            ActKind::Q8_0 => self.quantize(x),
            ActKind::Q8K => self.quantize_k(x),
            ActKind::Q8_1 => self.quantize_q8_1(x),
            ActKind::F16 => {
                (self.len, self.kind) = (x.len(), kind);
                self.halves.clear();
                self.halves.extend(x.iter().map(|v| f16::from_f32(*v).to_f32()));
            }
        }
    }

    /// `quantize` writes a block's values and returns its scale (no allocation per block: a
    /// pre-fill quantises thousands of them per layer).
    fn fill(&mut self, x: &[f32], kind: ActKind, block: usize, quantize: impl Fn(&[f32], &mut [i8]) -> f32) {
        let chunks = x.len().div_ceil(2 * QK);
        (self.len, self.kind) = (x.len(), kind);
        self.quants.clear();
        self.quants.resize(chunks, Chunk([0; 64]));
        self.init.clear();
        self.init.resize(chunks, I32x16([0; 16]));
        self.scales.clear();
        self.scales.resize(chunks, F32x16([0.0; 16]));
        self.sums.clear();
        self.sums.resize(chunks, F32x16([0.0; 16]));
        let (mut padded, mut q) = ([0f32; 256], [0i8; 256]);
        debug_assert!(block <= 256);
        for (i, part) in x.chunks(block).enumerate() {
            let (padded, q) = (&mut padded[..block], &mut q[..block]);
            padded.fill(0.0);
            padded[..part.len()].copy_from_slice(part);
            let d = quantize(padded, q);
            // Four values at a time: they share a lane of the layout (`slot`).
            for (g, four) in q.chunks_exact(4).enumerate() {
                let (b, j) = (i * block / QK + 4 * g / QK, (4 * g) % QK);
                let (c, half) = (b / 2, b % 2);
                if c >= chunks {
                    break;
                }
                let pos = slot(half, j);
                for (k, v) in four.iter().enumerate() {
                    self.quants[c].0[pos + k] = *v as u8;
                }
                self.init[c].0[pos / 4] = -128 * four.iter().map(|v| i32::from(*v)).sum::<i32>();
                self.scales[c].0[pos / 4] = d;
            }
        }
        for c in 0..chunks {
            for lane in 0..16 {
                self.sums[c].0[lane] = self.scales[c].0[lane] * (self.init[c].0[lane] / -128) as f32;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The values the quants stand for (for tests).
    pub fn dequantize(&self) -> Vec<f32> {
        if self.kind == ActKind::F16 {
            return self.halves.clone();
        }
        (0..self.len)
            .map(|e| {
                let (b, j) = (e / QK, e % QK);
                let pos = slot(b % 2, j);
                f32::from(self.quants[b / 2].0[pos] as i8) * self.scales[b / 2].0[pos / 4]
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `out[t * stride + r] += Σ_b mins[r][b] · acts[t].block_sums[b]`: the minimum's share of a
/// Q4_1 or Q5_1 product, for the rows in `rows`.
///
/// # Safety
/// As [`crate::Matrix::matmul`].
pub unsafe fn add_mins(mins: &[f32], blocks: usize, rows: std::ops::Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    for r in rows {
        for (t, a) in acts.iter().enumerate() {
            *out.add(t * stride + r) += min_share(mins, blocks, r, a);
        }
    }
}

/// Row `r`'s minimums (`blocks` per row) times the activation's block sums.
pub fn min_share(mins: &[f32], blocks: usize, r: usize, a: &QActs) -> f32 {
    mins[r * blocks..(r + 1) * blocks].iter().zip(&a.block_sums).map(|(m, s)| m * s).sum()
}

/// Plain Rust: the reference the SIMD kernels are tested against, and the path on other CPUs.
pub fn dot_scalar(w: &Q8Matrix, row: usize, a: &QActs) -> f32 {
    let mut sum = 0f32;
    for c in 0..w.chunks {
        let i = at(w.chunks, row, c);
        let (wq, aq) = (&w.quants[i].0, &a.quants[c].0);
        let mut isum = [0i32; 2];
        for i in 0..64 {
            isum[(i / 4) % 2] += i32::from((wq[i] ^ 0x80) as i8) * i32::from(aq[i] as i8);
        }
        for (half, s) in isum.iter().enumerate() {
            sum += *s as f32 * scale(w.scales[i], half) * a.scales[c].0[half];
        }
    }
    sum
}
