//! Clock drift between the speaker and the microphone, taken out of the reference before AEC3
//! sees it.
//!
//! With two devices on two crystals (a USB microphone and the board's speaker), or a sound
//! server that resamples between them, the echo's delay creeps by tens of parts per million:
//! about a sample a second. AEC3's linear filter chases the moving echo and removes much less
//! than from a still one (PulseAudio's loopback, 70 ppm: 13–19 dB against 20–30 dB once the
//! correction has locked, on the same recording). So the delay is measured every quarter second
//! while Iris speaks (cross-correlation of the microphone with what was played, to a fraction
//! of a sample), a line is fitted through the recent measurements, and the reference is
//! resampled at the line's rate: AEC3 then sees an echo that stands still. Only the rate is
//! followed, not each measurement: a jump in the delay is AEC3's to re-converge on, as it
//! would be anyway, and a reference moved faster than the echo moves is itself an echo AEC3
//! cannot follow. The correction reaches ±`SPAN` samples (the reference is delayed by `SPAN`
//! to make room for it); past that it steps back to the middle, about once a minute at 70 ppm.

use std::collections::VecDeque;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Samples of microphone correlated per measurement (a quarter second).
const WINDOW: usize = 4_096;
/// Longest echo delay looked for (half a second).
const MAX_LAG: usize = 8_000;
const FFT_LEN: usize = 16_384;
/// Measure once per this many captured samples while the far end plays (a quarter second).
const EVERY: u64 = 4_000;
/// A measurement counts when the echo explains at least this share of the microphone.
const MIN_CORRELATION: f32 = 0.7;
/// Measurements a line is fitted through, and the most seconds they may span.
const FIT_POINTS: usize = 96;
const FIT_SECONDS: f64 = 60.0;
/// The correction's reach either way (5 ms), and the fixed delay that makes room for it: short
/// beside any device's echo delay (its buffers alone are longer).
const SPAN: f64 = 80.0;
/// Interpolation: taps of the windowed sinc, and fractional phases tabulated.
const TAPS: usize = 16;
const PHASES: usize = 256;
/// The fastest drift believed (parts per million); more is a mistaken measurement.
const MAX_PPM: f64 = 1_000.0;
/// The slowest drift corrected.
const MIN_PPM: f64 = 5.0;

/// The echo's delay (samples) as a line through the measurements: `delay` at microphone index
/// `at`, changing by `slope` a sample; `last` is the latest measurement's index.
struct Line {
    at: f64,
    delay: f64,
    slope: f64,
    last: f64,
}

pub struct DriftAligner {
    /// The reference as played, from stream index `ref_base`.
    played: VecDeque<f32>,
    ref_base: u64,
    /// The microphone, from stream index `mic_base`.
    mic: VecDeque<f32>,
    mic_base: u64,
    /// Reference samples handed on (stream index of the next one).
    out_pos: u64,
    next_measure: u64,
    /// (microphone index, echo delay in samples) of the latest good measurements.
    points: VecDeque<(f64, f64)>,
    line: Option<Line>,
    /// Latest measurements that were off the line.
    strays: VecDeque<f64>,
    /// The correction applied to the last sample handed on.
    shift: f64,
    fft: Arc<dyn Fft<f32>>,
    ifft: Arc<dyn Fft<f32>>,
    table: Vec<[f32; TAPS]>,
}

impl Default for DriftAligner {
    fn default() -> Self {
        Self::new()
    }
}

impl DriftAligner {
    pub fn new() -> Self {
        let mut planner = FftPlanner::new();
        Self {
            played: VecDeque::new(),
            ref_base: 0,
            mic: VecDeque::new(),
            mic_base: 0,
            out_pos: 0,
            next_measure: EVERY,
            points: VecDeque::new(),
            line: None,
            strays: VecDeque::new(),
            shift: 0.0,
            fft: planner.plan_fft_forward(FFT_LEN),
            ifft: planner.plan_fft_inverse(FFT_LEN),
            table: sinc_table(),
        }
    }

    /// Where the fitted line puts the echo's delay at microphone index `at`.
    fn predicted(&self, at: f64) -> Option<f64> {
        let line = self.line.as_ref()?;
        // Beyond the last measurement the line is followed for a minute at most.
        let at = at.min(line.last + 60.0 * 16_000.0);
        Some(line.delay + line.slope * (at - line.at))
    }

    /// The drift measured, in parts per million (positive: the echo comes later and later).
    pub fn drift_ppm(&self) -> Option<f64> {
        self.line.as_ref().map(|l| l.slope * 1e6)
    }

