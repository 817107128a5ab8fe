//! Every kernel this CPU has computes the same products as the plain-Rust reference; the
//! reference computes the dot products of the dequantised values; the repacked formats
//! dequantise to what llama.cpp's `dequantize_row_*` gives for the same bytes; the pool covers
//! every index exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::quantized::GgmlDType;
use half::f16;
use iris_llm_cpu::pool::{share, Pool};
use iris_llm_cpu::q8::QActs;
use iris_llm_cpu::{Kernel, Matrix};

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// In [-1, 1), with an outlier now and then.
    fn value(&mut self) -> f32 {
        let v = (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        if self.next() % 97 == 0 {
            v * 8.0
        } else {
            v
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn half(&mut self, scale: f32) -> [u8; 2] {
        f16::from_f32(scale * (0.5 + (self.next() % 1000) as f32 / 1000.0)).to_le_bytes()
    }
}

/// GGUF bytes of a random matrix of `dtype`, and llama.cpp's dequantisation of them.
fn random(dtype: GgmlDType, rows: usize, cols: usize, rng: &mut Rng) -> (Vec<u8>, Vec<f32>) {
    let (mut raw, mut values) = (Vec::new(), Vec::new());
    let f = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    for _ in 0..rows * cols / dtype.block_size() {
        let start = raw.len();
        match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_0 => {
                raw.extend(rng.half(0.02));
                raw.extend(rng.bytes(dtype.type_size() - 2));
                let (d, b) = (f(&raw[start..]), &raw[start + 2..]);
                match dtype {
                    GgmlDType::Q8_0 => values.extend(b.iter().map(|q| d * f32::from(*q as i8))),
                    GgmlDType::Q4_0 => {
                        values.extend(b.iter().map(|q| d * (f32::from(q & 0x0F) - 8.0)));
                        values.extend(b.iter().map(|q| d * (f32::from(q >> 4) - 8.0)));
                    }
                    _ => {
                        let qh = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        let q = |j: usize, v: u8| f32::from(v) + 16.0 * ((qh >> j) & 1) as f32 - 16.0;
                        values.extend(b[4..].iter().enumerate().map(|(j, v)| d * q(j, v & 0x0F)));
                        values.extend(b[4..].iter().enumerate().map(|(j, v)| d * q(j + 16, v >> 4)));
                    }
                }
            }
            GgmlDType::Q4_1 | GgmlDType::Q5_1 => {
                raw.extend(rng.half(0.02));
                raw.extend(f16::from_f32(-0.3 * (rng.next() % 100) as f32 / 100.0).to_le_bytes());
                raw.extend(rng.bytes(dtype.type_size() - 4));
                let (d, m, b) = (f(&raw[start..]), f(&raw[start + 2..]), &raw[start + 4..]);
                if dtype == GgmlDType::Q4_1 {
                    values.extend(b.iter().map(|q| d * f32::from(q & 0x0F) + m));
                    values.extend(b.iter().map(|q| d * f32::from(q >> 4) + m));
                } else {
                    let qh = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let q = |j: usize, v: u8| f32::from(v) + 16.0 * ((qh >> j) & 1) as f32;
                    values.extend(b[4..].iter().enumerate().map(|(j, v)| d * q(j, v & 0x0F) + m));
                    values.extend(b[4..].iter().enumerate().map(|(j, v)| d * q(j + 16, v >> 4) + m));
                }
            }
            GgmlDType::F16 => {
                let v = f16::from_f32(rng.value() * 0.05);
                raw.extend(v.to_le_bytes());
                values.push(v.to_f32());
            }
            GgmlDType::Q4K => {
                raw.extend(rng.half(0.01));
                raw.extend(rng.half(0.01));
                raw.extend(rng.bytes(140));
                let b = &raw[start..];
                let (d, dmin, sc, qs) = (f(b), f(&b[2..]), &b[4..16], &b[16..]);
                let get = |j: usize| {
                    if j < 4 {
                        (sc[j] & 63, sc[j + 4] & 63)
                    } else {
                        ((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4), (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4))
                    }
                };
                for j in 0..4 {
                    let ((s1, m1), (s2, m2)) = (get(2 * j), get(2 * j + 1));
                    let q = &qs[32 * j..32 * j + 32];
                    values.extend(q.iter().map(|v| d * f32::from(s1) * f32::from(v & 0xF) - dmin * f32::from(m1)));
                    values.extend(q.iter().map(|v| d * f32::from(s2) * f32::from(v >> 4) - dmin * f32::from(m2)));
                }
            }
            GgmlDType::Q6K => {
                raw.extend(rng.bytes(192));
                raw.extend((0..16).map(|_| (rng.next() % 64) as u8));
                raw.extend(rng.half(0.002));
                let b = &raw[start..];
                let d = f(&b[208..]);
                let mut y = [0f32; 256];
                for n in 0..2 {
                    let (ql, qh, sc) = (&b[64 * n..], &b[128 + 32 * n..], &b[192 + 8 * n..]);
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                        for (k, q) in [q1, q2, q3, q4].into_iter().enumerate() {
                            y[128 * n + l + 32 * k] = d * f32::from(sc[is + 2 * k] as i8) * f32::from(q);
                        }
                    }
                }
                values.extend(y);
            }
            _ => unreachable!(),
        }
    }
    (raw, values)
}

