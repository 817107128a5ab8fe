//! The matrix products and norms of a layer, as launches: one token's (the quantised kernels),
//! a few tokens' (the same, four at a time), or a prompt's (cuBLAS on f16 weights).

use super::*;
use crate::gpu::{arg, Buffer};
use crate::CudaLlmError;

impl Model {
    /// `x += w · input`, through Gemma's norm first where the family has one there.
    pub(super) fn residual(&self, w: &Weight, input: u64, n: usize, width: usize, norm: Option<&Buffer>) -> Result<(), CudaLlmError> {
        let (s, dim) = (&self.s, self.cfg.dim);
        match norm {
            None => self.products(input, n, width, &[(w, s.x.ptr, dim, true)]),
            Some(norm) => {
                self.products(input, n, width, &[(w, s.proj.ptr, dim, false)])?;
                let (dim_i, eps) = (dim as i32, self.cfg.eps);
                // SAFETY: x and proj hold n rows of dim; norm holds dim.
                unsafe {
                    self.gpu.launch(
                        self.k.rmsnorm_add,
                        (n as u32, 1, 1),
                        (256, 1, 1),
                        0,
                        &mut [arg(&s.x.ptr), arg(&s.proj.ptr), arg(&norm.ptr), arg(&dim_i), arg(&eps)],
                    )
                }
            }
        }
    }

    pub(super) fn rmsnorm(&self, x: u64, w: &Buffer, out: u64, n: usize) -> Result<(), CudaLlmError> {
        let (dim, eps) = (self.cfg.dim as i32, self.cfg.eps);
        // SAFETY: x and out hold n rows of dim; w holds dim.
        unsafe {
            self.gpu.launch(self.k.rmsnorm, (n as u32, 1, 1), (256, 1, 1), 0, &mut [arg(&x), arg(&w.ptr), arg(&out), arg(&dim), arg(&eps)])
        }
    }

    /// One row of `s.x` normalised into `s.xn`, and as int8 into `s.xq` and `s.xd` (a decode step).
    pub(super) fn rmsnorm_q8(&self, w: &Buffer) -> Result<(), CudaLlmError> {
        let (s, dim, eps) = (&self.s, self.cfg.dim as i32, self.cfg.eps);
        // SAFETY: x and xn hold a row of dim, w dim values; xq and xd the widest activation.
        unsafe {
            self.gpu.launch(
                self.k.rmsnorm_q8,
                (1, 1, 1),
                (one_row_threads(self.cfg.dim), 1, 1),
                0,
                &mut [arg(&s.x.ptr), arg(&w.ptr), arg(&s.xn.ptr), arg(&dim), arg(&eps), arg(&s.xq.ptr), arg(&s.xd.ptr)],
            )
        }
    }

    /// Gemma 3 between blocks, one row: `x += rmsnorm(proj) · post`, then `s.xn` (and its int8
    /// form) `= rmsnorm(x) · next`.
    pub(super) fn rmsnorm_add_q8(&self, post: &Buffer, next: &Buffer) -> Result<(), CudaLlmError> {
        let (s, dim, eps) = (&self.s, self.cfg.dim as i32, self.cfg.eps);
        // SAFETY: x, proj and xn hold a row of dim, post and next dim values; xq and xd the
        // widest activation.
        unsafe {
            self.gpu.launch(
                self.k.rmsnorm_add_q8,
                (1, 1, 1),
                (one_row_threads(self.cfg.dim), 1, 1),
                0,
                &mut [
                    arg(&s.x.ptr),
                    arg(&s.proj.ptr),
                    arg(&post.ptr),
                    arg(&next.ptr),
                    arg(&s.xn.ptr),
                    arg(&dim),
                    arg(&eps),
                    arg(&s.xq.ptr),
                    arg(&s.xd.ptr),
                ],
            )
        }
    }

    /// `w` as f16 rows into `out`.
    pub(super) fn dequantize(&self, w: &Weight, out: u64) -> Result<(), CudaLlmError> {
        let (rows, cols, rb) = (w.rows as i32, w.cols as i32, w.row_bytes as i64);
        let blocks = w.rows.div_ceil(ROWS_PER_BLOCK as usize) as u32;
        // SAFETY: `out` holds rows × cols f16s.
        unsafe {
            self.gpu.launch(
                w.kinds.dequant,
                (blocks, 1, 1),
                (32, ROWS_PER_BLOCK, 1),
                0,
                &mut [arg(&w.buf.ptr), arg(&rows), arg(&cols), arg(&rb), arg(&out)],
            )
        }
    }

