//! The frames that flow through an Iris pipeline.
//!
//! A small closed set: adding a variant is a design decision, not a convenience. Every frame
//! travels in an [`Envelope`] that names the turn it belongs to and its media timestamp, so a
//! cancelled turn's frames can be recognised and dropped wherever they sit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Identifies one user turn (one question and its answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TurnId(pub u64);

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "turn {}", self.0)
    }
}

/// Mono PCM audio, 10–30 ms per chunk in live pipelines (whole clips are split before entry).
#[derive(Clone, Debug, PartialEq)]
pub struct AudioChunk {
    pub sample_rate: u32,
    pub samples: Arc<[f32]>,
}

impl AudioChunk {
    pub fn new(sample_rate: u32, samples: Vec<f32>) -> Self {
        Self { sample_rate, samples: samples.into() }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate.max(1)))
    }
}

/// An RGB8 image, already decoded and size-checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFrame {
    pub width: u32,
    pub height: u32,
    pub rgb: Arc<[u8]>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub is_final: bool,
    /// ISO 639-1 code when the recogniser knows it.
    pub language: Option<String>,
}

/// The closed set of frames.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Audio(AudioChunk),
    SpeechStarted,
    SpeechStopped,
    Transcript(Transcript),
    Image(ImageFrame),
    /// Text the user typed, or that a tool adds, handed to the LLM with the transcript.
    UserText(String),
    TextDelta(String),
    Sentence(String),
    /// The last frame of a turn: every stage forwards it after flushing what it holds.
    EndOfTurn,
}

impl Frame {
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Audio(_) => FrameKind::Audio,
            Frame::SpeechStarted => FrameKind::SpeechStarted,
            Frame::SpeechStopped => FrameKind::SpeechStopped,
            Frame::Transcript(_) => FrameKind::Transcript,
            Frame::Image(_) => FrameKind::Image,
            Frame::UserText(_) => FrameKind::UserText,
            Frame::TextDelta(_) => FrameKind::TextDelta,
            Frame::Sentence(_) => FrameKind::Sentence,
            Frame::EndOfTurn => FrameKind::EndOfTurn,
        }
    }
}

/// A frame with the turn it belongs to and its position on the media clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub turn: TurnId,
    /// Media time since the turn started: audio position, not wall clock.
    pub pts: Duration,
    pub frame: Frame,
}

impl Envelope {
    pub fn new(turn: TurnId, pts: Duration, frame: Frame) -> Self {
        Self { turn, pts, frame }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    Audio,
    SpeechStarted,
    SpeechStopped,
    Transcript,
    Image,
    UserText,
    TextDelta,
    Sentence,
    EndOfTurn,
}

impl FrameKind {
    pub const ALL: [FrameKind; 9] = [
        FrameKind::Audio,
        FrameKind::SpeechStarted,
        FrameKind::SpeechStopped,
        FrameKind::Transcript,
        FrameKind::Image,
        FrameKind::UserText,
        FrameKind::TextDelta,
        FrameKind::Sentence,
        FrameKind::EndOfTurn,
    ];

    /// The name used in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Audio => "audio",
            FrameKind::SpeechStarted => "speech_started",
            FrameKind::SpeechStopped => "speech_stopped",
            FrameKind::Transcript => "transcript",
            FrameKind::Image => "image",
            FrameKind::UserText => "user_text",
            FrameKind::TextDelta => "text_delta",
            FrameKind::Sentence => "sentence",
            FrameKind::EndOfTurn => "end_of_turn",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of frame kinds, as a stage declares what it takes and gives.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KindSet(u16);

impl KindSet {
    pub const EMPTY: KindSet = KindSet(0);

    pub const fn of(kinds: &[FrameKind]) -> Self {
        let mut bits = 0u16;
        let mut i = 0;
        while i < kinds.len() {
            bits |= 1 << kinds[i] as u8;
            i += 1;
        }
        KindSet(bits)
    }

    pub fn contains(self, kind: FrameKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }

    pub fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    pub fn intersection(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    pub fn minus(self, other: KindSet) -> KindSet {
        KindSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = FrameKind> {
        FrameKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(FrameKind::name).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in FrameKind::ALL {
            assert_eq!(FrameKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(FrameKind::from_name("video"), None);
    }

    #[test]
    fn kind_set_algebra() {
        let a = KindSet::of(&[FrameKind::Audio, FrameKind::EndOfTurn]);
        let b = KindSet::of(&[FrameKind::Transcript, FrameKind::EndOfTurn]);
        assert!(a.contains(FrameKind::Audio));
        assert!(!a.contains(FrameKind::Transcript));
        assert_eq!(a.intersection(b), KindSet::of(&[FrameKind::EndOfTurn]));
        assert_eq!(a.minus(b), KindSet::of(&[FrameKind::Audio]));
        assert_eq!(a.union(b).iter().count(), 3);
        assert_eq!(a.to_string(), "[audio, end_of_turn]");
    }

    #[test]
    fn audio_chunk_duration() {
        let chunk = AudioChunk::new(16_000, vec![0.0; 320]);
        assert_eq!(chunk.duration(), Duration::from_millis(20));
    }
}
