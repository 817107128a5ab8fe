//! Whisper's log-mel features for an 8 s window, as `transformers.WhisperFeatureExtractor`
//! (`chunk_length=8`, `do_normalize=True`) computes them, which is what Smart Turn was trained
//! on: the waveform normalised to zero mean and unit variance, a centred (reflect-padded)
//! power spectrogram with a periodic Hann window (n_fft 400, hop 160), Slaney mel filters
//! (80, 0–8 kHz), log10 floored at 1e-10, the last frame dropped, clamped to 8 below the
//! maximum, then (x + 4) / 4. Computed in f64, as the reference does.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

pub const SAMPLES: usize = 8 * 16_000;
pub const MELS: usize = 80;
pub const FRAMES: usize = 800;
const N_FFT: usize = 400;
const HOP: usize = 160;
const BINS: usize = N_FFT / 2 + 1;

fn hz_to_mel(f: f64) -> f64 {
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() * (27.0 / 6.4f64.ln())
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= 15.0 {
        1000.0 * ((6.4f64.ln() / 27.0) * (m - 15.0)).exp()
    } else {
        200.0 * m / 3.0
    }
}

/// `[MELS][BINS]` Slaney-normalised triangular filters.
fn mel_filters() -> Vec<[f64; BINS]> {
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
    let freqs: Vec<f64> = (0..MELS + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (MELS + 1) as f64)).collect();
    let fft_freq = |k: usize| 8000.0 * k as f64 / (BINS - 1) as f64;
    (0..MELS)
        .map(|m| {
            let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
            std::array::from_fn(|k| {
                let down = (fft_freq(k) - freqs[m]) / (freqs[m + 1] - freqs[m]);
                let up = (freqs[m + 2] - fft_freq(k)) / (freqs[m + 2] - freqs[m + 1]);
                down.min(up).max(0.0) * enorm
            })
        })
        .collect()
}

pub struct Features {
    fft: Arc<dyn Fft<f64>>,
    window: Vec<f64>,
    filters: Vec<[f64; BINS]>,
}

impl Default for Features {
    fn default() -> Self {
        let window = (0..N_FFT).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()).collect();
        Self { fft: FftPlanner::new().plan_fft_forward(N_FFT), window, filters: mel_filters() }
    }
}

impl Features {
    /// The last 8 s of `pcm` (16 kHz mono), zero-padded on the left when shorter, as
    /// `[MELS * FRAMES]` row-major features.
    pub fn compute(&self, pcm: &[f32]) -> Vec<f32> {
        let mut x = vec![0f32; SAMPLES];
        let take = pcm.len().min(SAMPLES);
        x[SAMPLES - take..].copy_from_slice(&pcm[pcm.len() - take..]);
        // Normalised in f32 as the reference does (its audio is float32 at that point).
        let n = SAMPLES as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let sd = (var + 1e-7).sqrt();
        let x: Vec<f64> = x.iter().map(|v| f64::from((v - mean) / sd)).collect();
        let pad = N_FFT / 2;
        let at = |i: isize| -> f64 {
            // Reflect padding (no edge repeat), as numpy's "reflect".
            let len = x.len() as isize;
            let j = if i < 0 {
                -i
            } else if i >= len {
                2 * (len - 1) - i
            } else {
                i
            };
            x[j as usize]
        };
        let mut log = vec![0f64; MELS * FRAMES];
        let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
        let mut power = [0f64; BINS];
        for f in 0..FRAMES {
            let start = (f * HOP) as isize - pad as isize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = Complex::new(at(start + i as isize) * self.window[i], 0.0);
            }
            self.fft.process(&mut buf);
            for (k, p) in power.iter_mut().enumerate() {
                *p = buf[k].norm_sqr();
            }
            for (m, filt) in self.filters.iter().enumerate() {
                let e: f64 = filt.iter().zip(&power).map(|(a, b)| a * b).sum();
                log[m * FRAMES + f] = e.max(1e-10).log10();
            }
        }
        let max = log.iter().copied().fold(f64::MIN, f64::max);
        log.iter().map(|v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32).collect()
    }
}
