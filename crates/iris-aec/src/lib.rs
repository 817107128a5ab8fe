//! Acoustic echo cancellation with WebRTC's AEC3 (the pure-Rust `sonora` port): what Iris plays
//! is the far-end reference, and its echo is taken out of the microphone before the wake word,
//! the voice activity detector and the recogniser hear it.
//!
//! AEC3 estimates the delay between playback and capture itself (its matched filters search
//! several hundred milliseconds), so the loop hands it what was played and what was captured
//! in the same chunk and no delay is assumed. Only the echo canceller runs: no noise
//! suppression or gain control, which would change what the wake word and Whisper hear.

use std::collections::VecDeque;

use iris_backend::EchoCanceller;
use sonora::config::EchoCanceller as Aec3Config;
use sonora::{AudioProcessing, Config, StreamConfig};

const RATE: u32 = 16_000;
/// AEC3 works on 10 ms frames.
const FRAME: usize = 160;

pub struct Aec3 {
    apm: AudioProcessing,
    render: Vec<f32>,
    capture: Vec<f32>,
    /// Cleaned capture not yet handed back (less than a frame is ever held).
    out: VecDeque<f32>,
    scratch: Vec<f32>,
}

impl Default for Aec3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Aec3 {
    pub fn new() -> Self {
        let aec = Aec3Config { transparent_mode: sonora::config::TransparentModeType::Hmm, ..Aec3Config::default() };
        let config = Config { echo_canceller: Some(aec), ..Default::default() };
        let stream = StreamConfig::new(RATE, 1);
        let apm = AudioProcessing::builder().config(config).capture_config(stream).render_config(stream).build();
        Self { apm, render: Vec::new(), capture: Vec::new(), out: VecDeque::new(), scratch: vec![0.0; FRAME] }
    }
}

impl EchoCanceller for Aec3 {
    fn render(&mut self, played: &[f32]) {
        self.render.extend_from_slice(played);
        let frames = self.render.len() / FRAME;
        for i in 0..frames {
            let frame = &self.render[i * FRAME..(i + 1) * FRAME];
            // The render output is not used: the speaker already has its samples.
            let _ = self.apm.process_render_f32(&[frame], &mut [&mut self.scratch]);
        }
        self.render.drain(..frames * FRAME);
    }

    fn cancel(&mut self, captured: &[f32]) -> Vec<f32> {
        self.capture.extend_from_slice(captured);
        let frames = self.capture.len() / FRAME;
        for i in 0..frames {
            let frame = &self.capture[i * FRAME..(i + 1) * FRAME];
            match self.apm.process_capture_f32(&[frame], &mut [&mut self.scratch]) {
                Ok(()) => self.out.extend(&self.scratch),
                // A frame AEC3 refuses passes through as it was: never lose the microphone.
                Err(_) => self.out.extend(frame),
            }
        }
        self.capture.drain(..frames * FRAME);
        // The same number of samples out as in, so the loop's clock never slips; the first
        // call's shortfall (under a frame) is silence.
        let n = captured.len();
        let mut cleaned: Vec<f32> = Vec::with_capacity(n);
        let short = n.saturating_sub(self.out.len());
        cleaned.extend(std::iter::repeat_n(0.0, short));
        cleaned.extend(self.out.drain(..n - short));
        cleaned
    }

    fn erle_db(&self) -> Option<f64> {
        self.apm.statistics().echo_return_loss_enhancement
    }

    fn delay_ms(&self) -> Option<i32> {
        self.apm.statistics().delay_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A far end of noise bursts heard 30 ms later at 0 dB: most of it is taken out once AEC3
    /// has converged, and a near-end voice alone passes through.
    #[test]
    fn removes_a_delayed_echo_and_keeps_the_near_end() {
        let mut aec = Aec3::new();
        let mut seed = 7u32;
        let mut noise = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let far: Vec<f32> = (0..RATE as usize * 6).map(|i| if (i / 8000) % 2 == 0 { 0.3 * noise() } else { 0.0 }).collect();
        let delay = 480;
        let mut mic = vec![0.0; far.len()];
        for i in delay..far.len() {
            mic[i] = far[i - delay];
        }
        let mut out = Vec::new();
        for (f, m) in far.chunks(320).zip(mic.chunks(320)) {
            aec.render(f);
            out.extend(aec.cancel(m));
        }
        let energy = |x: &[f32]| x.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>();
        let tail = 4 * RATE as usize;
        let erle = 10.0 * (energy(&mic[tail..]) / energy(&out[tail..]).max(1e-12)).log10();
        assert!(erle > 20.0, "echo taken out by {erle:.1} dB");
        // Near end only (nothing played): passes through nearly unchanged.
        let near: Vec<f32> = (0..RATE as usize).map(|i| 0.2 * (i as f32 * 0.05).sin()).collect();
        let mut passed = Vec::new();
        for c in near.chunks(320) {
            aec.render(&[0.0; 320]);
            passed.extend(aec.cancel(c));
        }
        let kept = energy(&passed[8000..]) / energy(&near[8000..]);
        assert!(kept > 0.5, "the near end kept {kept:.2} of its energy");
    }
}
