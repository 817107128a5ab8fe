//! What the loop does besides turns: a timer that comes due rings through the speaker (a chime,
//! then what it was for, again every few seconds until someone says stop or the wake word, or a
//! minute has passed), and short speech while Iris talks or rings is checked for "stop".
//!
//! The slow parts (the reminder's voice, the check's recogniser) run on their own threads
//! ([`Worker`]), so the loop keeps hearing the room while they work.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::OnceLock;

use crate::controller::Secs;

/// How long a timer rings at most.
pub const RING_FOR: Secs = 60.0;
/// Silence between two rounds of chime and reminder.
const GAP: Secs = 2.0;
/// Between the chime and the reminder.
const BREATH: Secs = 0.25;
/// Speech longer than this while Iris talks is not a stop request (and is not checked).
pub const STOP_MAX: Secs = 2.0;

/// Synthesises a sentence: (samples, rate).
pub type Announce = Box<dyn FnMut(&str) -> Result<(Vec<f32>, u32), String> + Send>;
/// Transcribes a short 16 kHz utterance.
pub type Transcribe = Box<dyn FnMut(&[f32]) -> Result<String, String> + Send>;

/// One function on its own thread: requests in, results out, never blocking the loop.
pub(crate) struct Worker<I, O> {
    tx: Option<Sender<I>>,
    rx: Receiver<O>,
    /// Joined on drop, so the function (and any model it loads) is gone before the process
    /// exits: ONNX Runtime torn down at exit under a thread still inside it segfaults.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<I, O> Drop for Worker<I, O> {
    fn drop(&mut self) {
        // Closing the requests ends the thread's loop after the one in hand.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Worker<I, O> {
    pub(crate) fn spawn(name: &str, mut f: impl FnMut(I) -> O + Send + 'static) -> Self {
        let (tx, requests) = channel::<I>();
        let (results, rx) = channel::<O>();
        let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
            for request in requests {
                if results.send(f(request)).is_err() {
                    return;
                }
            }
        });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                // Without the thread every request goes unanswered; the loop itself goes on.
                eprintln!("iris: cannot start the {name} thread: {e}");
                None
            }
        };
        Self { tx: Some(tx), rx, thread }
    }

    pub(crate) fn send(&self, request: I) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(request);
        }
    }

    pub(crate) fn try_recv(&self) -> Option<O> {
        self.rx.try_recv().ok()
    }
}

/// The chime in the repo (`assets/chime.wav`, 0.6 s at 16 kHz), decoded once.
pub fn chime() -> &'static [f32] {
    static CHIME: OnceLock<Vec<f32>> = OnceLock::new();
    CHIME.get_or_init(|| pcm16_data(include_bytes!("../assets/chime.wav")))
}

/// The 16-bit samples of a canonical PCM WAV's `data` chunk.
fn pcm16_data(wav: &[u8]) -> Vec<f32> {
    let Some(at) = wav.windows(4).position(|w| w == b"data") else { return Vec::new() };
    let body = wav.get(at + 8..).unwrap_or_default();
    body.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
}

/// A timer ringing.
pub(crate) struct Ringing {
    pub(crate) label: String,
    pub(crate) started: Secs,
    /// When the next round may start.
    pub(crate) next: Secs,
    /// The reminder, once synthesised, at the speaker's rate.
    reminder: Option<Vec<f32>>,
    /// The first round rang without its reminder, which is owed from this time on.
    owed: Option<Secs>,
}

impl Ringing {
    pub(crate) fn new(label: String, now: Secs) -> Self {
        Self { label, started: now, next: now, reminder: None, owed: None }
    }

    /// What is said after the chime.
    pub(crate) fn sentence(&self) -> String {
        format!("Your {} is done.", self.label)
    }

    /// The next round (chime, a breath, the reminder) if one is due at `now`. The first rings
    /// at once; if the reminder's voice is not ready yet, it follows when it is
    /// ([`Ringing::reminder_ready`]).
    pub(crate) fn round(&mut self, now: Secs, rate: u32) -> Option<Vec<f32>> {
        if now < self.next || now - self.started >= RING_FOR || self.owed.is_some() {
            return None;
        }
        let mut audio = iris_audio::resample(chime(), 16_000, rate);
        audio.extend(std::iter::repeat_n(0.0, (BREATH * f64::from(rate)) as usize));
        match &self.reminder {
            Some(reminder) => audio.extend_from_slice(reminder),
            None => self.owed = Some(now + audio.len() as f64 / f64::from(rate)),
        }
        self.next = now + audio.len() as f64 / f64::from(rate) + GAP;
        Some(audio)
    }

    /// The reminder's voice arrived: kept for the rounds to come, and, if the first round rang
    /// without it, returned with how many samples from now it should start.
    pub(crate) fn reminder_ready(&mut self, reminder: Vec<f32>, now: Secs, rate: u32) -> Option<(Vec<f32>, usize)> {
        self.reminder = Some(reminder.clone());
        let at = self.owed.take()?;
        let start = at.max(now);
        self.next = start + reminder.len() as f64 / f64::from(rate) + GAP;
        Some((reminder, ((start - now) * f64::from(rate)) as usize))
    }

    pub(crate) fn over(&self, now: Secs) -> bool {
        now - self.started >= RING_FOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chime_is_in_the_repo() {
        let c = chime();
        assert_eq!(c.len(), 9600);
        assert!(c.iter().any(|s| s.abs() > 0.3));
    }

    #[test]
    fn rounds_repeat_until_the_minute_is_over() {
        let mut r = Ringing::new("timer for 10 seconds".into(), 10.0);
        assert_eq!(r.round(10.0, 16_000).unwrap().len(), 9600 + 4000, "the chime rings at once");
        assert!(r.round(10.5, 16_000).is_none(), "the reminder is owed first");
        let (reminder, delay) = r.reminder_ready(vec![0.1; 16_000], 10.2, 16_000).unwrap();
        assert_eq!((reminder.len(), delay), (16_000, 10_400), "after the chime and a breath");
        assert!((r.next - (10.85 + 1.0 + 2.0)).abs() < 1e-9);
        assert!(r.round(12.0, 16_000).is_none());
        assert_eq!(r.round(r.next, 16_000).unwrap().len(), 9600 + 4000 + 16_000);
        assert!(r.round(70.0, 16_000).is_none() && r.over(70.0));
        assert_eq!(r.sentence(), "Your timer for 10 seconds is done.");
    }
}
