//! The simulated room: a WAV file is the microphone, a WAV file is the speaker, and an optional
//! echo path lets the microphone hear the speaker. The same loop runs here as on devices.
//!
//! The capture sample count is the clock. Each read plays the speaker's next chunk into the
//! output file first, so sample n of OUT is played when sample n of IN is captured, and the two
//! files line up exactly. Reading paces itself to real time when asked (while a turn is being
//! answered), so a slow stage shows up as latency on the media clock instead of being skipped.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use iris_audio::WavStream;

use crate::io::{Capture, IoError, Speaker};

pub const RATE: u32 = 16_000;
/// 20 ms.
pub const CHUNK: usize = 320;

/// The speaker heard by its own microphone: `gain` (linear) after `delay` samples.
#[derive(Clone, Copy, Debug)]
pub struct Echo {
    pub gain: f32,
    pub delay: usize,
}

impl Echo {
    /// From `--echo DB,MS`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (db, ms) = spec.split_once(',').ok_or_else(|| format!("--echo {spec:?}: give DB,MS, e.g. --echo -12,40"))?;
        let db: f32 = db.trim().parse().map_err(|_| format!("--echo {spec:?}: {db:?} is not a number of dB"))?;
        let ms: f32 = ms.trim().parse().map_err(|_| format!("--echo {spec:?}: {ms:?} is not a number of milliseconds"))?;
        if !(-60.0..=6.0).contains(&db) || !(0.0..=2000.0).contains(&ms) {
            return Err(format!("--echo {spec:?}: use -60 to 6 dB and 0 to 2000 ms"));
        }
        Ok(Self { gain: 10f32.powf(db / 20.0), delay: (ms / 1000.0 * RATE as f32).round() as usize })
    }
}

pub struct Room {
    mic: Vec<f32>,
    pos: usize,
    speaker: Speaker,
    out: Option<WavStream>,
    echo: Option<Echo>,
    /// What the speaker played, kept as long as the echo's delay.
    echo_line: VecDeque<f32>,
    real_time: bool,
    /// Wall-clock anchor for pacing: (instant, media sample at that instant).
    anchor: Option<(Instant, usize)>,
}

impl Room {
    /// `mic`: 16 kHz mono. The speaker's output goes to `out` (16 kHz mono WAV).
    pub fn new(mic: Vec<f32>, out: &Path, echo: Option<Echo>) -> Result<(Self, Speaker), IoError> {
        let stream = WavStream::create(out, RATE).map_err(|e| IoError::File(e.to_string()))?;
        let speaker = Speaker::new(RATE);
        let line = VecDeque::from(vec![0.0; echo.map_or(0, |e| e.delay)]);
        let room = Self { mic, pos: 0, speaker: speaker.clone(), out: Some(stream), echo, echo_line: line, real_time: false, anchor: None };
        Ok((room, speaker))
    }

    /// Media time so far, in samples.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Writes the speaker file and renames it into place.
    pub fn finish(mut self) -> Result<(), IoError> {
        match self.out.take() {
            Some(out) => out.finish().map_err(|e| IoError::File(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Capture for Room {
    fn read(&mut self) -> Result<Vec<f32>, IoError> {
        if self.real_time {
            let (start, at) = *self.anchor.get_or_insert((Instant::now(), self.pos));
            let due = start + Duration::from_secs_f64((self.pos + CHUNK - at) as f64 / f64::from(RATE));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let mut played = vec![0.0; CHUNK];
        self.speaker.pull(&mut played);
        if let Some(out) = self.out.as_mut() {
            out.write(&played).map_err(|e| IoError::File(e.to_string()))?;
        }
        let mut chunk: Vec<f32> = (self.pos..self.pos + CHUNK).map(|i| self.mic.get(i).copied().unwrap_or(0.0)).collect();
        if let Some(echo) = self.echo {
            self.echo_line.extend(&played);
            for s in chunk.iter_mut() {
                *s = (*s + echo.gain * self.echo_line.pop_front().unwrap_or(0.0)).clamp(-1.0, 1.0);
            }
        }
        self.pos += CHUNK;
        Ok(chunk)
    }

    fn finished(&self) -> bool {
        self.pos >= self.mic.len()
    }

    fn pace(&mut self, real_time: bool) {
        if real_time != self.real_time {
            self.real_time = real_time;
            self.anchor = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_up_with_input_and_echo_returns_it() {
        let dir = std::env::temp_dir().join(format!("iris-room-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.wav");
        let echo = Echo::parse("-6.0206,10").unwrap();
        let (mut room, speaker) = Room::new(vec![0.0; CHUNK * 4], &out, Some(echo)).unwrap();
        assert_eq!(room.read().unwrap(), vec![0.0; CHUNK]);
        speaker.queue(&[1.0; CHUNK]);
        let heard = room.read().unwrap();
        // Played during chunk 1 (samples 320..640), heard 160 samples later at half amplitude.
        assert!(heard[..160].iter().all(|&x| x == 0.0));
        assert!(heard[160..].iter().all(|&x| (x - 0.5).abs() < 1e-3));
        room.read().unwrap();
        room.read().unwrap();
        assert!(room.finished());
        room.finish().unwrap();
        let written = iris_audio::read_wav(&out).unwrap();
        assert_eq!(written.samples.len(), CHUNK * 4);
        assert!(written.samples[CHUNK] > 0.99 && written.samples[CHUNK - 1] == 0.0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn echo_settings_are_checked() {
        assert!(Echo::parse("-12,40").is_ok());
        assert!(Echo::parse("loud").is_err());
        assert!(Echo::parse("-12,99999").is_err());
    }
}
