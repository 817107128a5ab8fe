//! The live loop: capture → front end → turn controller → pipeline → speaker, one chunk at a
//! time on one thread, everything stamped on the capture clock.
//!
//! The loop holds the turn in progress and its answer's ledger (which sentence went to which
//! samples of the speaker), so when an answer stops, early or not, it knows what was heard.
//!
//! It also answers ahead: at each pause the recogniser decodes the whole question so far; the
//! loop starts answering that text at once, as a turn of its own whose audio is held back, while
//! the end of the turn is still being decided. If the user goes on speaking, that answer is
//! withdrawn (and forgotten by the language model); if the turn ends there, it is the answer,
//! already made or well under way, so the reply starts sooner by what the pause took.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use iris_backend::TurnDetector;
use iris_frames::{AudioChunk, Envelope, Frame, TurnId};
use iris_pipeline::{Pipeline, Turns};

use crate::controller::{Action, Controller, Secs};
use crate::events::{Event, EventKind, EventSink, Timeline};
use crate::front::{FrontEnd, Heard};
use crate::io::{Capture, IoError, Speaker};
use crate::ledger::{played_text, Spoken};

mod alarm;
mod answer;
use alarm::{AnnounceWorker, StopWorker};
use answer::Ahead;

const RATE: u32 = 16_000;
/// Microphone audio kept for pre-roll and for checking short speech for "stop".
const RING: usize = 3 * RATE as usize;
/// After the input ends, an answer still being made gets this long to finish.
const DRAIN_LIMIT: Secs = 120.0;

fn secs(samples: u64) -> Secs {
    samples as f64 / f64::from(RATE)
}

