//! Pre-fill's K-quant products on AMX (Intel Sapphire Rapids and later). `tdpbusd` multiplies a
//! tile of 16 rows × 32 weight nibbles by 32 activation bytes of 16 tokens into 16 × 16 int32
//! sums: 8192 products in one instruction, where `vpdpbusd` makes 64. A tile product covers one
//! block of values with one scale (32 for Q4_K, 16 for Q6_K); the sums go through memory into
//! AVX-512 registers, where they meet the integer scales as the AVX2 kernels' do (llama.cpp's
//! arithmetic): per row and 256 values, the same exact integers, then the same float operations
//! in the same order, so a pre-fill on AMX gives bit for bit the logits of one on AVX-512 or of
//! single steps. That, not the tiles, is the bound: three vector operations per row, block and
//! 16 tokens. Decode (one token) stays on the AVX-512 kernels: it waits on memory, and a tile
//! would be 15/16 padding.
//!
//! Rows go 16 at a time: each super-block's weights are unpacked once into tile order and meet
//! every token tile of a group (as many as keep their activations in L2), the next tile's
//! products issued before this one's sums are scaled, so the tile unit and the vector units
//! overlap.
//!
//! Rust's AMX intrinsics are unstable (`x86_amx_intrinsics`), so the tile instructions are
//! inline assembly. Linux gives a process the tiles' 8 KB of state only once it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), which [`available`] does.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use crate::kquant::{Q4KMatrix, Q6KMatrix};
use crate::q8::{at, QActs};

/// Rows and tokens of a tile.
const TILE: usize = 16;
/// Fewer tokens go to the AVX-512 kernels.
pub const MIN_TOKENS: usize = 4;
/// The activations of one group of token tiles stay in L2 while every row block passes them.
const GROUP_BYTES: usize = 1 << 20;

/// Whether this CPU has AMX-INT8 and the kernel lets this process use the tiles.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
        let leaf7 = __cpuid_count(7, 0);
        let cpu = (leaf7.edx >> 24) & 3 == 3 && is_x86_feature_detected!("avx512bw");
        cpu && cfg!(target_os = "linux") && request_tiles()
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; for every thread of the process.
fn request_tiles() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a system call that only grants a permission; rcx and r11 are clobbered by it.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM,
             in("rsi") XFEATURE_XTILEDATA, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Tile([u8; 1024]);

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Block([[f32; TILE]; TILE]);

/// Per token tile and 256 values: the activation scale of each token, and its eight block sums
/// (Q4_K's minimums meet them), as 16-bit pairs for `vpdpwssd`.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Meta {
    scale: [f32; TILE],
    block_sums: [[u32; TILE]; 4],
}

/// A thread's buffers, kept between products (a pre-fill makes seven per layer).
#[derive(Default)]
struct Scratch {
    /// Per token tile of the group in hand and chunk: the chunk's sixteen 4-byte lanes × 16
    /// tokens (transposed).
    acts: Vec<Tile>,
    meta: Vec<Meta>,
    /// A row block's weights for one super-block: per chunk, 16 rows × 64 bytes in tile order.
    weights: [Tile; 4],
    /// The same rows' integer scale per block, their d (and dmin), and Q4_K's minimums as
    /// 16-bit pairs.
    scales: [[i32; TILE]; 16],
    d: [[f32; TILE]; 2],
    mins: [[u32; TILE]; 4],
    /// Two sets (one per token tile in flight) of a super-block's tile sums.
    sums: Vec<Tile>,
    /// Per token tile of a group: the sums, and (Q4_K) the minimums' sums.
    acc: Vec<[Block; 2]>,
}

