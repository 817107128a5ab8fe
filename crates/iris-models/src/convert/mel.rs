//! The Slaney-style mel filter bank whisper.cpp expects inside a ggml model file, computed as
//! `librosa.filters.mel(sr, n_fft, n_mels)` does (float64 arithmetic, float32 storage with the
//! same double rounding), so a converted file matches the official one.

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// `n_mels` rows of `n_fft / 2 + 1` weights.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<Vec<f32>> {
    let sr = f64::from(sample_rate);
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * sr / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let n = n_mels + 2;
    let step = (hi - lo) / (n - 1) as f64;
    let mel_f: Vec<f64> = (0..n).map(|i| if i == n - 1 { mel_to_hz(hi) } else { mel_to_hz(i as f64 * step + lo) }).collect();
    let fdiff: Vec<f64> = mel_f.windows(2).map(|w| w[1] - w[0]).collect();
    (0..n_mels)
        .map(|i| {
            let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = -(mel_f[i] - f) / fdiff[i];
                    let upper = (mel_f[i + 2] - f) / fdiff[i + 1];
                    let w = lower.min(upper).max(0.0) as f32;
                    (f64::from(w) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_filter_bank_shape_and_values() {
        let m = mel_filters(16_000, 400, 80);
        assert_eq!((m.len(), m[0].len()), (80, 201));
        // Worked by hand from librosa's formula: bin 1 (40 Hz) lies on the falling edge of the
        // first triangle, (74.479 - 40) / 37.239 * 2 / 74.479.
        assert!((m[0][1] - 0.024_863).abs() < 1e-5, "{}", m[0][1]);
        assert_eq!(m[0][0], 0.0);
        // Slaney normalisation: each triangle has (nearly) equal area in Hz.
        let area = |row: &[f32]| row.iter().map(|&w| f64::from(w)).sum::<f64>() * 40.0;
        assert!((area(&m[10]) - 1.0).abs() < 0.05 && (area(&m[70]) - 1.0).abs() < 0.05);
    }
}
