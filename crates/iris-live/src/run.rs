//! The live loop: capture → front end → turn controller → pipeline → speaker, one chunk at a
//! time on one thread, everything stamped on the capture clock.
//!
//! The loop holds the turn in progress and its answer's ledger (which sentence went to which
//! samples of the speaker), so when an answer stops, early or not, it knows what was heard.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use iris_backend::TurnDetector;
use iris_frames::{AudioChunk, Envelope, Frame, TurnId};
use iris_pipeline::{Pipeline, PipelineEvent, Turns};

use crate::controller::{Action, Controller, Secs};
use crate::events::{Event, EventKind, EventSink, Timeline};
use crate::front::{FrontEnd, Heard};
use crate::io::{Capture, IoError, Speaker};

const RATE: u32 = 16_000;
/// Microphone audio kept for pre-roll.
const RING: usize = 2 * RATE as usize;
/// After the input ends, an answer still being made gets this long to finish.
const DRAIN_LIMIT: Secs = 120.0;

fn secs(samples: u64) -> Secs {
    samples as f64 / f64::from(RATE)
}

/// One answered sentence and where its audio sits in the speaker's stream.
struct Spoken {
    text: String,
    start: Option<u64>,
    end: u64,
}

struct Current {
    id: TurnId,
    /// Media sample where the turn's audio starts (pts 0 in the pipeline).
    from: u64,
    collecting: bool,
    /// The pipeline was last told speech started (not stopped).
    marked: bool,
    /// The turn's audio, for the semantic end-of-turn check.
    audio: Vec<f32>,
    first_token: bool,
    pending: Vec<f32>,
    pending_rate: u32,
    ledger: Vec<Spoken>,
    first_sample: Option<u64>,
    audio_started: bool,
    pipeline_done: bool,
}

/// What a run heard and did.
#[derive(Debug, Default)]
pub struct Summary {
    pub seconds: Secs,
    pub wakes: usize,
    /// The highest score each wake word reached.
    pub max_wake_scores: Vec<(String, f32)>,
    pub turns: Vec<crate::events::TurnTimes>,
    pub errors: usize,
}

pub struct LiveLoop<'a> {
    pipeline: &'a Pipeline,
    turns: Arc<Turns>,
    front: FrontEnd,
    controller: Controller,
    detector: Option<Box<dyn TurnDetector>>,
    speaker: Speaker,
    sinks: Vec<Box<dyn EventSink + 'a>>,
    timeline: Timeline,
    ring: VecDeque<f32>,
    pos: u64,
    current: Option<Current>,
    wakes: usize,
    errors: usize,
    /// Polled each chunk: a push-to-talk request (a panel button, Enter on a terminal).
    talk: Option<Box<dyn FnMut() -> bool + 'a>>,
}

impl<'a> LiveLoop<'a> {
    pub fn new(
        pipeline: &'a Pipeline,
        front: FrontEnd,
        controller: Controller,
        detector: Option<Box<dyn TurnDetector>>,
        speaker: Speaker,
    ) -> Self {
        Self {
            turns: pipeline.turns().clone(),
            pipeline,
            front,
            controller,
            detector,
            speaker,
            sinks: Vec::new(),
            timeline: Timeline::default(),
            ring: VecDeque::with_capacity(RING),
            pos: 0,
            current: None,
            wakes: 0,
            errors: 0,
            talk: None,
        }
    }

    /// Polls `talk` once per chunk; `true` starts a turn as push to talk does.
    pub fn with_talk(mut self, talk: Box<dyn FnMut() -> bool + 'a>) -> Self {
        self.talk = Some(talk);
        self
    }

    pub fn with_sink(self, sink: impl EventSink + 'a) -> Self {
        self.with_boxed_sink(Box::new(sink))
    }

    pub fn with_boxed_sink(mut self, sink: Box<dyn EventSink + 'a>) -> Self {
        self.sinks.push(sink);
        self
    }

    fn emit(&mut self, t: Secs, kind: EventKind) {
        let event = Event { t, turn: self.current.as_ref().map(|c| c.id.0), kind };
        if matches!(event.kind, EventKind::Error { .. }) {
            self.errors += 1;
        }
        self.timeline.record(&event);
        for sink in &mut self.sinks {
            sink.event(&event);
        }
    }