    /// One token's activation `x` (`cols` values) as int8 with a scale per 32, into `s.xq` and
    /// `s.xd`, for the decode kernels that take it.
    fn quantize(&self, x: u64, cols: usize) -> Result<(), CudaLlmError> {
        let s = &self.s;
        let cols_i = cols as i32;
        // SAFETY: x holds cols f32s; xq and xd were sized for the widest activation.
        unsafe {
            self.gpu.launch(
                self.k.quantize_q8,
                (cols.div_ceil(256) as u32, 1, 1),
                (256, 1, 1),
                0,
                &mut [arg(&x), arg(&cols_i), arg(&s.xq.ptr), arg(&s.xd.ptr)],
            )
        }
    }

    /// A decode step's q, k and v products in one launch (`mv_qkv`), into `s.qkv`.
    /// It reads `s.xn` and its int8 form, which the norm before it made (`rmsnorm_q8`).
    pub(super) fn qkv_one(&self, layer: &Layer) -> Result<(), CudaLlmError> {
        let (q, k, v, s) = (&layer.q, &layer.k, &layer.v, &self.s);
        let wpr = warps_per_row(q);
        let rows = q.rows + k.rows + v.rows;
        let (rq, rk, rv, cols, wpr_i) = (q.rows as i32, k.rows as i32, v.rows as i32, q.cols as i32, wpr as i32);
        let (bq, bk, bv) = (q.row_bytes as i64, k.row_bytes as i64, v.row_bytes as i64);
        // SAFETY: q, k and v are dim wide; xn holds a row of dim; qkv a row of their rows.
        unsafe {
            self.gpu.launch(
                self.k.mv_qkv,
                (rows.div_ceil(ROWS_PER_BLOCK as usize / wpr) as u32, 1, 1),
                (32, ROWS_PER_BLOCK, 1),
                0,
                &mut [
                    arg(&q.buf.ptr),
                    arg(&k.buf.ptr),
                    arg(&v.buf.ptr),
                    arg(&q.type_id),
                    arg(&k.type_id),
                    arg(&v.type_id),
                    arg(&rq),
                    arg(&rk),
                    arg(&rv),
                    arg(&bq),
                    arg(&bk),
                    arg(&bv),
                    arg(&cols),
                    arg(&s.xn.ptr),
                    arg(&s.qkv.ptr),
                    arg(&wpr_i),
                    arg(&s.xq.ptr),
                    arg(&s.xd.ptr),
                ],
            )
        }
    }

    /// `h = act(gate · xn) * (up · xn)` for the n tokens, in one launch (gate and up of one type).
    /// For one token it also reads `s.xn`'s int8 form, which the norm before it made (`rmsnorm_q8`).
    pub(super) fn gated(&self, gate: &Weight, up: &Weight, n: usize, gelu: i32) -> Result<(), CudaLlmError> {
        let s = &self.s;
        let (kernel, tokens_per_block) = if n == 1 { (gate.kinds.gated_mv, 1) } else { (gate.kinds.gated_mm, 4) };
        let wpr = warps_per_row(gate);
        let (rows, cols, rb, n_i, dim_i, ffn_i, wpr_i) =
            (gate.rows as i32, gate.cols as i32, gate.row_bytes as i64, n as i32, self.cfg.dim as i32, self.cfg.ffn as i32, wpr as i32);
        let mut args = vec![
            arg(&gate.buf.ptr),
            arg(&up.buf.ptr),
            arg(&rows),
            arg(&cols),
            arg(&rb),
            arg(&s.xn.ptr),
            arg(&n_i),
            arg(&dim_i),
            arg(&s.h.ptr),
            arg(&ffn_i),
            arg(&gelu),
            arg(&wpr_i),
        ];
        if n == 1 {
            // The one-token kernel also takes the activation as int8.
            args.extend([arg(&s.xq.ptr), arg(&s.xd.ptr)]);
        }
        // SAFETY: gate and up are ffn × dim of one type; xn holds n rows of dim, h n rows of ffn.
        unsafe {
            self.gpu.launch(
                kernel,
                (gate.rows.div_ceil(ROWS_PER_BLOCK as usize / wpr) as u32, n.div_ceil(tokens_per_block) as u32, 1),
                (32, ROWS_PER_BLOCK, 1),
                0,
                &mut args,
            )
        }
    }