    /// A least-squares line through the measurements, once they span a second.
    fn fit(&mut self) {
        let n = self.points.len();
        let (Some(first), Some(last)) = (self.points.front(), self.points.back()) else { return };
        if n < 4 || last.0 - first.0 < 16_000.0 {
            return;
        }
        let at = self.points.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let delay = self.points.iter().map(|p| p.1).sum::<f64>() / n as f64;
        let sxx: f64 = self.points.iter().map(|p| (p.0 - at).powi(2)).sum();
        let sxy: f64 = self.points.iter().map(|p| (p.0 - at) * (p.1 - delay)).sum();
        // A slope from under four seconds is mostly the measurements' noise: level until then.
        let slope = if last.0 - first.0 >= 4.0 * 16_000.0 { (sxy / sxx).clamp(-MAX_PPM * 1e-6, MAX_PPM * 1e-6) } else { 0.0 };
        self.line = Some(Line { at, delay, slope, last: last.0 });
    }

    /// What was played: the reference, delayed by `SPAN` plus the drift correction, as many
    /// samples as came in.
    pub fn render(&mut self, played: &[f32]) -> Vec<f32> {
        self.played.extend(played);
        let mut out = Vec::with_capacity(played.len());
        // The correction follows the drift's rate, not each measurement: a jump in the echo's
        // delay (a sound server's buffer refilled) is AEC3's to re-converge on, as it would
        // anyway, while a reference moved faster than the echo is an echo it cannot follow.
        // Past the last measurement the rate is trusted for a minute.
        // Under `MIN_PPM` there is nothing AEC3 cannot follow, and interpolating would only
        // add its own small error.
        let rate = self
            .line
            .as_ref()
            .filter(|l| (self.out_pos as f64) < l.last + 60.0 * 16_000.0 && l.slope.abs() >= MIN_PPM * 1e-6)
            .map_or(0.0, |l| l.slope);
        for _ in 0..played.len() {
            self.shift += rate;
            if self.shift.abs() > SPAN - TAPS as f64 {
                // Out of reach: one step back to the middle, for AEC3 to re-converge on.
                self.shift = 0.0;
            }
            out.push(self.sample(self.out_pos as f64 - SPAN - self.shift));
            self.out_pos += 1;
        }
        // Keep what later samples and measurements can still ask for.
        let keep = (SPAN as usize * 2 + TAPS + MAX_LAG + WINDOW + 2 * EVERY as usize) as u64;
        let lowest = self.out_pos.saturating_sub(keep).min(self.mic_base.saturating_sub(MAX_LAG as u64 + TAPS as u64));
        // And never more than ten seconds, should the microphone stop coming.
        let lowest = lowest.max((self.ref_base + self.played.len() as u64).saturating_sub(160_000));
        let drop = (lowest.saturating_sub(self.ref_base) as usize).min(self.played.len());
        self.played.drain(..drop);
        self.ref_base += drop as u64;
        out
    }

    /// The reference at fractional stream index `x` (0 before it began).
    fn sample(&self, x: f64) -> f32 {
        let base = x.floor();
        let phase = (((x - base) * PHASES as f64).round() as usize).min(PHASES - 1);
        let coeffs = &self.table[phase];
        let first = base as i64 - (TAPS as i64 / 2 - 1);
        let mut acc = 0.0;
        for (k, c) in coeffs.iter().enumerate() {
            let i = first + k as i64 - self.ref_base as i64;
            if i >= 0 {
                if let Some(s) = self.played.get(i as usize) {
                    acc += s * c;
                }
            }
        }
        acc
    }

    /// The microphone, as captured: measured against the reference every half second.
    pub fn capture(&mut self, mic: &[f32]) {
        self.mic.extend(mic);
        let end = self.mic_base + self.mic.len() as u64;
        if end >= self.next_measure {
            self.next_measure = end + EVERY;
            self.measure(end);
        }
        let excess = self.mic.len().saturating_sub(WINDOW);
        self.mic.drain(..excess);
        self.mic_base += excess as u64;
    }

