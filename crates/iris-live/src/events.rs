//! The loop's events on the media clock: one stream that the JSONL file, the panel, `/metrics`
//! and `iris bench loop` all read, so a latency figure never comes from a second code path.

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::controller::Secs;

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    Wake {
        word: String,
        score: f32,
    },
    SpeechStart,
    SpeechEnd,
    EndOfTurn,
    Partial {
        text: String,
    },
    Transcript {
        text: String,
    },
    LlmFirstToken,
    Sentence {
        text: String,
    },
    AudioStart,
    AudioStop,
    BargeIn,
    /// The answer paused: a wake word's score rose part of the way (to `score`).
    Hold {
        score: f32,
    },
    /// It was not the wake word: the answer goes on from where it paused.
    Resume,
    /// What was actually played of the answer.
    Answer {
        text: String,
    },
    Error {
        message: String,
    },
    /// A timer came due: it rings, then says what it was for.
    Timer {
        text: String,
    },
    /// The ringing ended (stopped, or after its minute).
    TimerStop,
    /// Short speech while Iris talked or rang was a stop request ("stop", "never mind").
    Stop {
        text: String,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Wake { .. } => "wake",
            EventKind::SpeechStart => "speech_start",
            EventKind::SpeechEnd => "speech_end",
            EventKind::EndOfTurn => "end_of_turn",
            EventKind::Partial { .. } => "partial",
            EventKind::Transcript { .. } => "transcript",
            EventKind::LlmFirstToken => "llm_first_token",
            EventKind::Sentence { .. } => "sentence",
            EventKind::AudioStart => "audio_start",
            EventKind::AudioStop => "audio_stop",
            EventKind::BargeIn => "barge_in",
            EventKind::Hold { .. } => "hold",
            EventKind::Resume => "resume",
            EventKind::Answer { .. } => "answer",
            EventKind::Error { .. } => "error",
            EventKind::Timer { .. } => "timer",
            EventKind::TimerStop => "timer_stop",
            EventKind::Stop { .. } => "stop",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Media seconds since the loop started.
    pub t: Secs,
    /// The turn it belongs to, if any.
    pub turn: Option<u64>,
    pub kind: EventKind,
}

impl Event {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("t".into(), json!((self.t * 1000.0).round() / 1000.0));
        m.insert("event".into(), json!(self.kind.name()));
        if let Some(turn) = self.turn {
            m.insert("turn".into(), json!(turn));
        }
        match &self.kind {
            EventKind::Wake { word, score } => {
                m.insert("word".into(), json!(word));
                m.insert("score".into(), json!((f64::from(*score) * 1e4).round() / 1e4));
            }
            EventKind::Hold { score } => {
                m.insert("score".into(), json!((f64::from(*score) * 1e4).round() / 1e4));
            }
            EventKind::Partial { text }
            | EventKind::Transcript { text }
            | EventKind::Sentence { text }
            | EventKind::Answer { text }
            | EventKind::Timer { text }
            | EventKind::Stop { text } => {
                m.insert("text".into(), json!(text));
            }
            EventKind::Error { message } => {
                m.insert("message".into(), json!(message));
            }
            _ => {}
        }
        Value::Object(m)
    }
}

/// Where events go. A sink must not block the loop for long.
pub trait EventSink: Send {
    fn event(&mut self, event: &Event);
}

impl<F: FnMut(&Event) + Send> EventSink for F {
    fn event(&mut self, event: &Event) {
        self(event)
    }
}

/// One JSON object a line. A write error is reported once on stderr and the loop goes on:
/// losing the log must not stop the assistant.
pub struct JsonLines<W: Write + Send> {
    out: W,
    failed: bool,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out, failed: false }
    }
}

impl<W: Write + Send> EventSink for JsonLines<W> {
    fn event(&mut self, event: &Event) {
        if self.failed {
            return;
        }
        let result = writeln!(self.out, "{}", event.to_json()).and_then(|()| self.out.flush());
        if let Err(e) = result {
            eprintln!("warning: cannot write the events file ({e}); the loop goes on without it");
            self.failed = true;
        }
    }
}

/// Per-turn latencies on the media clock, from the event stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnTimes {
    pub turn: u64,
    pub speech_end: Option<Secs>,
    pub end_of_turn: Option<Secs>,
    pub transcript: Option<Secs>,
    pub llm_first_token: Option<Secs>,
    pub sentence: Option<Secs>,
    pub audio_start: Option<Secs>,
    pub transcript_text: String,
    pub answer_text: String,
}

impl TurnTimes {
    /// End of the user's speech to the first sound of the answer.
    pub fn response(&self) -> Option<Secs> {
        Some(self.audio_start? - self.speech_end?)
    }
}

/// Turns a [`Timeline`] keeps: a loop that runs for days must not grow with every question.
const KEPT_TURNS: usize = 64;

/// Gathers [`TurnTimes`] for the latest turns from the events.
#[derive(Default)]
pub struct Timeline {
    pub turns: Vec<TurnTimes>,
}

impl Timeline {
    pub fn record(&mut self, e: &Event) {
        let Some(turn) = e.turn else { return };
        let pos = match self.turns.iter().position(|t| t.turn == turn) {
            Some(p) => p,
            None => {
                if self.turns.len() >= KEPT_TURNS {
                    self.turns.remove(0);
                }
                self.turns.push(TurnTimes { turn, ..TurnTimes::default() });
                self.turns.len() - 1
            }
        };
        let t = &mut self.turns[pos];
        let first = |slot: &mut Option<Secs>| {
            slot.get_or_insert(e.t);
        };
        match &e.kind {
            EventKind::SpeechEnd => t.speech_end = Some(e.t),
            EventKind::EndOfTurn => first(&mut t.end_of_turn),
            EventKind::Transcript { text } => {
                first(&mut t.transcript);
                t.transcript_text.clone_from(text);
            }
            EventKind::LlmFirstToken => first(&mut t.llm_first_token),
            EventKind::Sentence { .. } => first(&mut t.sentence),
            EventKind::AudioStart => first(&mut t.audio_start),
            EventKind::Answer { text } => t.answer_text.clone_from(text),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_time_name_and_fields() {
        let e = Event { t: 1.23456, turn: Some(2), kind: EventKind::Transcript { text: "hi".into() } };
        assert_eq!(e.to_json().to_string(), r#"{"event":"transcript","t":1.235,"text":"hi","turn":2}"#);
    }

    #[test]
    fn timeline_measures_speech_end_to_audio() {
        let mut tl = Timeline::default();
        for (t, kind) in
            [(1.0, EventKind::SpeechEnd), (1.5, EventKind::EndOfTurn), (2.1, EventKind::AudioStart), (2.5, EventKind::AudioStart)]
        {
            tl.record(&Event { t, turn: Some(1), kind });
        }
        assert!((tl.turns[0].response().unwrap() - 1.1).abs() < 1e-9);
    }
}