    /// `y[t * y_stride + r] (+)= w[r] · x[t * x_stride ..]` for the n tokens, for each
    /// (w, y, y_stride, accumulate) of `outs` (all reading the same x).
    pub(super) fn products(&self, x: u64, n: usize, x_stride: usize, outs: &[(&Weight, u64, usize, bool)]) -> Result<(), CudaLlmError> {
        let (g, k) = (&self.gpu, &self.k);
        let wpr = warps_per_row;
        if n > GEMM_FROM {
            let (xh, count, scale) = (self.s.x_half.ptr, (n * x_stride) as i32, self.s.scale.ptr);
            // SAFETY: x holds n rows of x_stride; x_half a batch of the widest rows; scale 4 floats.
            unsafe {
                g.launch(
                    k.absmax,
                    ((n * x_stride).div_ceil(1024).min(264) as u32, 1, 1),
                    (256, 1, 1),
                    0,
                    &mut [arg(&x), arg(&count), arg(&scale)],
                )?;
                g.launch(k.finish_scale, (1, 1, 1), (1, 1, 1), 0, &mut [arg(&scale)])?;
                // A thread per four values (to_half takes four at a time when the count allows).
                let per = if (n * x_stride) % 4 == 0 { 4 } else { 1 };
                g.launch(
                    k.to_half,
                    ((n * x_stride).div_ceil(256 * per) as u32, 1, 1),
                    (256, 1, 1),
                    0,
                    &mut [arg(&x), arg(&xh), arg(&count), arg(&scale)],
                )?;
            }
            let (alpha, zero, one) = (self.s.scale.at(4), self.s.scale.at(8), self.s.scale.at(12));
            for (w, y, y_stride, accumulate) in outs {
                let wh = match &w.half {
                    Some(half) => half.ptr,
                    None => {
                        self.dequantize(w, self.s.w_half.ptr)?;
                        self.s.w_half.ptr
                    }
                };
                // x_half keeps x's row stride, so cuBLAS reads its rows where they are.
                g.gemm(wh, xh, *y, w.rows, n, w.cols, x_stride, *y_stride, alpha, if *accumulate { one } else { zero })?;
            }
            return Ok(());
        }
        if let (1, Some((w, ..))) = (n, outs.first()) {
            self.quantize(x, w.cols)?;
        }
        for (w, y, y_stride, accumulate) in outs {
            let (kernel, tokens_per_block) = if n == 1 { (w.kinds.mv, 1) } else { (w.kinds.mm, 4) };
            let (rows, cols, rb) = (w.rows as i32, w.cols as i32, w.row_bytes as i64);
            let (n_i, xs, ys, acc, wpr) = (n as i32, x_stride as i32, *y_stride as i32, i32::from(*accumulate), wpr(w));
            let wpr_i = wpr as i32;
            let mut args = vec![
                arg(&w.buf.ptr),
                arg(&rows),
                arg(&cols),
                arg(&rb),
                arg(&x),
                arg(&n_i),
                arg(&xs),
                arg(y),
                arg(&ys),
                arg(&acc),
                arg(&wpr_i),
            ];
            if n == 1 {
                args.extend([arg(&self.s.xq.ptr), arg(&self.s.xd.ptr)]);
            }
            // SAFETY: w holds rows × row_bytes; x n rows of x_stride; y n rows of y_stride; the
            // one-token kernel's xq and xd hold x quantised (above).
            unsafe {
                g.launch(
                    kernel,
                    (w.rows.div_ceil(ROWS_PER_BLOCK as usize / wpr) as u32, n.div_ceil(tokens_per_block) as u32, 1),
                    (32, ROWS_PER_BLOCK, 1),
                    0,
                    &mut args,
                )?;
            }
        }
        Ok(())
    }
}

/// Threads of a one-row norm (a decode step's): a value each up to 1024. With 256, the 8B
/// shape's norm of 4096 values took 17 µs, a quarter of its decode step's kernel time.
fn one_row_threads(dim: usize) -> u32 {
    dim.next_multiple_of(32).min(1024) as u32
}
