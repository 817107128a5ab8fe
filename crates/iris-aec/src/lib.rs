//! Acoustic echo cancellation with WebRTC's AEC3 (the pure-Rust `sonora-aec3` port): what Iris
//! plays is the far-end reference, and its echo is taken out of the microphone before the wake
//! word, the voice activity detector and the recogniser hear it.
//!
//! AEC3 has two outputs. Its linear filter subtracts the modelled echo and leaves the near end
//! (the user) as it was; its suppressor then removes what echo is left by muting the bands where
//! it hears any, which also mutes a user who talks over Iris (double talk). A recogniser wants
//! the user's words, so Iris takes the **linear** output: the block processor is driven directly,
//! because the `sonora` wrapper (WebRTC's audio processing module) only hands back the
//! suppressed one. [`Output::Suppressed`] is kept for measuring the difference.
//!
//! AEC3 estimates the delay between playback and capture itself (its matched filters search
//! several hundred milliseconds), so the loop hands it what was played and what was captured
//! in the same chunk and no delay is assumed.

mod drift;

use std::collections::VecDeque;

use iris_backend::EchoCanceller;
use sonora_aec3::block::Block;
use sonora_aec3::block_processor::BlockProcessor;
use sonora_aec3::config::EchoCanceller3Config;

use drift::DriftAligner;

const RATE: usize = 16_000;
/// AEC3 works on blocks of 4 ms.
const BLOCK: usize = 64;
/// AEC3 works on the int16 scale.
const SCALE: f32 = 32_768.0;

/// Which of AEC3's two signals [`Aec3::cancel`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The microphone minus the linear filter's echo estimate: the near end intact.
    Linear,
    /// After the nonlinear suppressor too: less echo, and a muted near end in double talk.
    Suppressed,
}

pub struct Aec3 {
    processor: BlockProcessor,
    output: Output,
    render: Vec<f32>,
    capture: Vec<f32>,
    /// Cleaned capture not yet handed back (less than a block is ever held).
    out: VecDeque<f32>,
    block: Block,
    linear: Block,
    measure: Erle,
    drift: Option<DriftAligner>,
}

/// Echo removed, measured: microphone energy over cleaned energy, counted only while the far
/// end has been playing (a user talking over it counts against it, so this is a floor).
#[derive(Default)]
struct Erle {
    /// Far-end energy of the latest blocks.
    recent: VecDeque<f64>,
    captured: f64,
    cleaned: f64,
    blocks: usize,
}

impl Erle {
    /// Blocks of far end looked back on: 200 ms.
    const WINDOW: usize = 50;
    /// Far-end energy per block under which nothing is playing (about -50 dBFS).
    const PLAYING: f64 = 64.0 * 1e-5;

    fn rendered(&mut self, block: &[f32]) {
        self.recent.push_back(block.iter().map(|s| f64::from(*s) * f64::from(*s)).sum());
        if self.recent.len() > Self::WINDOW {
            self.recent.pop_front();
        }
    }

    fn captured(&mut self, mic: &[f32], cleaned: impl Iterator<Item = f32>) {
        let playing = self.recent.iter().filter(|e| **e > Self::PLAYING).count() > Self::WINDOW / 2;
        if playing {
            self.captured += mic.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>();
            self.cleaned += cleaned.map(|s| f64::from(s) * f64::from(s)).sum::<f64>();
            self.blocks += 1;
        }
    }

    fn db(&self) -> Option<f64> {
        // At least a second of far end.
        (self.blocks >= 250).then(|| 10.0 * (self.captured / self.cleaned.max(1e-12)).log10())
    }
}

impl Default for Aec3 {
    fn default() -> Self {
        Self::new(Output::Linear)
    }
}

impl Aec3 {
    pub fn new(output: Output) -> Self {
        let mut config = EchoCanceller3Config::default();
        config.filter.export_linear_aec_output = true;
        Self {
            processor: BlockProcessor::new(&config, RATE, 1, 1),
            output,
            render: Vec::new(),
            capture: Vec::new(),
            out: VecDeque::new(),
            block: Block::new(1, 1),
            linear: Block::new(1, 1),
            measure: Erle::default(),
            drift: Some(DriftAligner::new()),
        }
    }

    /// Without the clock-drift correction (for measuring what it does).
    pub fn without_drift_correction(mut self) -> Self {
        self.drift = None;
        self
    }

    /// The clock drift between speaker and microphone measured so far, in ppm.
    pub fn drift_ppm(&self) -> Option<f64> {
        self.drift.as_ref().and_then(DriftAligner::drift_ppm)
    }
}