    /// One delay measurement ending at microphone index `end`, kept when it is clear.
    fn measure(&mut self, end: u64) {
        let start = end.saturating_sub(WINDOW as u64);
        // The reference must reach the window's end (it runs ahead of the microphone).
        let ref_end = self.ref_base + self.played.len() as u64;
        if start < MAX_LAG as u64 || ref_end < end || self.ref_base > start - MAX_LAG as u64 {
            return;
        }
        let mic: Vec<f32> = self.mic.range((start - self.mic_base) as usize..(end - self.mic_base) as usize).copied().collect();
        let from = start - MAX_LAG as u64;
        let reference: Vec<f32> = self.played.range((from - self.ref_base) as usize..(end - self.ref_base) as usize).copied().collect();
        let mic_energy: f32 = mic.iter().map(|s| s * s).sum();
        let ref_energy: f32 = reference.iter().map(|s| s * s).sum();
        // About -50 dBFS over the window: nothing is being played, or nothing heard.
        if mic_energy < 1e-5 * WINDOW as f32 || ref_energy < 1e-5 * WINDOW as f32 {
            return;
        }
        let Some((lag, correlation)) = self.correlate(&mic, &reference) else { return };
        if correlation < MIN_CORRELATION {
            return;
        }
        let at = end as f64;
        let delay = MAX_LAG as f64 - lag;
        // Once a line exists, a measurement far off it is a wrong peak, not a jump; the more
        // time since the last one, the further the echo may have gone (200 ppm). Three off the
        // line that agree with each other are the echo having moved: the line starts again.
        if let (Some(d), Some(line)) = (self.predicted(at), self.line.as_ref()) {
            let reach = 8.0 + 2e-4 * (at - line.last);
            if (delay - d).abs() > reach {
                self.strays.push_back(delay);
                if self.strays.len() > 3 {
                    self.strays.pop_front();
                }
                let agree = self.strays.len() == 3 && self.strays.iter().all(|s| (s - delay).abs() < 2.0);
                if !agree {
                    return;
                }
                self.points.clear();
                self.line = None;
            }
        }
        self.strays.clear();
        self.points.push_back((at, delay));
        while self.points.len() > FIT_POINTS || self.points.front().is_some_and(|p| at - p.0 > FIT_SECONDS * 16_000.0) {
            self.points.pop_front();
        }
        self.fit();
    }

    /// The offset of `mic` within `reference` at which they match best, to a fraction of a
    /// sample, and their normalised correlation there.
    fn correlate(&self, mic: &[f32], reference: &[f32]) -> Option<(f64, f32)> {
        let spectrum = |x: &[f32], fft: &Arc<dyn Fft<f32>>| {
            let mut buf: Vec<Complex32> = x.iter().map(|s| Complex32::new(*s, 0.0)).collect();
            buf.resize(FFT_LEN, Complex32::new(0.0, 0.0));
            fft.process(&mut buf);
            buf
        };
        let m = spectrum(mic, &self.fft);
        let mut r = spectrum(reference, &self.fft);
        for (r, m) in r.iter_mut().zip(&m) {
            *r *= m.conj();
        }
        self.ifft.process(&mut r);
        // c[k] = sum mic[i] * reference[i + k], for k in 0..=MAX_LAG.
        let c: Vec<f32> = r[..=MAX_LAG].iter().map(|z| z.re).collect();
        let k = (1..MAX_LAG).max_by(|a, b| c[*a].total_cmp(&c[*b]))?;
        let window: f32 = reference[k..k + mic.len()].iter().map(|s| s * s).sum();
        let own: f32 = mic.iter().map(|s| s * s).sum();
        let correlation = c[k] / (FFT_LEN as f32) / (window * own).sqrt().max(1e-12);
        let (a, b, d) = (c[k - 1], c[k], c[k + 1]);
        let denominator = a - 2.0 * b + d;
        let fraction = if denominator.abs() > 1e-12 { 0.5 * (a - d) / denominator } else { 0.0 };
        Some((k as f64 + f64::from(fraction.clamp(-0.5, 0.5)), correlation))
    }
}

/// Windowed-sinc interpolation coefficients for each fractional phase: taps for samples
/// `floor(x) - 7 ..= floor(x) + 8`.
fn sinc_table() -> Vec<[f32; TAPS]> {
    (0..PHASES)
        .map(|p| {
            let frac = p as f64 / PHASES as f64;
            let mut taps = [0f32; TAPS];
            let mut sum = 0.0;
            for (k, t) in taps.iter_mut().enumerate() {
                let x = k as f64 - (TAPS as f64 / 2.0 - 1.0) - frac;
                let sinc = if x.abs() < 1e-9 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                // Blackman window over the taps.
                let n = (k as f64 - frac + 1.0) / TAPS as f64;
                let w = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * n).cos() + 0.08 * (4.0 * std::f64::consts::PI * n).cos();
                *t = (sinc * w) as f32;
                sum += sinc * w;
            }
            taps.iter_mut().for_each(|t| *t = (f64::from(*t) / sum) as f32);
            taps
        })
        .collect()
}