impl Default for Tile {
    fn default() -> Self {
        Tile([0; 1024])
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// A K-quant format's part: how a super-block's weights become tiles, and which products they
/// take part in.
trait Format {
    /// Tile products per super-block (one per block with its own scale).
    const BLOCKS: usize;
    const MINS: bool;
    /// Bytes per row and rows of tmm0–tmm7.
    const SHAPES: [(u16, u8); 8];
    fn chunks(&self) -> usize;
    /// Rows `r0..r0 + live` of super-block `sb` into `s.weights`, `s.scales`, `s.d` (and
    /// `s.mins`); missing rows are zero.
    unsafe fn unpack(&self, r0: usize, live: usize, sb: usize, s: &mut Scratch);
    /// The super-block's products for the token tile whose chunks start at `first`.
    unsafe fn products(s: &mut Scratch, first: usize, set: usize);
}

/// `out[t * stride + r] = row r · acts[t]` for Q4_K on AMX; the caller has checked [`available`].
///
/// # Safety
/// As `Matrix::matmul`: `out` valid for those writes, no other thread touching them.
pub unsafe fn matmul_q4k_amx(w: &Q4KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    SCRATCH.with(|s| run(w, rows, acts, out, stride, &mut s.borrow_mut()));
}

/// As [`matmul_q4k_amx`], for Q6_K.
///
/// # Safety
/// As `Matrix::matmul`.
pub unsafe fn matmul_q6k_amx(w: &Q6KMatrix, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize) {
    SCRATCH.with(|s| run(w, rows, acts, out, stride, &mut s.borrow_mut()));
}

#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn run<F: Format>(w: &F, rows: Range<usize>, acts: &[QActs], out: *mut f32, stride: usize, s: &mut Scratch) {
    let (chunks, n) = (w.chunks(), acts.len());
    let (supers, tiles) = (chunks / 4, n.div_ceil(TILE));
    s.sums.resize(2 * F::BLOCKS, Tile::default());
    let group = (GROUP_BYTES / (chunks * 1024)).clamp(1, tiles);
    s.acc.resize(group, [Block([[0.0; TILE]; TILE]); 2]);
    configure(F::SHAPES);
    for g0 in (0..tiles).step_by(group) {
        let g1 = (g0 + group).min(tiles);
        // Only this group's activations are transposed: the buffer stays within GROUP_BYTES
        // however long the prompt.
        prepare_acts(&acts[g0 * TILE..(g1 * TILE).min(n)], chunks, s);
        for r0 in rows.clone().step_by(TILE) {
            let live = (rows.end - r0).min(TILE);
            s.acc[..g1 - g0].iter_mut().for_each(|b| *b = [Block([[0.0; TILE]; TILE]); 2]);
            for sb in 0..supers {
                w.unpack(r0, live, sb, s);
                F::products(s, 4 * sb, 0);
                for tile in 0..g1 - g0 {
                    let set = tile % 2;
                    if g0 + tile + 1 < g1 {
                        F::products(s, (tile + 1) * chunks + 4 * sb, 1 - set);
                    }
                    super_block::<F>(s, tile * supers + sb, set, tile);
                }
            }
            for (tile, [acc, acc_min]) in s.acc[..g1 - g0].iter().enumerate() {
                let t0 = (g0 + tile) * TILE;
                for m in 0..live {
                    for j in 0..(n - t0).min(TILE) {
                        // The minimums' total is taken off at the end, in llama.cpp's order.
                        *out.add((t0 + j) * stride + r0 + m) = acc.0[m][j] - acc_min.0[m][j];
                    }
                }
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}

/// A super-block's sums, per row and token: `Σ sc · sum` over its blocks as an exact integer,
/// and (Q4_K) `Σ m · block sum`, each converted once and added in with d (or dmin) times the
/// token's scale, as `kquant::q4k_super_block` does.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn super_block<F: Format>(s: &mut Scratch, meta: usize, set: usize, slot: usize) {
    let meta = &s.meta[meta];
    let scale = _mm512_load_ps(meta.scale.as_ptr());
    let mut total = [_mm512_setzero_si512(); TILE];
    for b in 0..F::BLOCKS {
        let sums = s.sums[set * F::BLOCKS + b].0.as_ptr() as *const __m512i;
        for (m, total) in total.iter_mut().enumerate() {
            let v = _mm512_mullo_epi32(_mm512_load_si512(sums.add(m) as *const _), _mm512_set1_epi32(s.scales[b][m]));
            *total = _mm512_add_epi32(*total, v);
        }
    }
    let mut mins = [_mm512_setzero_si512(); TILE];
    if F::MINS {
        for p in 0..4 {
            let block_sums = _mm512_load_si512(meta.block_sums[p].as_ptr() as *const _);
            for (m, mins) in mins.iter_mut().enumerate() {
                *mins = _mm512_dpwssd_epi32(*mins, _mm512_set1_epi32(s.mins[p][m] as i32), block_sums);
            }
        }
    }
    let [acc, acc_min] = &mut s.acc[slot];
    for m in 0..TILE {
        let (a, d) = (acc.0[m].as_mut_ptr(), _mm512_mul_ps(_mm512_set1_ps(s.d[0][m]), scale));
        _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(total[m]), d, _mm512_load_ps(a)));
        if F::MINS {
            let (a, dmin) = (acc_min.0[m].as_mut_ptr(), _mm512_mul_ps(_mm512_set1_ps(s.d[1][m]), scale));
            _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins[m]), dmin, _mm512_load_ps(a)));
        }
    }
}

unsafe fn configure(shapes: [(u16, u8); 8]) {
    let mut cfg = [0u8; 64];
    cfg[0] = 1;
    for (t, (bytes, rows)) in shapes.into_iter().enumerate() {
        cfg[16 + 2 * t..18 + 2 * t].copy_from_slice(&bytes.to_le_bytes());
        cfg[48 + t] = rows;
    }
    asm!("ldtilecfg [{}]", in(reg) cfg.as_ptr(), options(nostack, readonly));
}