impl EchoCanceller for Aec3 {
    fn render(&mut self, played: &[f32]) {
        let aligned = self.drift.as_mut().map(|d| d.render(played));
        self.render.extend_from_slice(aligned.as_deref().unwrap_or(played));
        let blocks = self.render.len() / BLOCK;
        for i in 0..blocks {
            let played = &self.render[i * BLOCK..(i + 1) * BLOCK];
            self.measure.rendered(played);
            for (d, s) in self.block.view_mut(0, 0).iter_mut().zip(played) {
                *d = s * SCALE;
            }
            self.processor.buffer_render(&self.block);
        }
        self.render.drain(..blocks * BLOCK);
    }

    fn cancel(&mut self, captured: &[f32]) -> Vec<f32> {
        if let Some(d) = self.drift.as_mut() {
            d.capture(captured);
        }
        self.capture.extend_from_slice(captured);
        let blocks = self.capture.len() / BLOCK;
        for i in 0..blocks {
            let frame = &self.capture[i * BLOCK..(i + 1) * BLOCK];
            for (d, s) in self.block.view_mut(0, 0).iter_mut().zip(frame) {
                *d = s * SCALE;
            }
            // Before any render has come AEC3 leaves its outputs alone: the microphone as it was.
            self.linear.view_mut(0, 0).copy_from_slice(self.block.view(0, 0));
            let saturated = frame.iter().any(|s| s.abs() >= 0.999);
            self.processor.process_capture(false, saturated, Some(&mut self.linear), &mut self.block);
            let cleaned = match self.output {
                Output::Linear => &self.linear,
                Output::Suppressed => &self.block,
            };
            let start = self.out.len();
            self.out.extend(cleaned.view(0, 0).iter().map(|s| (s / SCALE).clamp(-1.0, 1.0)));
            self.measure.captured(frame, self.out.range(start..).copied());
        }
        self.capture.drain(..blocks * BLOCK);
        // The same number of samples out as in, so the loop's clock never slips; the first
        // call's shortfall (under a block) is silence.
        let n = captured.len();
        let mut cleaned: Vec<f32> = Vec::with_capacity(n);
        let short = n.saturating_sub(self.out.len());
        cleaned.extend(std::iter::repeat_n(0.0, short));
        cleaned.extend(self.out.drain(..n - short));
        cleaned
    }

    fn erle_db(&self) -> Option<f64> {
        self.measure.db()
    }

