//! Every kernel this CPU has computes the same products as the plain-Rust reference, and both
//! are the dot products of the dequantised values; the pool covers every index exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};

use iris_llm_cpu::pool::{share, Pool};
use iris_llm_cpu::q8::{dot_scalar, Q8Matrix, QActs};
use iris_llm_cpu::Kernel;

/// A small deterministic generator (xorshift), values in [-1, 1) with some outliers.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.max(1);
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if i % 97 == 0 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

fn kernels() -> Vec<Kernel> {
    let mut k = vec![Kernel::Scalar];
    match Kernel::detect() {
        Kernel::Avx512Vnni => k.extend([Kernel::Avx2, Kernel::Avx512Vnni]),
        Kernel::Avx2 => k.push(Kernel::Avx2),
        Kernel::Scalar => {}
    }
    k
}

#[test]
fn every_kernel_computes_the_dequantised_dot_products() {
    // Widths with an even and an odd number of blocks; row counts in and out of whole groups.
    for (rows, cols) in [(8, 64), (7, 96), (13, 576), (4, 1536)] {
        let w = Q8Matrix::quantize(&values(rows * cols, rows as u64 * 31 + cols as u64), rows, cols).unwrap();
        let tokens: Vec<Vec<f32>> = (0..3).map(|t| values(cols, 7 + t)).collect();
        let acts: Vec<QActs> = tokens
            .iter()
            .map(|x| {
                let mut a = QActs::default();
                a.quantize(x);
                a
            })
            .collect();
        // The exact answer for these quantised operands, in f64.
        let mut wr = vec![0f32; cols];
        let xr = Q8Matrix::quantize(&tokens.concat(), 3, cols).unwrap();
        let mut xrow = vec![0f32; cols];
        let mut expected = vec![0f64; 3 * rows];
        for r in 0..rows {
            w.dequantize_row(r, &mut wr);
            for t in 0..3 {
                xr.dequantize_row(t, &mut xrow);
                expected[t * rows + r] = wr.iter().zip(&xrow).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            }
        }
        for r in 0..rows {
            for (t, a) in acts.iter().enumerate() {
                let e = expected[t * rows + r];
                assert!((f64::from(dot_scalar(&w, r, a)) - e).abs() <= 1e-4 * e.abs().max(1.0), "scalar {rows}x{cols} r{r}");
            }
        }
        for kernel in kernels() {
            let mut out = vec![f32::NAN; 3 * rows];
            // In two parts, as two threads would take them.
            let mid = share(rows, 0, 2, 4).end;
            for part in [0..mid, mid..rows] {
                unsafe { kernel.matmul(&w, part, &acts, out.as_mut_ptr(), rows) };
            }
            for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
                assert!((f64::from(*o) - e).abs() <= 1e-4 * e.abs().max(1.0), "{kernel:?} {rows}x{cols} [{i}]: {o} vs {e}");
            }
        }
        // Quantisation keeps the products close to the f32 ones (a sanity check of the format).
        let exact: f32 = values(rows * cols, rows as u64 * 31 + cols as u64)[..cols].iter().zip(&tokens[0]).map(|(a, b)| a * b).sum();
        assert!((dot_scalar(&w, 0, &acts[0]) - exact).abs() < 0.05 * cols as f32 / 64.0, "quantised {rows}x{cols}");
    }
}

#[test]
fn zero_and_extreme_blocks_quantise_cleanly() {
    let mut x = vec![0f32; 64];
    x[40] = -3.0e4;
    x[41] = 3.0e4;
    let mut a = QActs::default();
    a.quantize(&x);
    let w = Q8Matrix::quantize(&vec![1.0; 64], 1, 64).unwrap();
    for kernel in kernels() {
        let mut out = [f32::NAN];
        kernel.matvec(&w, 0..1, &a, &mut out);
        assert!(out[0].abs() < 1.0, "{kernel:?}: {}", out[0]);
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
