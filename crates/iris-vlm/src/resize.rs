//! Bicubic resizing of 8-bit images bit for bit as the reference processors do it. transformers
//! up to 4.x resized with Pillow (`ImagingResample`); transformers 5 resizes with torchvision,
//! whose uint8 kernel is Pillow's algorithm with 16-bit weights. Both are here ([`Kernel`]):
//! a horizontal pass then a vertical one, the filter support widened when shrinking
//! (antialiasing), fixed-point weights, and rounding back to 8 bits after each pass.

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    // Pillow uses a = -0.5.
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Whose fixed-point arithmetic to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Pillow: weights with 22 fractional bits.
    Pillow,
    /// torch/torchvision (`interpolate(..., antialias=True)` on uint8): weights as int16 with as
    /// many fractional bits as the largest weight allows.
    Torch,
}

/// For each output index: the first input index, and the fixed-point weights from there; and
/// the number of fractional bits of the weights.
fn coefficients(in_size: usize, out_size: usize, kernel: Kernel) -> (Vec<(usize, Vec<i32>)>, u32) {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    let rows = (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filter_scale;
            // Pillow truncates toward zero with a C cast, then clamps.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let total: f64 = weights.iter().sum();
            (xmin, weights.iter().map(|w| if total != 0.0 { w / total } else { *w }).collect::<Vec<f64>>())
        })
        .collect::<Vec<_>>();
    let bits = match kernel {
        Kernel::Pillow => PRECISION_BITS,
        Kernel::Torch => {
            // As many bits as keep twice the largest weight inside an int16.
            let max = rows.iter().flat_map(|(_, w)| w.iter().copied()).fold(0.0f64, f64::max);
            (0..22).find(|b| (0.5 + max * f64::from(1u32 << (b + 1))) as i32 >= 1 << 15).unwrap_or(22)
        }
    };
    let fixed = rows
        .into_iter()
        .map(|(xmin, w)| {
            let w = w
                .iter()
                .map(|w| {
                    let v = w * f64::from(1u32 << bits);
                    let r = (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32;
                    if kernel == Kernel::Torch {
                        i32::from(r as i16)
                    } else {
                        r
                    }
                })
                .collect();
            (xmin, w)
        })
        .collect();
    (fixed, bits)
}

/// Back to 8 bits: the integer part, clamped.
fn clip8(v: i64, bits: u32) -> u8 {
    (v >> bits).clamp(0, 255) as u8
}

/// Resizes packed RGB (`width * height * 3` bytes) to `out_w` x `out_h` as Pillow's
/// `Image.resize(size, Image.BICUBIC)` or torchvision's bicubic `resize` does.
pub fn resize_bicubic(rgb: &[u8], width: usize, height: usize, out_w: usize, out_h: usize, kernel: Kernel) -> Vec<u8> {
    // Horizontal pass (skipped when the width does not change, as Pillow skips it).
    let (tmp, tw) = if out_w != width {
        let (coeffs, bits) = coefficients(width, out_w, kernel);
        let round = 1i64 << (bits - 1);
        let mut tmp = vec![0u8; out_w * height * 3];
        for y in 0..height {
            let row = &rgb[y * width * 3..(y + 1) * width * 3];
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = round;
                    for (i, w) in k.iter().enumerate() {
                        ss += i64::from(row[(xmin + i) * 3 + c]) * i64::from(*w);
                    }
                    tmp[(y * out_w + xx) * 3 + c] = clip8(ss, bits);
                }
            }
        }
        (tmp, out_w)
    } else {
        (rgb.to_vec(), width)
    };
    if out_h == height {
        return tmp;
    }
    let (coeffs, bits) = coefficients(height, out_h, kernel);
    let round = 1i64 << (bits - 1);
    let mut out = vec![0u8; tw * out_h * 3];
    for (yy, (ymin, k)) in coeffs.iter().enumerate() {
        for x in 0..tw {
            for c in 0..3 {
                let mut ss = round;
                for (i, w) in k.iter().enumerate() {
                    ss += i64::from(tmp[((ymin + i) * tw + x) * 3 + c]) * i64::from(*w);
                }
                out[(yy * tw + x) * 3 + c] = clip8(ss, bits);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity_and_flat_stays_flat() {
        let img: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        for k in [Kernel::Pillow, Kernel::Torch] {
            assert_eq!(resize_bicubic(&img, 4, 3, 4, 3, k), img);
            let flat = vec![77u8; 10 * 6 * 3];
            assert!(resize_bicubic(&flat, 10, 6, 23, 4, k).iter().all(|&v| v == 77));
        }
    }
}