    fn delay_ms(&self) -> Option<i32> {
        Some(self.processor.get_metrics().delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    fn energy(x: &[f32]) -> f64 {
        x.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>()
    }

    /// Far-end noise bursts heard 30 ms later at 0 dB, with `near` added to the microphone:
    /// what the canceller hands back.
    fn through(aec: &mut Aec3, far: &[f32], near: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let delay = 480;
        let mut mic = near.to_vec();
        for i in delay..far.len() {
            mic[i] += far[i - delay];
        }
        let mut out = Vec::new();
        for (f, m) in far.chunks(320).zip(mic.chunks(320)) {
            aec.render(f);
            out.extend(aec.cancel(m));
        }
        (mic, out)
    }

    fn far_end(secs: usize) -> Vec<f32> {
        let mut seed = 7u32;
        (0..RATE * secs).map(|i| if (i / 8000) % 2 == 0 { 0.3 * noise(&mut seed) } else { 0.0 }).collect()
    }

    /// Once converged, both outputs take most of the echo out; with nothing played, the near
    /// end passes through.
    #[test]
    fn removes_a_delayed_echo_and_keeps_the_near_end() {
        for output in [Output::Linear, Output::Suppressed] {
            let mut aec = Aec3::new(output);
            let far = far_end(6);
            let (mic, out) = through(&mut aec, &far, &vec![0.0; far.len()]);
            let tail = 4 * RATE;
            let erle = 10.0 * (energy(&mic[tail..]) / energy(&out[tail..]).max(1e-12)).log10();
            assert!(erle > 20.0, "{output:?}: echo taken out by {erle:.1} dB");
            let near: Vec<f32> = (0..RATE).map(|i| 0.2 * (i as f32 * 0.05).sin()).collect();
            let (_, passed) = through(&mut aec, &vec![0.0; RATE], &near);
            let kept = energy(&passed[8000..]) / energy(&near[8000..]);
            assert!(kept > 0.5, "{output:?}: the near end kept {kept:.2} of its energy");
        }
    }

    /// Double talk: the user speaks while Iris plays. The linear output keeps the user (the
    /// residual is small beside them); the suppressor takes much of the user out with the echo.
    #[test]
    fn the_linear_output_keeps_a_voice_over_the_echo() {
        let far: Vec<f32> = {
            let mut seed = 11u32;
            (0..RATE * 8).map(|_| 0.3 * noise(&mut seed)).collect()
        };
        let talk = 6 * RATE..7 * RATE;
        let mut near = vec![0.0; far.len()];
        for i in talk.clone() {
            near[i] = 0.1 * (i as f32 * 0.07).sin() * (1.0 + (i as f32 * 0.0015).sin());
        }
        let mut kept = Vec::new();
        for output in [Output::Linear, Output::Suppressed] {
            let (_, out) = through(&mut Aec3::new(output), &far, &near);
            let error: Vec<f32> = out[talk.clone()].iter().zip(&near[talk.clone()]).map(|(o, n)| o - n).collect();
            let snr = 10.0 * (energy(&near[talk.clone()]) / energy(&error).max(1e-12)).log10();
            kept.push(snr);
        }
        assert!(kept[0] > 12.0, "the linear output's voice-to-error ratio is {:.1} dB", kept[0]);
        assert!(kept[0] > kept[1] + 3.0, "linear {:.1} dB, suppressed {:.1} dB", kept[0], kept[1]);
    }

    /// A far end with pauses, like speech: bursts of low-passed noise.
    fn talk(secs: usize, seed: u32) -> Vec<f32> {
        let mut seed = seed;
        let mut low = 0.0f32;
        (0..RATE * secs)
            .map(|i| {
                low = 0.8 * low + 0.2 * noise(&mut seed);
                // 0.7 s on, 0.3 s off.
                if i % 16_000 < 11_200 {
                    2.0 * low
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// `far` heard `delay` samples later by a microphone whose clock runs `ppm` fast, through a
    /// long windowed sinc (not the aligner's own interpolator).
    fn drifted(far: &[f32], delay: f64, ppm: f64) -> Vec<f32> {
        // A room's noise floor, about -55 dBFS.
        let mut seed = 99u32;
        (0..far.len())
            .map(|m| {
                let x = m as f64 * (1.0 - ppm * 1e-6) - delay;
                let base = x.floor() as i64;
                let mut acc = 0.0;
                for i in base - 31..=base + 32 {
                    let Some(s) = usize::try_from(i).ok().and_then(|i| far.get(i)) else { continue };
                    let t = i as f64 - x;
                    let sinc = if t.abs() < 1e-9 { 1.0 } else { (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t) };
                    let w = 0.5 + 0.5 * (std::f64::consts::PI * t / 33.0).cos();
                    acc += f64::from(*s) * sinc * w;
                }
                acc as f32 + 0.006 * noise(&mut seed)
            })
            .collect()
    }

    /// Echo removed over the last `tail` samples, and the drift measured.
    fn erle_with_drift(far: &[f32], mic: &[f32], aec: Aec3, tail: usize) -> (f64, Option<f64>) {
        let mut aec = aec;
        let mut out = Vec::new();
        for (f, m) in far.chunks(320).zip(mic.chunks(320)) {
            aec.render(f);
            out.extend(aec.cancel(m));
        }
        let from = mic.len() - tail;
        (10.0 * (energy(&mic[from..]) / energy(&out[from..]).max(1e-12)).log10(), aec.drift_ppm())
    }

    /// Speaker and microphone on two clocks 80 ppm apart: the drift is measured, and with the
    /// reference corrected AEC3 removes far more of the echo than when it chases the drift.
    #[test]
    fn a_drifting_echo_is_measured_and_held_still() {
        let far = talk(30, 5);
        let mic = drifted(&far, 480.0, 80.0);
        let tail = 10 * RATE;
        let (with, ppm) = erle_with_drift(&far, &mic, Aec3::default(), tail);
        let (without, _) = erle_with_drift(&far, &mic, Aec3::default().without_drift_correction(), tail);
        let ppm = ppm.expect("no drift measured");
        assert!((ppm - 80.0).abs() < 10.0, "measured {ppm:.1} ppm of 80");
        assert!(with > without + 6.0, "echo removed {with:.1} dB corrected, {without:.1} dB not");
        eprintln!("80 ppm: measured {ppm:.1} ppm; echo removed {with:.1} dB corrected, {without:.1} dB not");
        // One clock: nothing to correct, and nothing lost by looking.
        let mic = drifted(&far, 480.0, 0.0);
        let (with, ppm) = erle_with_drift(&far, &mic, Aec3::default(), tail);
        let (without, _) = erle_with_drift(&far, &mic, Aec3::default().without_drift_correction(), tail);
        assert!(ppm.is_some_and(|p| p.abs() < 3.0), "measured {ppm:?} ppm of none");
        assert!(with > without - 1.0, "echo removed {with:.1} dB corrected, {without:.1} dB not");
    }
}
