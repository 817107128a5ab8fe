//! A streaming resampler for device audio: linear interpolation behind a short low-pass, with
//! the fractional position carried across calls so chunk edges leave no clicks.

pub struct StreamResampler {
    step: f64,
    /// Position of the next output sample, in input samples relative to `last`'s time.
    pos: f64,
    last: f32,
    /// One-pole low-pass state, against aliasing when going down in rate.
    lp: f32,
    alpha: f32,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Self {
        let step = f64::from(from.max(1)) / f64::from(to.max(1));
        // Cut-off near the output's Nyquist when downsampling; a pass-through otherwise.
        let alpha = if step > 1.0 { (1.0 - (-std::f64::consts::PI / step).exp()) as f32 } else { 1.0 };
        Self { step, pos: 0.0, last: 0.0, lp: 0.0, alpha }
    }

    /// Appends the resampled `input` to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if (self.step - 1.0).abs() < 1e-12 {
            out.extend_from_slice(input);
            return;
        }
        for &x in input {
            self.lp += self.alpha * (x - self.lp);
            let cur = self.lp;
            // Output samples that fall between the previous input sample and this one.
            while self.pos <= 1.0 {
                out.push(self.last + (cur - self.last) * self.pos as f32);
                self.pos += self.step;
            }
            self.pos -= 1.0;
            self.last = cur;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_ratio_across_chunks() {
        let mut r = StreamResampler::new(48_000, 16_000);
        let mut out = Vec::new();
        for _ in 0..100 {
            r.push(&[0.5; 480], &mut out);
        }
        assert!((out.len() as i64 - 16_000).abs() <= 1, "{}", out.len());
        assert!((out[8_000] - 0.5).abs() < 1e-3);
        let mut same = StreamResampler::new(16_000, 16_000);
        let mut o = Vec::new();
        same.push(&[0.1, 0.2], &mut o);
        assert_eq!(o, vec![0.1, 0.2]);
    }
}