/// The chunks of a group's token tiles transposed, so a block's activations are one tile load
/// (lane `l` of a chunk is row `l`: a block's lanes are every other one, `q8::slot`); and each
/// token's scale, and its block sums as 16-bit pairs.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn prepare_acts(acts: &[QActs], chunks: usize, s: &mut Scratch) {
    let (n, supers) = (acts.len(), chunks / 4);
    let tiles = n.div_ceil(TILE);
    s.acts.clear();
    s.acts.resize(tiles * chunks, Tile::default());
    s.meta.clear();
    s.meta.resize(tiles * supers, Meta { scale: [0.0; TILE], block_sums: [[0; TILE]; 4] });
    for (t, a) in acts.iter().enumerate() {
        let (tile, j) = (t / TILE, t % TILE);
        for c in 0..chunks {
            let lanes = a.quants[c].0.as_ptr() as *const u32;
            let dst = s.acts[tile * chunks + c].0.as_mut_ptr() as *mut u32;
            for l in 0..16 {
                *dst.add(l * TILE + j) = *lanes.add(l);
            }
        }
        for sb in 0..supers {
            let meta = &mut s.meta[tile * supers + sb];
            // Q8_K: one scale per 256 values, in every lane of its chunks.
            meta.scale[j] = a.scales[4 * sb].0[0];
            let sums = a.block_quant_sums[sb];
            for p in 0..4 {
                meta.block_sums[p][j] = u32::from(sums[2 * p] as u16) | (u32::from(sums[2 * p + 1] as u16) << 16);
            }
        }
    }
}

/// A chunk's even 4-byte lanes (its first block, `q8::slot`), then its odd ones.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn blocks_apart(v: __m512i) -> __m512i {
    _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15), v)
}

/// tmm0, tmm1: two blocks' weights; tmm2, tmm3: their activations; tmm4–tmm7: sums, two
/// tiles per pair of blocks, alternating so one pair's store overlaps the next pair's product.
/// `a` and `x` are the pairs' weight and activation addresses, `out` their sums'.
#[inline(always)]
unsafe fn pair(op_first: bool, signed: bool, a: [*const u8; 2], x: [*const u8; 2], out: [*mut u8; 2]) {
    macro_rules! pair {
        ($op:literal, $c0:literal, $c1:literal) => {
            asm!(
                "tileloadd tmm0, [{a0} + {s64}*1]",
                "tileloadd tmm1, [{a1} + {s64}*1]",
                "tileloadd tmm2, [{x0} + {s128}*1]",
                "tileloadd tmm3, [{x1} + {s128}*1]",
                concat!("tilezero ", $c0),
                concat!("tilezero ", $c1),
                concat!($op, " ", $c0, ", tmm0, tmm2"),
                concat!($op, " ", $c1, ", tmm1, tmm3"),
                concat!("tilestored [{o0} + {s64}*1], ", $c0),
                concat!("tilestored [{o1} + {s64}*1], ", $c1),
                a0 = in(reg) a[0], a1 = in(reg) a[1], x0 = in(reg) x[0], x1 = in(reg) x[1],
                o0 = in(reg) out[0], o1 = in(reg) out[1], s64 = in(reg) 64usize, s128 = in(reg) 128usize,
                options(nostack),
            )
        };
    }
    match (signed, op_first) {
        (false, true) => pair!("tdpbusd", "tmm4", "tmm5"),
        (false, false) => pair!("tdpbusd", "tmm6", "tmm7"),
        (true, true) => pair!("tdpbssd", "tmm4", "tmm5"),
        (true, false) => pair!("tdpbssd", "tmm6", "tmm7"),
    }
}

impl Format for Q4KMatrix {
    const BLOCKS: usize = 8;
    const MINS: bool = true;
    /// Weights 16 rows × 32 nibbles as bytes; activations 8 rows of four bytes × 16 tokens.
    const SHAPES: [(u16, u8); 8] = [(32, 16), (32, 16), (64, 8), (64, 8), (64, 16), (64, 16), (64, 16), (64, 16)];

    fn chunks(&self) -> usize {
        self.chunks
    }