struct Current {
    /// The turn the user's speech goes to (and the events' turn).
    id: TurnId,
    /// The turn whose answer is played: `id`, or the answer made ahead once it is taken.
    answer: TurnId,
    /// Where in the turn the pipeline was last told speech stopped, while none followed.
    pause: Option<Duration>,
    ahead: Option<Ahead>,
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
    /// The echo canceller's enhancement (dB) and the delay it found (ms), when one ran.
    pub echo_erle_db: Option<f64>,
    pub echo_delay_ms: Option<i32>,
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
    /// The latest score that stirred (what a hold reports).
    stir_score: f32,
    errors: usize,
    /// Polled each chunk: a push-to-talk request (a panel button, Enter on a terminal).
    talk: Option<Box<dyn FnMut() -> bool + 'a>>,
    /// The media position (samples), published each chunk for timers on the loop's clock.
    clock: Option<Arc<AtomicU64>>,
    /// Polled each chunk: timers that came due.
    alarms: Option<Box<dyn FnMut() -> Vec<String> + 'a>>,
    announcer: Option<AnnounceWorker>,
    ringing: Option<crate::ring::Ringing>,
    stop_check: Option<StopWorker>,
    /// Where speech began while an answer or a ring played.
    stop_from: Option<Secs>,
    /// A stop check or a reminder is being worked on.
    checking: bool,
    /// Takes what the speaker played out of what the microphone heard.
    echo: Option<Box<dyn iris_backend::EchoCanceller + 'a>>,
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
            stir_score: 0.0,
            errors: 0,
            talk: None,
            clock: None,
            alarms: None,
            announcer: None,
            ringing: None,
            stop_check: None,
            stop_from: None,
            checking: false,
            echo: None,
        }
    }

    /// Cancels the speaker's echo from the microphone before anything hears it.
    pub fn with_echo_canceller(mut self, echo: Box<dyn iris_backend::EchoCanceller + 'a>) -> Self {
        self.echo = Some(echo);
        self
    }

    /// Publishes the loop's media position (16 kHz samples) here each chunk.
    pub fn with_clock(mut self, clock: Arc<AtomicU64>) -> Self {
        self.clock = Some(clock);
        self
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
            // Real time while anything is under way, so its work shows on the media clock.
            capture.pace(self.current.is_some() || self.ringing.is_some() || self.checking);
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
                let idle = self.current.is_none() && self.speaker.pending() == 0 && self.ringing.is_none();
                if idle || self.now() - at > DRAIN_LIMIT {
                    break;
                }
            }
        }
        self.drop_current();
        let words = self.front.words().to_vec();
        Summary {
            seconds: self.now(),
            wakes: self.wakes,
            max_wake_scores: words.into_iter().zip(self.front.max_scores.iter().copied()).collect(),
            turns: std::mem::take(&mut self.timeline.turns),
            errors: self.errors,
            echo_erle_db: self.echo.as_ref().and_then(|e| e.erle_db()),
            echo_delay_ms: self.echo.as_ref().and_then(|e| e.delay_ms()),
        }
    }

    /// One chunk of microphone audio through the loop.
    pub fn step(&mut self, chunk: &[f32]) {
        let cleaned = self.echo.as_mut().map(|aec| {
            aec.render(&self.speaker.take_played());
            aec.cancel(chunk)
        });
        let chunk = cleaned.as_deref().unwrap_or(chunk);
        let start = self.pos;
        self.pos += chunk.len() as u64;
        if let Some(clock) = &self.clock {
            clock.store(self.pos, Ordering::Relaxed);
        }
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
            if let Heard::Stir { score, .. } = &h {
                self.stir_score = *score;
            }
            let actions = match &h {
                Heard::Wake { at, .. } => self.controller.wake(*at),
                Heard::Stir { at, .. } => self.controller.stir(*at),
                Heard::SpeechStart { at } => self.controller.speech_start(*at),
                Heard::SpeechEnd { at } => self.controller.speech_end(*at),
                // The recogniser's business only (mark_speech): the turn waits for the pause.
                Heard::Lull { .. } | Heard::LullOver { .. } => Vec::new(),
            };
            self.apply(actions);
            self.mark_speech(&h);
            match &h {
                Heard::Wake { .. } => self.woken(),
                Heard::SpeechStart { at } => self.watch_for_stop(Some(*at), None),
                Heard::SpeechEnd { at } => self.watch_for_stop(None, Some(*at)),
                Heard::Stir { .. } | Heard::Lull { .. } | Heard::LullOver { .. } => {}
            }
            match h {
                Heard::Wake { at, word, score } => {
                    self.wakes += 1;
                    self.emit(at, EventKind::Wake { word, score });
                }
                Heard::SpeechStart { at } => self.emit(at, EventKind::SpeechStart),
                Heard::SpeechEnd { at } => self.emit(at, EventKind::SpeechEnd),
                Heard::Stir { .. } | Heard::Lull { .. } | Heard::LullOver { .. } => {}
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
        self.alarm_step();
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
                    // Nobody spoke since the pause: the answer made ahead is the answer.
                    let ahead = self.current.as_mut().filter(|c| !marked && c.pause.is_some()).and_then(|c| c.ahead.take());
                    let t = self.now();
                    match ahead {
                        Some(ahead) => self.take_ahead(ahead, t),
                        None => {
                            self.send(Frame::EndOfTurn, end);
                            self.emit(t, EventKind::EndOfTurn);
                        }
                    }
                }
                Action::CancelTurn => self.drop_current(),
                Action::CheckTurn => self.check_turn(),
                Action::BargeIn => self.barge_in(),
                Action::Hold | Action::Resume => {
                    let hold = action == Action::Hold;
                    self.speaker.hold(hold);
                    let t = self.now();
                    self.emit(t, if hold { EventKind::Hold { score: self.stir_score } } else { EventKind::Resume });
                }
            }
        }
    }

    /// Tells the pipeline where the question's speech starts and pauses, so recognition can
    /// work during a pause while the end of the turn is still being decided. A lull counts as a
    /// pause here (the recogniser starts sooner, and the answer ahead with it); its end, as speech.
    fn mark_speech(&mut self, heard: &Heard) {
        let listening = matches!(self.controller.state(), crate::controller::State::Listening { .. });
        let Some(cur) = self.current.as_ref().filter(|c| c.collecting) else { return };
        let (want, at) = match heard {
            Heard::SpeechStart { at } | Heard::LullOver { at } => (listening, *at),
            Heard::SpeechEnd { at } | Heard::Lull { at } => (false, *at),
            Heard::Wake { .. } | Heard::Stir { .. } => return,
        };
        if want != cur.marked {
            let sample = ((at * f64::from(RATE)) as u64).max(cur.from);
            let pts = Duration::from_secs_f64(secs(sample - cur.from));
            if let Some(cur) = self.current.as_mut() {
                cur.marked = want;
                cur.pause = (!want).then_some(pts);
                // The user went on: what was answered ahead no longer answers them.
                if let Some(ahead) = cur.ahead.take().filter(|_| want) {
                    self.turns.withdraw(ahead.id);
                }
            }
            self.send(if want { Frame::SpeechStarted } else { Frame::SpeechStopped }, sample);
        }
    }

    /// Cancels the turn in progress, the answer made ahead with it.
    fn drop_current(&mut self) {
        if let Some(cur) = self.current.take() {
            self.pipeline.cancel(cur.id);
            self.pipeline.cancel(cur.answer);
            if let Some(ahead) = cur.ahead {
                self.turns.withdraw(ahead.id);
            }
        }
    }

    fn start_turn(&mut self, from: Secs) {
        self.drop_current();
        let ring_start = self.pos - self.ring.len() as u64;
        let from = ((from * f64::from(RATE)) as u64).clamp(ring_start, self.pos);
        let turn = self.turns.begin();
        let pre_roll: Vec<f32> = self.ring.iter().skip((from - ring_start) as usize).copied().collect();
        self.current = Some(Current {
            id: turn.id,
            answer: turn.id,
            pause: None,
            ahead: None,
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
        self.speaker.hold(false);
        let t = self.now();
        self.emit(t, EventKind::BargeIn);
        let Some(cur) = self.current.as_ref() else { return };
        let (started, text, answer) = (cur.audio_started, played_text(&cur.ledger, stopped), cur.answer);
        self.turns.interrupt(answer, text.clone());
        if started {
            self.emit(t, EventKind::AudioStop);
        }
        self.emit(t, EventKind::Answer { text });
        self.drop_current();
    }
}
