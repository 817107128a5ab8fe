//! The loop's side of timers ringing and of "stop" said while Iris talks or rings: when each
//! starts and ends. The rounds and the workers are in `ring.rs`; the rule of what stops what is
//! here, in one place:
//!
//! - a timer that comes due rings at once, over whatever is playing;
//! - the wake word, or a turn whose words ask to stop, ends the ringing;
//! - short speech (≤ 2 s) while an answer or a ring plays is transcribed on the side; if it asks
//!   to stop, the answer is cut as a barge-in cuts it and the ringing ends. It never becomes a
//!   turn, so it never reaches the language model.

use iris_pipeline::stages::asks_to_stop;

use super::LiveLoop;
use crate::controller::Secs;
use crate::events::EventKind;
use crate::ring::{Announce, Ringing, Transcribe, Worker, STOP_MAX};

pub(super) type AnnounceWorker = Worker<String, Result<(Vec<f32>, u32), String>>;
pub(super) type StopWorker = Worker<Vec<f32>, Result<String, String>>;

impl<'a> LiveLoop<'a> {
    /// Timers: `due` is polled each chunk for the labels of timers that came due; `announce`
    /// says what each was for.
    pub fn with_alarms(mut self, due: Box<dyn FnMut() -> Vec<String> + 'a>, mut announce: Announce) -> Self {
        self.alarms = Some(due);
        self.announcer = Some(Worker::spawn("iris-announce", move |text: String| announce(&text)));
        self
    }

    /// Short speech while Iris talks or rings is transcribed by `transcribe` and checked for a
    /// stop request.
    pub fn with_stop_check(mut self, mut transcribe: Transcribe) -> Self {
        self.stop_check = Some(Worker::spawn("iris-stop-check", move |audio: Vec<f32>| transcribe(&audio)));
        self
    }

    /// Whether something is playing that "stop" would end.
    fn stoppable(&self) -> bool {
        self.ringing.is_some() || (self.controller.answering() && !self.current.as_ref().is_some_and(|c| c.collecting))
    }

    /// Voice activity while an answer or a ring plays: remembered, and checked when it ends.
    pub(super) fn watch_for_stop(&mut self, start: Option<Secs>, end: Option<Secs>) {
        if self.stop_check.is_none() {
            return;
        }
        if let Some(at) = start {
            self.stop_from = self.stoppable().then_some(at);
        }
        let (Some(end), Some(from)) = (end, self.stop_from) else { return };
        self.stop_from = None;
        if end - from > STOP_MAX {
            return;
        }
        // The utterance with a little air either side, from the microphone's ring buffer.
        let rate = f64::from(super::RATE);
        let first = ((from - 0.15).max(0.0) * rate) as u64;
        let ring_start = self.pos - self.ring.len() as u64;
        let skip = first.saturating_sub(ring_start) as usize;
        let audio: Vec<f32> = self.ring.iter().skip(skip).copied().collect();
        if let Some(worker) = &self.stop_check {
            worker.send(audio);
            self.checking = true;
        }
    }

    /// The wake word was heard: a ring ends, and speech so far was the wake word, not "stop".
    pub(super) fn woken(&mut self) {
        self.stop_from = None;
        self.end_ringing(true);
    }

    /// A turn's words were a stop request ("Hey Jarvis, stop").
    pub(super) fn turn_asked_to_stop(&mut self, text: &str) {
        if asks_to_stop(text) {
            self.end_ringing(true);
        }
    }

    fn end_ringing(&mut self, silence: bool) {
        if self.ringing.take().is_some() {
            if silence {
                self.speaker.flush();
            }
            let t = self.now();
            self.emit(t, EventKind::TimerStop);
        }
    }

    /// Once a chunk: timers that came due, the reminder's voice, the next round, the side
    /// check's verdict.
    pub(super) fn alarm_step(&mut self) {
        let now = self.now();
        let due = self.alarms.as_mut().map(|poll| poll()).unwrap_or_default();
        for label in due {
            let ringing = Ringing::new(label, now);
            if let Some(announcer) = &self.announcer {
                announcer.send(ringing.sentence());
            }
            self.emit(now, EventKind::Timer { text: ringing.label.clone() });
            self.ringing = Some(ringing);
        }
        if let Some(result) = self.announcer.as_ref().and_then(|w| w.try_recv()) {
            match result {
                Ok((samples, rate)) => {
                    let speaker_rate = self.speaker.rate();
                    let voice = iris_audio::resample(&samples, rate, speaker_rate);
                    if let Some((audio, delay)) = self.ringing.as_mut().and_then(|r| r.reminder_ready(voice, now, speaker_rate)) {
                        self.speaker.mix(&audio, delay);
                    }
                }
                Err(e) => self.emit(now, EventKind::Error { message: format!("timer reminder: {e}") }),
            }
        }
        let rate = self.speaker.rate();
        if let Some(audio) = self.ringing.as_mut().and_then(|r| r.round(now, rate)) {
            self.speaker.mix(&audio, 0);
        }
        if self.ringing.as_ref().is_some_and(|r| r.over(now)) {
            self.end_ringing(false);
        }
        if let Some(result) = self.stop_check.as_ref().and_then(|w| w.try_recv()) {
            self.checking = false;
            match result {
                Ok(text) if asks_to_stop(&text) => {
                    self.emit(now, EventKind::Stop { text });
                    let actions = self.controller.stop();
                    self.apply(actions);
                    self.end_ringing(true);
                }
                Ok(_) => {}
                Err(e) => self.emit(now, EventKind::Error { message: format!("stop check: {e}") }),
            }
        }
    }
}
