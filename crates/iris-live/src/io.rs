//! Audio in and out of the loop: a [`Capture`] gives the microphone as 16 kHz mono chunks, and a
//! [`Speaker`] is the queue that playback (a device or the simulated room) pulls from.
//!
//! The queue is the one place that knows what was really played: `pull` advances the played
//! position, and `flush` drops everything not yet handed to the device, so a barge-in stops the
//! sound within one device buffer and the loop knows where it stopped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The device is gone or never was; the loop reopens it with back-off.
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    File(String),
}

/// The microphone: blocks until the next chunk (about 20 ms) of 16 kHz mono audio.
pub trait Capture: Send {
    fn read(&mut self) -> Result<Vec<f32>, IoError>;

    /// The input ended for good (a file consumed); the loop drains and stops.
    fn finished(&self) -> bool {
        false
    }

    /// Run in real time (`true`) or as fast as the loop goes. Devices always run in real time.
    fn pace(&mut self, _real_time: bool) {}
}

struct Queue {
    rate: u32,
    samples: VecDeque<f32>,
    /// Samples handed to the device since the start.
    played: u64,
    /// What was handed to the device (silence included) since the loop last took it: the echo
    /// canceller's far-end reference. At most a second is kept.
    log: VecDeque<f32>,
    /// Playback paused where it is: silence is played and nothing is lost.
    held: bool,
}

/// A flushable queue of mono samples at one rate, shared by the loop and the playback side.
#[derive(Clone)]
pub struct Speaker(Arc<Mutex<Queue>>);

impl Speaker {
    pub fn new(rate: u32) -> Self {
        Self(Arc::new(Mutex::new(Queue { rate, samples: VecDeque::new(), played: 0, log: VecDeque::new(), held: false })))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn rate(&self) -> u32 {
        self.lock().rate
    }

    /// Queues samples after what is queued; returns the stream position of the first one.
    pub fn queue(&self, samples: &[f32]) -> u64 {
        let mut q = self.lock();
        let at = q.played + q.samples.len() as u64;
        q.samples.extend(samples);
        at
    }

    /// Mixes `samples` in `delay` samples after the next one to be played (over whatever is
    /// queued), so a timer rings at once whatever is playing. Returns the position after them.
    pub fn mix(&self, samples: &[f32], delay: usize) -> u64 {
        let mut q = self.lock();
        let end = delay + samples.len();
        if q.samples.len() < end {
            q.samples.resize(end, 0.0);
        }
        for (x, s) in q.samples.iter_mut().skip(delay).zip(samples) {
            *x = (*x + s).clamp(-1.0, 1.0);
        }
        q.played + end as u64
    }

    /// Drops everything not yet played; returns the position where playback stopped.
    pub fn flush(&self) -> u64 {
        let mut q = self.lock();
        q.samples.clear();
        q.played
    }

    /// Pauses playback where it is (`true`) or goes on from there (`false`): the loop holds
    /// the answer while it is not yet sure the user is interrupting.
    pub fn hold(&self, held: bool) {
        self.lock().held = held;
    }

    /// Fills `out` with the next samples (silence when the queue is empty or held). Called by
    /// playback.
    pub fn pull(&self, out: &mut [f32]) {
        let mut q = self.lock();
        let n = if q.held { 0 } else { out.len().min(q.samples.len()) };
        for (o, s) in out.iter_mut().zip(q.samples.drain(..n)) {
            *o = s;
        }
        out[n..].iter_mut().for_each(|o| *o = 0.0);
        q.played += n as u64;
        q.log.extend(out.iter());
        let excess = q.log.len().saturating_sub(q.rate as usize);
        q.log.drain(..excess);
    }

    /// What was played (silence included) since the last call: the echo canceller's reference.
    pub fn take_played(&self) -> Vec<f32> {
        self.lock().log.drain(..).collect()
    }

    /// Stream position of the next sample to be played.
    pub fn played(&self) -> u64 {
        self.lock().played
    }

    /// Samples queued and not yet played.
    pub fn pending(&self) -> usize {
        self.lock().samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_pull_and_flush_track_the_played_position() {
        let s = Speaker::new(16_000);
        assert_eq!(s.queue(&[1.0; 100]), 0);
        assert_eq!(s.queue(&[2.0; 100]), 100);
        let mut out = [0.0; 150];
        s.pull(&mut out);
        assert_eq!((out[99], out[100]), (1.0, 2.0));
        assert_eq!(s.flush(), 150);
        s.pull(&mut out);
        assert!(out.iter().all(|&x| x == 0.0));
        assert_eq!(s.queue(&[3.0]), 150);
        assert_eq!(s.mix(&[0.5, 0.5], 0), 152);
        assert_eq!(s.mix(&[0.25], 3), 154);
        let mut out = [0.0; 4];
        s.pull(&mut out);
        assert_eq!(out, [1.0, 0.5, 0.0, 0.25]);
    }

    #[test]
    fn a_held_queue_plays_silence_and_goes_on_where_it_was() {
        let s = Speaker::new(16_000);
        s.queue(&[1.0, 2.0, 3.0]);
        let mut out = [0.0; 1];
        s.pull(&mut out);
        s.hold(true);
        s.pull(&mut out);
        assert_eq!((out[0], s.played(), s.pending()), (0.0, 1, 2));
        s.hold(false);
        s.pull(&mut out);
        assert_eq!((out[0], s.played()), (2.0, 2));
    }
}
