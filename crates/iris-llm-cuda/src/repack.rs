//! GGUF's weight blocks as the kernels read them: each block padded to a multiple of 4 bytes,
//! so every field is read with an aligned 32-bit load (GGUF packs Q8_0 in 34 bytes, Q6_K in 210,
//! which leave most blocks unaligned). The kernels' `deq<T>` (kernels.cu) reads these layouts.

use candle_core::quantized::GgmlDType;

/// A weight type the kernels read: its kernels' suffix, GGUF's block (values, bytes) and the
/// padded block's bytes, and where GGUF's bytes go in it (`moves`: (from, to, length)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightType {
    pub suffix: &'static str,
    /// The kernels' number for it (kernels.cu's T_*).
    pub id: i32,
    pub block_values: usize,
    pub gguf_bytes: usize,
    pub padded_bytes: usize,
    moves: &'static [(usize, usize, usize)],
}

const fn whole(suffix: &'static str, id: i32, block_values: usize, bytes: usize) -> WeightType {
    WeightType { suffix, id, block_values, gguf_bytes: bytes, padded_bytes: bytes, moves: &[] }
}

pub const F32: WeightType = whole("f32", 0, 1, 4);
pub const F16: WeightType = whole("f16", 1, 1, 2);
pub const BF16: WeightType = whole("bf16", 10, 1, 2);
pub const Q4_1: WeightType = whole("q4_1", 3, 32, 20);
pub const Q5_1: WeightType = whole("q5_1", 5, 32, 24);
pub const Q4_K: WeightType = whole("q4_k", 7, 256, 144);
pub const Q5_K: WeightType = whole("q5_k", 8, 256, 176);
/// d, then 2 bytes of padding before the nibbles.
pub const Q4_0: WeightType =
    WeightType { suffix: "q4_0", id: 2, block_values: 32, gguf_bytes: 18, padded_bytes: 20, moves: &[(0, 0, 2), (2, 4, 16)] };
/// d, padding, then the fifth bits and the nibbles.
pub const Q5_0: WeightType =
    WeightType { suffix: "q5_0", id: 4, block_values: 32, gguf_bytes: 22, padded_bytes: 24, moves: &[(0, 0, 2), (2, 4, 20)] };
/// d, padding, then the 32 bytes.
pub const Q8_0: WeightType =
    WeightType { suffix: "q8_0", id: 6, block_values: 32, gguf_bytes: 34, padded_bytes: 36, moves: &[(0, 0, 2), (2, 4, 32)] };
/// GGUF's order (low nibbles, high bits, scales, d), 2 bytes of padding at the end.
pub const Q6_K: WeightType =
    WeightType { suffix: "q6_k", id: 9, block_values: 256, gguf_bytes: 210, padded_bytes: 212, moves: &[(0, 0, 210)] };

pub const ALL: [WeightType; 11] = [F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K];

impl WeightType {
    pub fn of(dtype: GgmlDType) -> Option<Self> {
        Some(match dtype {
            GgmlDType::F32 => F32,
            GgmlDType::F16 => F16,
            GgmlDType::BF16 => BF16,
            GgmlDType::Q4_0 => Q4_0,
            GgmlDType::Q4_1 => Q4_1,
            GgmlDType::Q5_0 => Q5_0,
            GgmlDType::Q5_1 => Q5_1,
            GgmlDType::Q8_0 => Q8_0,
            GgmlDType::Q4K => Q4_K,
            GgmlDType::Q5K => Q5_K,
            GgmlDType::Q6K => Q6_K,
            _ => return None,
        })
    }

    /// Bytes of a padded row of `cols` values (`cols` a multiple of the block).
    pub fn row_bytes(&self, cols: usize) -> usize {
        cols / self.block_values * self.padded_bytes
    }

    /// GGUF's bytes of a matrix, block by block into the padded layout.
    pub fn pad(&self, gguf: &[u8]) -> Vec<u8> {
        if self.moves.is_empty() {
            return gguf.to_vec();
        }
        let blocks = gguf.len() / self.gguf_bytes;
        let mut out = vec![0u8; blocks * self.padded_bytes];
        for (from, to) in gguf.chunks_exact(self.gguf_bytes).zip(out.chunks_exact_mut(self.padded_bytes)) {
            for &(src, dst, len) in self.moves {
                to[dst..dst + len].copy_from_slice(&from[src..src + len]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_every_byte_and_aligns_the_fields() {
        for t in ALL {
            // Rows are whole blocks of at least 32 values (F16's "block" is one value).
            assert_eq!(t.row_bytes(256) % 4, 0, "{}", t.suffix);
            assert!(t.block_values == 1 || t.padded_bytes % 4 == 0, "{}", t.suffix);
            assert!(t.padded_bytes >= t.gguf_bytes);
            let gguf: Vec<u8> = (0..t.gguf_bytes * 3).map(|i| (i % 251 + 1) as u8).collect();
            let padded = t.pad(&gguf);
            assert_eq!(padded.len(), t.padded_bytes * 3);
            let mut kept: Vec<u8> = padded.iter().copied().filter(|b| *b != 0).collect();
            let mut all = gguf.clone();
            kept.sort();
            all.sort();
            assert_eq!(kept, all, "{}", t.suffix);
        }
        assert_eq!(
            &Q8_0.pad(&[
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
                34
            ])[..6],
            &[1, 2, 0, 0, 3, 4]
        );
    }
}
