//! Watch mode: sample the camera and speak only when the scene really changes. Each sample is
//! reduced to a 16x16 grey thumbnail, normalised for brightness and contrast (so auto-exposure
//! and a cloud passing do not count); a change must differ from the last described scene by
//! `threshold`, hold still for `settle` samples (a hand waving past does not count), and come at
//! least `min_interval` after the last announcement.

use std::time::Duration;

use iris_frames::ImageFrame;

const SIDE: usize = 16;

#[derive(Clone, Copy, Debug)]
pub struct WatchSettings {
    /// Mean absolute difference of normalised thumbnails (0 same, about 1.1 unrelated).
    pub threshold: f32,
    /// Samples in a row the new scene must hold before it is described.
    pub settle: usize,
    pub min_interval: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self { threshold: 0.35, settle: 2, min_interval: Duration::from_secs(10) }
    }
}

type Thumb = Vec<f32>;

pub struct SceneWatch {
    settings: WatchSettings,
    described: Option<Thumb>,
    candidate: Option<(Thumb, usize)>,
    last_announced: Option<Duration>,
}

/// The picture as 16x16 grey levels, zero mean and unit spread (a flat picture is not blown up:
/// the spread counts as at least a few grey levels).
fn thumb(frame: &ImageFrame) -> Thumb {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut sums = vec![0f32; SIDE * SIDE];
    let mut counts = vec![0u32; SIDE * SIDE];
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            let Some(px) = frame.rgb.get(i..i + 3) else { continue };
            let grey = 0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
            let cell = (y * SIDE / h.max(1)) * SIDE + x * SIDE / w.max(1);
            sums[cell] += grey;
            counts[cell] += 1;
        }
    }
    let cells: Vec<f32> = sums.iter().zip(&counts).map(|(s, c)| s / (*c).max(1) as f32).collect();
    let mean = cells.iter().sum::<f32>() / cells.len() as f32;
    let spread = (cells.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / cells.len() as f32).sqrt().max(6.0);
    cells.iter().map(|v| (v - mean) / spread).collect()
}

fn difference(a: &Thumb, b: &Thumb) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

impl SceneWatch {
    pub fn new(settings: WatchSettings) -> Self {
        Self { settings, described: None, candidate: None, last_announced: None }
    }

    /// Whether `frame`, sampled at `now` (any monotonic clock), is a new scene to describe. The
    /// first frame always is.
    pub fn consider(&mut self, frame: &ImageFrame, now: Duration) -> bool {
        let t = thumb(frame);
        let Some(described) = &self.described else {
            return self.announce(t, now);
        };
        if difference(&t, described) < self.settings.threshold {
            self.candidate = None;
            return false;
        }
        let held = match &self.candidate {
            Some((c, n)) if difference(&t, c) < self.settings.threshold => n + 1,
            _ => 1,
        };
        self.candidate = Some((t, held));
        let rested = self.last_announced.is_none_or(|last| now.saturating_sub(last) >= self.settings.min_interval);
        if held >= self.settings.settle && rested {
            let (t, _) = self.candidate.take().unwrap_or_default();
            return self.announce(t, now);
        }
        false
    }

    fn announce(&mut self, t: Thumb, now: Duration) -> bool {
        self.described = Some(t);
        self.candidate = None;
        self.last_announced = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A 64x48 room: a gradient wall, a dark doorway, optionally a bright box; `gain` scales
    /// everything (exposure) and `seed` adds sensor noise of a few levels.
    fn room(gain: f32, with_box: bool, seed: u32) -> ImageFrame {
        let (w, h) = (64u32, 48u32);
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for py in 0..h {
            for px in 0..w {
                let mut v = 60.0 + px as f32 * 2.0;
                if (8..20).contains(&px) && py > 10 {
                    v = 25.0;
                }
                if with_box && (30..58).contains(&px) && (20..44).contains(&py) {
                    v = 230.0;
                }
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let noise = (x % 7) as f32 - 3.0;
                let level = (v * gain + noise).clamp(0.0, 255.0) as u8;
                rgb.extend([level, level, level]);
            }
        }
        ImageFrame { width: w, height: h, rgb: Arc::from(rgb) }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_still_room_is_described_once_whatever_the_noise_and_exposure() {
        let mut w = SceneWatch::new(WatchSettings::default());
        assert!(w.consider(&room(1.0, false, 1), secs(0)));
        for i in 1..30 {
            let gain = if i % 2 == 0 { 1.0 } else { 0.8 };
            assert!(!w.consider(&room(gain, false, i), secs(u64::from(i))), "sample {i}");
        }
    }

    #[test]
    fn a_new_object_is_described_once_it_stays() {
        let mut w = SceneWatch::new(WatchSettings { min_interval: secs(5), ..WatchSettings::default() });
        assert!(w.consider(&room(1.0, false, 1), secs(0)));
        // Passing through for one sample is not a change.
        assert!(!w.consider(&room(1.0, true, 2), secs(10)));
        assert!(!w.consider(&room(1.0, false, 3), secs(11)));
        // Staying is: described at the second sample, then not again.
        assert!(!w.consider(&room(1.0, true, 4), secs(12)));
        assert!(w.consider(&room(1.0, true, 5), secs(13)));
        assert!(!w.consider(&room(1.0, true, 6), secs(14)));
        // Taken away again, it is a change too, but not sooner than 5 s after the last.
        assert!(!w.consider(&room(1.0, false, 7), secs(15)));
        assert!(!w.consider(&room(1.0, false, 8), secs(16)));
        assert!(w.consider(&room(1.0, false, 9), secs(18)));
    }
}