fn kernels() -> Vec<Kernel> {
    let mut k = vec![Kernel::Scalar];
    match Kernel::detect() {
        Kernel::Amx => k.extend([Kernel::Avx2, Kernel::Avx512Vnni, Kernel::Amx]),
        Kernel::Avx512Vnni => k.extend([Kernel::Avx2, Kernel::Avx512Vnni]),
        Kernel::Avx2 => k.push(Kernel::Avx2),
        Kernel::NeonDot => k.extend([Kernel::Neon, Kernel::NeonDot]),
        Kernel::Neon => k.push(Kernel::Neon),
        Kernel::Scalar => {}
    }
    k
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

/// Tokens per product: the pre-fill kernels' tiles of four and two, and one left over.
const TOKENS: usize = 7;

#[test]
fn every_format_dequantises_as_llama_cpp_and_every_kernel_agrees() {
    let mut rng = Rng(0x1234_5678);
    let cases = [
        // Widths with an even and an odd number of blocks; rows in and out of whole groups.
        (GgmlDType::Q8_0, 8, 64),
        (GgmlDType::Q8_0, 7, 96),
        (GgmlDType::Q8_0, 13, 576),
        (GgmlDType::Q5_0, 6, 896),
        (GgmlDType::Q4_0, 5, 128),
        (GgmlDType::Q4_1, 7, 576),
        (GgmlDType::Q5_1, 6, 96),
        (GgmlDType::F16, 5, 576),
        (GgmlDType::Q4K, 9, 512),
        (GgmlDType::Q6K, 6, 768),
    ];
    for (dtype, rows, cols) in cases {
        let (raw, values) = random(dtype, rows, cols, &mut rng);
        let w = Matrix::from_gguf(dtype, &raw, rows, cols).unwrap();
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            w.dequantize_row(r, &mut row);
            assert_eq!(row, values[r * cols..(r + 1) * cols], "{dtype:?} row {r}");
        }
        let acts: Vec<QActs> = (0..TOKENS)
            .map(|_| {
                let x: Vec<f32> = (0..cols).map(|_| rng.value()).collect();
                let mut a = QActs::default();
                a.quantize_as(&x, w.act_kind());
                a
            })
            .collect();
        let expected: Vec<f64> = acts
            .iter()
            .flat_map(|a| {
                let x = a.dequantize();
                values
                    .chunks(cols)
                    .map(move |w| w.iter().zip(&x).map(|(w, x)| f64::from(*w) * f64::from(*x)).sum::<f64>())
                    .collect::<Vec<_>>()
            })
            .collect();
        // Q4_1 and Q5_1 meet the activations' block sums, which llama.cpp rounds to f16: allow
        // that rounding (a thousandth of the products' sizes) beside the usual.
        let with_min = matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1);
        let slack: Vec<f64> = acts
            .iter()
            .flat_map(|a| {
                let x = a.dequantize();
                values
                    .chunks(cols)
                    .map(move |w| w.iter().zip(&x).map(|(w, x)| f64::from((w * x).abs())).sum::<f64>() * 1e-3)
                    .collect::<Vec<_>>()
            })
            .collect();
        let close = |i: usize, got: f64| if with_min { (got - expected[i]).abs() <= slack[i] } else { close(got, expected[i]) };
        for (t, a) in acts.iter().enumerate() {
            for r in 0..rows {
                let e = expected[t * rows + r];
                assert!(close(t * rows + r, f64::from(w.dot_scalar(r, a))), "{dtype:?} scalar r{r}: {} vs {e}", w.dot_scalar(r, a));
            }
        }
        let mut results = Vec::new();
        for kernel in kernels() {
            if !Matrix::takes(dtype, kernel) && kernel != Kernel::Scalar {
                continue;
            }
            let mut out = vec![f32::NAN; TOKENS * rows];
            // In two parts, as two threads would take them.
            let mid = share(rows, 0, 2, 4).end;
            for part in [0..mid, mid..rows] {
                unsafe { w.matmul(kernel, part, &acts, out.as_mut_ptr(), rows) };
            }
            for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
                assert!(close(i, f64::from(*o)), "{dtype:?} {kernel:?} {rows}x{cols} [{i}]: {o} vs {e}");
            }
            results.push((kernel, out));
        }
        // The K-quants' AVX-512 kernels sum as their AVX2 kernels do: the same bits.
        let of = |k: Kernel| results.iter().find(|(kernel, _)| *kernel == k).map(|(_, out)| out);
        if let (true, Some(avx2), Some(avx512)) =
            (matches!(dtype, GgmlDType::Q4K | GgmlDType::Q6K), of(Kernel::Avx2), of(Kernel::Avx512Vnni))
        {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(avx2), bits(avx512), "{dtype:?}: AVX2 and AVX-512 differ");
        }
    }
}