    /// Per chunk and row, 64 bytes: the first block's 32 values, then the second's, each in
    /// the order of its activation lanes (low nibbles are slots 0–31, high ones 32–63).
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    unsafe fn unpack(&self, r0: usize, live: usize, sb: usize, s: &mut Scratch) {
        let nibble = _mm256_set1_epi8(0x0F);
        for m in 0..TILE {
            let k = at(self.chunks / 4, r0 + m.min(live - 1), sb);
            let (d, mins) = if m < live { (self.super_d[k], self.super_mins[k]) } else { ([0.0; 2], [0; 8]) };
            (s.d[0][m], s.d[1][m]) = (d[0], d[1]);
            for p in 0..4 {
                s.mins[p][m] = u32::from(mins[2 * p]) | (u32::from(mins[2 * p + 1]) << 16);
            }
        }
        for q in 0..4 {
            let c = 4 * sb + q;
            let dst = s.weights[q].0.as_mut_ptr();
            for m in 0..TILE {
                let row = dst.add(64 * m) as *mut __m512i;
                if m >= live {
                    _mm512_store_si512(row as *mut _, _mm512_setzero_si512());
                    (s.scales[2 * q][m], s.scales[2 * q + 1][m]) = (0, 0);
                    continue;
                }
                let i = at(self.chunks, r0 + m, c);
                let packed = _mm256_load_si256(self.quants.as_ptr().add(i) as *const __m256i);
                let lo = _mm256_and_si256(packed, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), nibble);
                _mm512_store_si512(row as *mut _, blocks_apart(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)));
                // `int_scales` is `sa, sa, sb, sb`.
                let sc = self.int_scales[i];
                (s.scales[2 * q][m], s.scales[2 * q + 1][m]) = (i32::from(sc[0]), i32::from(sc[2]));
            }
        }
    }

    /// Block 2q + h: chunk q's weights at byte 32h, its activation lanes h, h + 2, … h + 14.
    unsafe fn products(s: &mut Scratch, first: usize, set: usize) {
        let sums = s.sums.as_mut_ptr().add(set * Self::BLOCKS);
        for q in 0..4 {
            let (a, x) = (s.weights[q].0.as_ptr(), s.acts[first + q].0.as_ptr());
            let out = [(*sums.add(2 * q)).0.as_mut_ptr(), (*sums.add(2 * q + 1)).0.as_mut_ptr()];
            pair(q % 2 == 0, false, [a, a.add(32)], [x, x.add(64)], out);
        }
    }
}

impl Format for Q6KMatrix {
    const BLOCKS: usize = 16;
    const MINS: bool = false;
    /// Weights 16 rows × 16 signed bytes; activations 4 rows of four bytes × 16 tokens.
    const SHAPES: [(u16, u8); 8] = [(16, 16), (16, 16), (64, 4), (64, 4), (64, 16), (64, 16), (64, 16), (64, 16)];

    fn chunks(&self) -> usize {
        self.chunks
    }

    /// Per chunk and row, 64 signed bytes (q − 32): values 0–15 of the first block, 16–31, then
    /// the second block's, each in the order of its activation lanes.
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    unsafe fn unpack(&self, r0: usize, live: usize, sb: usize, s: &mut Scratch) {
        let flip = _mm512_set1_epi8(-128);
        for m in 0..TILE {
            let k = at(self.chunks / 4, r0 + m.min(live - 1), sb);
            let (d, scales) = if m < live { (self.super_d[k], self.super_scales[k]) } else { (0.0, [0; 16]) };
            s.d[0][m] = d;
            scales.iter().enumerate().for_each(|(b, sc)| s.scales[b][m] = i32::from(*sc));
        }
        for q in 0..4 {
            let c = 4 * sb + q;
            let dst = s.weights[q].0.as_mut_ptr();
            for m in 0..TILE {
                let row = dst.add(64 * m) as *mut __m512i;
                if m >= live {
                    _mm512_store_si512(row as *mut _, _mm512_setzero_si512());
                    continue;
                }
                let i = at(self.chunks, r0 + m, c);
                let bytes = _mm512_load_si512(self.quants.as_ptr().add(i) as *const _);
                _mm512_store_si512(row as *mut _, blocks_apart(_mm512_xor_si512(bytes, flip)));
            }
        }
    }

    /// Block 4q + g (g = 2·half + part): chunk q's weights at byte 16g, its activation lanes
    /// 8·part + half, + 2, + 4, + 6.
    unsafe fn products(s: &mut Scratch, first: usize, set: usize) {
        let sums = s.sums.as_mut_ptr().add(set * Self::BLOCKS);
        for q in 0..4 {
            let (a, x) = (s.weights[q].0.as_ptr(), s.acts[first + q].0.as_ptr());
            for half in 0..2 {
                let g = 2 * half;
                let out = [(*sums.add(4 * q + g)).0.as_mut_ptr(), (*sums.add(4 * q + g + 1)).0.as_mut_ptr()];
                pair(half == 0, true, [a.add(16 * g), a.add(16 * g + 16)], [x.add(64 * half), x.add(64 * (8 + half))], out);
            }
        }
    }
}
