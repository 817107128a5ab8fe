//! Speech recognition: partial transcripts while a person speaks, a final one at the endpoint.
//!
//! With a VAD before it (`gated`), the stage keeps a short pre-roll while nobody speaks, so the
//! first syllable is not lost, and transcribes each utterance at its endpoint; a turn with no
//! speech gives an empty final transcript, never Whisper's inventions on silence. Without a
//! VAD it transcribes everything it heard when the turn ends.
//!
//! Partials re-decode the whole utterance so far (the backend's quick mode) each time another
//! `partial_every` of it has arrived. Re-decoding the growing utterance rather than a sliding
//! window keeps each partial a prefix-consistent guess of the same sentence; its cost grows with
//! the utterance, so a partial is skipped whenever input is already waiting: the stage catches up
//! with live audio instead of falling behind it, and the final is never delayed by stale partials.

use std::sync::Arc;
use std::time::Duration;

use iris_backend::{Asr, AsrOptions};
use iris_frames::{Envelope, Frame, FrameKind, KindSet, Transcript, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

const RATE: usize = 16_000;
const PRE_ROLL: usize = RATE * 3 / 10;

#[derive(Clone, Copy, Debug)]
pub struct AsrSettings {
    /// A VAD stage runs before this one: recognise only between its speech marks.
    pub gated: bool,
    /// Media time of speech between partial transcripts; `None` gives finals only.
    pub partial_every: Option<Duration>,
}

#[derive(Default)]
struct State {
    audio: Vec<f32>,
    in_speech: bool,
    emitted: bool,
    since_partial: usize,
    last_partial: String,
    /// Merging pauses: the whole turn decoded at its last pause, still valid if no speech followed.
    at_pause: Option<(String, Option<String>)>,
    /// Merging utterances: the ones already ended, waiting for the window to fill.
    held: Vec<f32>,
}

pub struct AsrStage {
    asr: Arc<dyn Asr>,
    options: AsrOptions,
    settings: AsrSettings,
    state: PerTurn<State>,
    /// Words dropped from the start of a final transcript: the wake word, heard in the pre-roll.
    leading: Vec<String>,
    merge_pauses: bool,
    /// Merge utterances into windows of up to this many samples (recordings).
    window: Option<usize>,
}

impl AsrStage {
    pub fn new(asr: Arc<dyn Asr>, options: AsrOptions, settings: AsrSettings) -> Self {
        Self {
            asr,
            options: AsrOptions { partial: false, ..options },
            settings,
            state: PerTurn::default(),
            leading: Vec::new(),
            window: None,
            merge_pauses: false,
        }
    }

    /// The recogniser of a live loop's turns (the loop marks speech itself): pauses merged, the
    /// encoder window fitted to the audio, and the words of the wake word names ("hey_jarvis")
    /// dropped from the start of transcripts.
    pub fn for_live_turns(asr: Arc<dyn Asr>, language: Option<String>, partial_every: Option<Duration>, wake_words: &[String]) -> Self {
        let options = AsrOptions { language, partial: false, fit_context: true };
        let words: Vec<&str> = wake_words.iter().flat_map(|w| w.split('_')).collect();
        Self::new(asr, options, AsrSettings { gated: true, partial_every }).dropping_leading(&words).merging_pauses()
    }

    /// Drops these words (any case, any punctuation) from the start of final transcripts: a
    /// live turn's pre-roll may hold the end of the wake word ("Jarvis, what time is it?").
    pub fn dropping_leading(mut self, words: &[&str]) -> Self {
        self.leading = words.iter().map(|w| w.to_lowercase()).collect();
        self
    }

    /// For a live turn (the loop marks speech and ends the turn): a pause does not split the
    /// question. At each pause the whole turn so far is decoded at full quality and shown as a
    /// partial; if nobody speaks again before the turn ends, that decode is the final, so the
    /// recogniser works while the end of the turn is still being decided. Context is never lost
    /// at a pause (Whisper hears up to 30 s at once).
    pub fn merging_pauses(mut self) -> Self {
        self.merge_pauses = true;
        self
    }

    /// For recordings: utterances the VAD cut at pauses are recognised together, in windows of
    /// up to `window` of speech (Whisper hears 30 s at once), so a sentence read with pauses keeps
    /// its context, as a whole-file recogniser would hear it. Finals come once a window is full
    /// and at the end of the turn; partials show the window so far.
    pub fn merging_utterances(mut self, window: Duration) -> Self {
        self.window = Some((window.as_secs_f64() * RATE as f64) as usize);
        self
    }

    /// An utterance ended: hold it, recognising what is held first if it would overflow the window.
    fn hold(&mut self, turn: TurnId, pts: Duration, window: usize, out: &mut dyn Output) -> Result<(), StageError> {
        let st = self.state.get(turn);
        if !st.held.is_empty() && st.held.len() + st.audio.len() > window {
            let audio = std::mem::replace(&mut st.audio, std::mem::take(&mut st.held));
            self.transcribe(turn, pts, out)?;
            self.state.get(turn).audio = audio;
        }
        let st = self.state.get(turn);
        let audio = std::mem::take(&mut st.audio);
        st.held.extend_from_slice(&audio);
        Ok(())
    }

    fn at_pause(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        // Speech coming back makes this decode moot: the next pause's is wanted instead, and
        // soon (a live loop marks a pause at a short lull, which speech often follows).
        let moot = || out.waiting(turn, FrameKind::SpeechStarted);
        let Some(result) = unless_moot(&*self.asr, &self.state.get(turn).audio, &self.options, turn, &*out, moot)? else {
            return Ok(());
        };
        let text = drop_leading(result.text.trim(), &self.leading);
        let st = self.state.get(turn);
        st.since_partial = 0;
        st.at_pause = Some((text.clone(), result.language.clone()));
        // Sent even when it repeats the last partial: a listener may act on it (a live loop
        // starts answering it while the end of the turn is still being decided).
        if text.is_empty() {
            return Ok(());
        }
        st.last_partial.clone_from(&text);
        out.emit(turn, pts, Frame::Transcript(Transcript { text, is_final: false, language: result.language }))
    }

    fn transcribe(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        if let Some((text, language)) = self.state.get(turn).at_pause.take() {
            let st = self.state.get(turn);
            st.emitted = true;
            st.audio.clear();
            return out.emit(turn, pts, Frame::Transcript(Transcript { text, is_final: true, language }));
        }
        let audio = std::mem::take(&mut self.state.get(turn).audio);
        let stop = || out.is_cancelled(turn);
        let result = self.asr.transcribe(&audio, &self.options, &stop)?;
        let st = self.state.get(turn);
        st.emitted = true;
        st.since_partial = 0;
        st.last_partial.clear();
        let text = drop_leading(result.text.trim(), &self.leading);
        let frame = Frame::Transcript(Transcript { text, is_final: true, language: result.language });
        out.emit(turn, pts, frame)
    }

    fn partial(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let opts = AsrOptions { partial: true, ..self.options.clone() };
        // A pause's arrival makes this guess moot: the pause's full decode is what is wanted,
        // as soon as possible (a live loop answers it ahead while the turn's end is decided).
        let moot = || out.waiting(turn, FrameKind::SpeechStopped) || out.waiting(turn, FrameKind::EndOfTurn);
        let st = self.state.get(turn);
        let window: std::borrow::Cow<[f32]> =
            if st.held.is_empty() { (&st.audio[..]).into() } else { [&st.held[..], &st.audio[..]].concat().into() };
        let Some(result) = unless_moot(&*self.asr, &window, &opts, turn, &*out, moot)? else {
            return Ok(());
        };
        let text = result.text.trim().to_owned();
        let st = self.state.get(turn);
        if text.is_empty() || text == st.last_partial {
            return Ok(());
        }
        st.last_partial.clone_from(&text);
        out.emit(turn, pts, Frame::Transcript(Transcript { text, is_final: false, language: result.language }))
    }
}

/// `audio` recognised, or `None` when `moot` said during the decode that it is no longer wanted
/// (a cancelled turn is an error, as always).
fn unless_moot(
    asr: &dyn Asr,
    audio: &[f32],
    opts: &AsrOptions,
    turn: TurnId,
    out: &dyn Output,
    moot: impl Fn() -> bool,
) -> Result<Option<iris_backend::AsrOutput>, StageError> {
    let stop = || out.is_cancelled(turn) || moot();
    match asr.transcribe(audio, opts, &stop) {
        Err(iris_backend::BackendError::Cancelled) if !out.is_cancelled(turn) => Ok(None),
        r => Ok(Some(r?)),
    }
}

/// `text` without the listed words at its start (compared without case and punctuation).
fn drop_leading(text: &str, words: &[String]) -> String {
    let mut rest = text;
    loop {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word: String = rest[..word_end].chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
        if word.is_empty() || !words.contains(&word) {
            break;
        }
        rest = rest[word_end..].trim_start();
    }
    if rest.len() == text.len() {
        return text.to_owned();
    }
    let mut chars = rest.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl Stage for AsrStage {
    fn name(&self) -> &'static str {
        "asr"
    }

    fn accepts(&self) -> KindSet {
        super::info("asr").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("asr").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let turn = env.turn;
        match env.frame {
            Frame::Audio(chunk) => {
                if chunk.sample_rate as usize != RATE {
                    return Err(StageError::Input(format!("asr needs 16 kHz audio, got {} Hz", chunk.sample_rate)));
                }
                let AsrSettings { gated, partial_every } = self.settings;
                let end = env.pts + Duration::from_secs_f64(chunk.samples.len() as f64 / RATE as f64);
                let st = self.state.get(turn);
                st.audio.extend_from_slice(&chunk.samples);
                if gated && !self.merge_pauses && !st.in_speech && st.audio.len() > PRE_ROLL {
                    let excess = st.audio.len() - PRE_ROLL;
                    st.audio.drain(..excess);
                }
                if st.in_speech || !gated {
                    st.since_partial += chunk.samples.len();
                }
                let every = partial_every.map(|d| (d.as_secs_f64() * RATE as f64) as usize);
                match every {
                    Some(every) if st.since_partial >= every && out.backlog() == 0 => {
                        st.since_partial = 0;
                        self.partial(turn, end, out)
                    }
                    _ => Ok(()),
                }
            }
            // The marks go on downstream (a display shows "listening", playback stops for barge-in).
            Frame::SpeechStarted => {
                let st = self.state.get(turn);
                st.in_speech = true;
                st.at_pause = None;
                st.since_partial = 0;
                out.send(env)
            }
            Frame::SpeechStopped => {
                self.state.get(turn).in_speech = false;
                let pts = env.pts;
                out.send(env)?;
                match (self.merge_pauses, self.window) {
                    (true, _) => self.at_pause(turn, pts, out),
                    (false, Some(window)) => self.hold(turn, pts, window, out),
                    (false, None) => self.transcribe(turn, pts, out),
                }
            }
            _ => Ok(()),
        }
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let st = self.state.get(turn);
        if !st.held.is_empty() {
            // What is held, and an utterance still going on when the turn ended.
            let mut audio = std::mem::take(&mut st.held);
            if st.in_speech {
                audio.extend_from_slice(&st.audio);
            }
            st.audio = audio;
            let result = self.transcribe(turn, pts, out);
            self.state.take(turn);
            return result;
        }
        let st = self.state.get(turn);
        let result = if (!self.settings.gated || self.merge_pauses) && (!st.audio.is_empty() || st.at_pause.is_some()) {
            self.transcribe(turn, pts, out)
        } else if !st.emitted {
            // Nothing worth recognising: say so with an empty final transcript.
            let frame = Frame::Transcript(Transcript { text: String::new(), is_final: true, language: None });
            out.emit(turn, pts, frame)
        } else {
            Ok(())
        };
        self.state.take(turn);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::drop_leading;

    #[test]
    fn the_wake_word_is_dropped_from_the_start_only() {
        let words = vec!["hey".to_owned(), "jarvis".to_owned()];
        assert_eq!(drop_leading("Jarvis, what time is it?", &words), "What time is it?");
        assert_eq!(drop_leading("Hey Jarvis. Hey, what is Jarvis?", &words), "What is Jarvis?");
        assert_eq!(drop_leading("What is the time?", &words), "What is the time?");
        assert_eq!(drop_leading("Jarvis", &words), "");
    }
}