    fn now(&self) -> Secs {
        secs(self.pos)
    }

    fn send(&mut self, frame: Frame, at: u64) {
        let Some(cur) = &self.current else { return };
        let pts = Duration::from_secs_f64(secs(at.saturating_sub(cur.from)));
        if self.pipeline.send(Envelope::new(cur.id, pts, frame)).is_err() {
            let t = self.now();
            self.emit(t, EventKind::Error { message: "the pipeline stopped".into() });
        }
    }

    /// Runs until the capture is finished and the last answer has played, or `stop` is set.
    pub fn run(mut self, capture: &mut dyn Capture, stop: &AtomicBool) -> Summary {
        let mut finished_at = None;
        let mut last_error: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            capture.pace(self.current.is_some());
            let chunk = match capture.read() {
                Ok(c) => c,
                Err(e) => {
                    // One line per distinct failure; the capture side reopens with back-off.
                    let message = e.to_string();
                    if last_error.as_deref() != Some(&message) {
                        let t = self.now();
                        self.emit(t, EventKind::Error { message: message.clone() });
                        last_error = Some(message);
                    }
                    if matches!(e, IoError::File(_)) || capture.finished() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            last_error = None;
            self.step(&chunk);
            if capture.finished() {
                let at = *finished_at.get_or_insert(self.now());
                let idle = self.current.is_none() && self.speaker.pending() == 0;
                if idle || self.now() - at > DRAIN_LIMIT {
                    break;
                }
            }
        }
        if let Some(cur) = self.current.take() {
            self.pipeline.cancel(cur.id);
        }
        let words = self.front.words().to_vec();
        Summary {
            seconds: self.now(),
            wakes: self.wakes,
            max_wake_scores: words.into_iter().zip(self.front.max_scores.iter().copied()).collect(),
            turns: std::mem::take(&mut self.timeline.turns),
            errors: self.errors,
        }
    }

    /// One chunk of microphone audio through the loop.
    pub fn step(&mut self, chunk: &[f32]) {
        let start = self.pos;
        self.pos += chunk.len() as u64;
        self.ring.extend(chunk);
        let excess = self.ring.len().saturating_sub(RING);
        self.ring.drain(..excess);
        let heard = match self.front.hear(chunk) {
            Ok(h) => h,
            Err(e) => {
                let t = self.now();
                self.emit(t, EventKind::Error { message: format!("front end: {e}") });
                Vec::new()
            }
        };
        for h in heard {
            let actions = match &h {
                Heard::Wake { at, .. } => self.controller.wake(*at),
                Heard::SpeechStart { at } => self.controller.speech_start(*at),
                Heard::SpeechEnd { at } => self.controller.speech_end(*at),
            };
            self.apply(actions);
            self.mark_speech(&h);
            match h {
                Heard::Wake { at, word, score } => {
                    self.wakes += 1;
                    self.emit(at, EventKind::Wake { word, score });
                }
                Heard::SpeechStart { at } => self.emit(at, EventKind::SpeechStart),
                Heard::SpeechEnd { at } => self.emit(at, EventKind::SpeechEnd),
            }
        }
        if self.current.as_ref().is_some_and(|c| c.collecting) {
            let from = self.current.as_ref().map_or(start, |c| c.from).max(start);
            let fresh = &chunk[(from - start) as usize..];
            if !fresh.is_empty() {
                if let Some(cur) = self.current.as_mut() {
                    cur.audio.extend_from_slice(fresh);
                }
                self.send(Frame::Audio(AudioChunk::new(RATE, fresh.to_vec())), from);
            }
        }
        if self.talk.as_mut().is_some_and(|poll| poll()) {
            self.push_to_talk();
        }
        let t = self.now();
        let actions = self.controller.tick(t);
        self.apply(actions);
        self.drain_pipeline();
        self.follow_playback();
    }

    /// Push to talk: start a turn now.
    pub fn push_to_talk(&mut self) {
        let actions = self.controller.push_to_talk(self.now());
        self.apply(actions);
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::StartTurn { from } => self.start_turn(from),
                Action::EndTurn { at } => {
                    let end = (at * f64::from(RATE)) as u64;
                    let marked = self.current.as_ref().is_some_and(|c| c.marked);
                    if let Some(cur) = self.current.as_mut() {
                        cur.collecting = false;
                        cur.marked = false;
                    }
                    if marked {
                        self.send(Frame::SpeechStopped, end);
                    }
                    self.send(Frame::EndOfTurn, end);
                    let t = self.now();
                    self.emit(t, EventKind::EndOfTurn);
                }
                Action::CancelTurn => {
                    if let Some(cur) = self.current.take() {
                        self.pipeline.cancel(cur.id);
                    }
                }
                Action::CheckTurn => self.check_turn(),
                Action::BargeIn => self.barge_in(),
            }
        }
    }

    /// Tells the pipeline where the question's speech starts and pauses, so recognition can
    /// work during a pause while the end of the turn is still being decided.
    fn mark_speech(&mut self, heard: &Heard) {
        let listening = matches!(self.controller.state(), crate::controller::State::Listening { .. });
        let Some(cur) = self.current.as_ref().filter(|c| c.collecting) else { return };
        let (want, at) = match heard {
            Heard::SpeechStart { at } => (listening, *at),
            Heard::SpeechEnd { at } => (false, *at),
            Heard::Wake { .. } => return,
        };
        if want != cur.marked {
            let sample = ((at * f64::from(RATE)) as u64).max(cur.from);
            if let Some(cur) = self.current.as_mut() {
                cur.marked = want;
            }
            self.send(if want { Frame::SpeechStarted } else { Frame::SpeechStopped }, sample);
        }
    }

    fn start_turn(&mut self, from: Secs) {
        if let Some(old) = self.current.take() {
            self.pipeline.cancel(old.id);
        }
        let ring_start = self.pos - self.ring.len() as u64;
        let from = ((from * f64::from(RATE)) as u64).clamp(ring_start, self.pos);
        let turn = self.turns.begin();
        let pre_roll: Vec<f32> = self.ring.iter().skip((from - ring_start) as usize).copied().collect();
        self.current = Some(Current {
            id: turn.id,
            from,
            collecting: true,
            marked: false,
            audio: pre_roll.clone(),
            first_token: false,
            pending: Vec::new(),
            pending_rate: RATE,
            ledger: Vec::new(),
            first_sample: None,
            audio_started: false,
            pipeline_done: false,
        });
        if !pre_roll.is_empty() {
            self.send(Frame::Audio(AudioChunk::new(RATE, pre_roll)), from);
        }
    }

    fn check_turn(&mut self) {
        let (Some(detector), Some(cur)) = (self.detector.as_mut(), self.current.as_ref()) else { return };
        match detector.complete_probability(&cur.audio) {
            Ok(p) => self.controller.turn_check(p),
            Err(e) => {
                // Without a verdict the pause rule decides.
                let t = self.now();
                self.emit(t, EventKind::Error { message: format!("end-of-turn check: {e}") });
            }
        }
    }

    fn barge_in(&mut self) {
        let stopped = self.speaker.flush();
        let t = self.now();
        self.emit(t, EventKind::BargeIn);
        let Some(cur) = self.current.as_ref() else { return };
        let (id, started, text) = (cur.id, cur.audio_started, played_text(&cur.ledger, stopped));
        self.pipeline.cancel(id);
        if started {
            self.emit(t, EventKind::AudioStop);
        }
        self.emit(t, EventKind::Answer { text });
        self.current = None;
        self.turns.finish(id);
    }

    fn drain_pipeline(&mut self) {
        while let Ok(event) = self.pipeline.recv_timeout(Duration::ZERO) {
            let t = self.now();
            let env = match event {
                PipelineEvent::Frame(env) => env,
                PipelineEvent::Error { stage, turn, message } => {
                    self.emit(t, EventKind::Error { message: format!("{stage}: {message}") });
                    // A stage that failed does not pass the end of its turn on: close it here.
                    if self.current.as_ref().is_some_and(|c| c.id == turn && !c.collecting) {
                        self.pipeline.cancel(turn);
                        if let Some(cur) = self.current.as_mut() {
                            cur.pipeline_done = true;
                        }
                    }
                    continue;
                }
            };
            let Some(cur) = self.current.as_mut().filter(|c| c.id == env.turn) else { continue };
            match env.frame {
                Frame::Transcript(tr) if tr.is_final => self.emit(t, EventKind::Transcript { text: tr.text }),
                Frame::Transcript(tr) => self.emit(t, EventKind::Partial { text: tr.text }),
                Frame::TextDelta(_) if !cur.first_token => {
                    cur.first_token = true;
                    self.emit(t, EventKind::LlmFirstToken);
                }
                Frame::Sentence(text) => {
                    self.flush_audio();
                    if let Some(cur) = self.current.as_mut() {
                        cur.ledger.push(Spoken { text: text.clone(), start: None, end: 0 });
                    }
                    self.emit(t, EventKind::Sentence { text });
                }
                Frame::Audio(chunk) => {
                    if chunk.sample_rate != cur.pending_rate && !cur.pending.is_empty() {
                        self.flush_audio();
                    }
                    if let Some(cur) = self.current.as_mut() {
                        cur.pending_rate = chunk.sample_rate;
                        cur.pending.extend_from_slice(&chunk.samples);
                    }
                }
                Frame::EndOfTurn => {
                    self.flush_audio();
                    if let Some(cur) = self.current.as_mut() {
                        cur.pipeline_done = true;
                    }
                }
                _ => {}
            }
        }
        self.flush_audio();
    }

    /// Resamples what the voice made so far to the speaker's rate and queues it.
    fn flush_audio(&mut self) {
        let Some(cur) = self.current.as_mut() else { return };
        if cur.pending.is_empty() {
            return;
        }
        let samples = iris_audio::resample(&std::mem::take(&mut cur.pending), cur.pending_rate, self.speaker.rate());
        let at = self.speaker.queue(&samples);
        let end = at + samples.len() as u64;
        cur.first_sample.get_or_insert(at);
        if cur.ledger.is_empty() {
            cur.ledger.push(Spoken { text: String::new(), start: None, end: 0 });
        }
        if let Some(last) = cur.ledger.last_mut() {
            last.start.get_or_insert(at);
            last.end = end;
        }
    }

    fn follow_playback(&mut self) {
        let played = self.speaker.played();
        let rate = f64::from(self.speaker.rate());
        let now = self.now();
        let Some(cur) = self.current.as_mut() else { return };
        if let Some(first) = cur.first_sample.filter(|&f| !cur.audio_started && played > f) {
            cur.audio_started = true;
            self.controller.answer_started();
            self.emit(now - (played - first) as f64 / rate, EventKind::AudioStart);
        }
        let Some(cur) = self.current.as_ref() else { return };
        let end = cur.ledger.last().map_or(0, |s| s.end);
        if cur.pipeline_done && played >= end {
            let started = cur.audio_started;
            let text = played_text(&cur.ledger, played);
            let id = cur.id;
            if started {
                self.emit(now - (played - end) as f64 / rate, EventKind::AudioStop);
            }
            self.emit(now, EventKind::Answer { text });
            self.controller.answer_done(now);
            self.turns.finish(id);
            self.current = None;
        }
    }
}