/// A pre-fill on AMX (where the CPU has it): tiles of 16 rows and 16 tokens, with rows and
/// tokens left over, of Q4_K and Q6_K, gives bit for bit the AVX-512 kernels' results (the
/// same integers per 256 values, the same float operations after them).
#[test]
fn amx_tiles_give_the_avx512_kernels_results_bit_for_bit() {
    if Kernel::detect() != Kernel::Amx {
        eprintln!("no AMX on this CPU (or IRIS_LLM_KERNEL asks for less): nothing to compare");
        return;
    }
    let mut rng = Rng(0xA3A3);
    // The last: two groups of token tiles (their activations over `GROUP_BYTES`).
    let cases = [(40, 1024, 37), (16, 256, 16), (52, 768, 5), (20, 8192, 150)];
    for (dtype, (rows, cols, tokens)) in [GgmlDType::Q4K, GgmlDType::Q6K].into_iter().flat_map(|d| cases.map(|c| (d, c))) {
        let (raw, values) = random(dtype, rows, cols, &mut rng);
        let w = Matrix::from_gguf(dtype, &raw, rows, cols).unwrap();
        let acts: Vec<QActs> = (0..tokens)
            .map(|_| {
                let x: Vec<f32> = (0..cols).map(|_| rng.value()).collect();
                let mut a = QActs::default();
                a.quantize_as(&x, w.act_kind());
                a
            })
            .collect();
        let run = |kernel: Kernel| {
            let mut out = vec![f32::NAN; tokens * rows];
            // Uneven parts, as three threads would take them (starts on multiples of four).
            for i in 0..3 {
                unsafe { w.matmul(kernel, share(rows, i, 3, 4), &acts, out.as_mut_ptr(), rows) };
            }
            out
        };
        let (amx, avx512) = (run(Kernel::Amx), run(Kernel::Avx512Vnni));
        for (i, (a, b)) in amx.iter().zip(&avx512).enumerate() {
            let (t, r) = (i / rows, i % rows);
            let x = acts[t].dequantize();
            let exact: f64 = values[r * cols..(r + 1) * cols].iter().zip(&x).map(|(w, x)| f64::from(*w) * f64::from(*x)).sum();
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{dtype:?} {rows}x{cols}, {tokens} tokens, [{t}][{r}]: AMX {a}, AVX-512 {b}, exact {exact}"
            );
        }
    }
}

#[test]
fn activations_quantise_as_llama_cpp_does() {
    let mut rng = Rng(99);
    let x: Vec<f32> = (0..512).map(|_| rng.value()).collect();
    // Q8_0: per 32, scale amax/127 kept as f16; Q8_K: per 256, scale -max/127 in f32.
    let mut a = QActs::default();
    a.quantize(&x);
    for (block, got) in x.chunks(32).zip(a.dequantize().chunks(32)) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = f16::from_f32(amax / 127.0).to_f32();
        for (v, g) in block.iter().zip(got) {
            assert!((v - g).abs() <= d * 0.5 + 1e-3 * amax, "{v} vs {g}");
        }
    }
    a.quantize_k(&x);
    for (block, got) in x.chunks(256).zip(a.dequantize().chunks(256)) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (v, g) in block.iter().zip(got) {
            assert!((v - g).abs() <= amax / 127.0 * 0.51, "{v} vs {g}");
        }
    }
    // An all-zero block and a huge one stay finite.
    let mut x = vec![0f32; 256];
    x[200] = 3.0e4;
    for kind in [iris_llm_cpu::q8::ActKind::Q8_0, iris_llm_cpu::q8::ActKind::Q8K] {
        a.quantize_as(&x, kind);
        assert!(a.dequantize().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn the_pool_runs_every_share_once() {
    for threads in [1, 2, 3] {
        let pool = Pool::new(threads);
        for n in [0, 1, 5, 96, 1001] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                pool.run(&|i| {
                    for j in share(n, i, threads, 4) {
                        hits[j].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 50), "{threads} threads, {n}");
        }
        // After the workers have gone to sleep, a job still wakes them.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let count = AtomicUsize::new(0);
        pool.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), threads);
    }
}