/// The answer as far as it was heard: whole sentences played, and of the one cut off, the words
/// up to where it stopped (in proportion to its audio).
fn played_text(ledger: &[Spoken], played: u64) -> String {
    let mut said: Vec<String> = Vec::new();
    for s in ledger.iter().filter(|s| !s.text.is_empty()) {
        let Some(start) = s.start else { break };
        if played >= s.end {
            said.push(s.text.trim().to_owned());
        } else if played > start {
            let words: Vec<&str> = s.text.split_whitespace().collect();
            let part = (played - start) as f64 / (s.end - start).max(1) as f64;
            let n = (words.len() as f64 * part).floor() as usize;
            if n > 0 {
                said.push(words[..n].join(" "));
            }
            break;
        } else {
            break;
        }
    }
    said.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_played_is_cut_at_the_word() {
        let ledger = vec![
            Spoken { text: "Paris is the capital.".into(), start: Some(0), end: 100 },
            Spoken { text: "It is in the north of France.".into(), start: Some(100), end: 200 },
        ];
        assert_eq!(played_text(&ledger, 200), "Paris is the capital. It is in the north of France.");
        assert_eq!(played_text(&ledger, 150), "Paris is the capital. It is in");
        assert_eq!(played_text(&ledger, 50), "Paris is");
        assert_eq!(played_text(&ledger, 0), "");
    }
}
