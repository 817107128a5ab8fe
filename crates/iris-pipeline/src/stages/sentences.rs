//! Splits streamed text into sentences, so speech can start before the answer is complete.
//! Text deltas pass on unchanged (a display shows them as they come); sentences are added.

use std::time::Duration;

use iris_frames::{Envelope, Frame, KindSet, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

/// Words whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] =
    &["mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no", "approx", "fig", "mt", "ave", "inc", "ltd"];

/// Closing quotes and brackets that may follow a sentence's final mark.
const CLOSERS: &[char] = &['"', '\'', ')', ']', '\u{201d}', '\u{2019}', '\u{bb}'];

/// The first sentence of an answer is cut at a clause break once it is this long, so speech
/// starts sooner (time to first audio matters more than perfect prosody).
const EARLY_FLUSH_CHARS: usize = 60;

/// No sentence grows past this: text without punctuation is cut at a space, so memory stays
/// bounded however long the input.
const MAX_SENTENCE_CHARS: usize = 200;

/// A streaming splitter: push text, take the complete sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
    emitted: usize,
    /// Only whole sentences: no early cut of a long first one (for counting, not speaking).
    whole_only: bool,
}

impl SentenceSplitter {
    /// A splitter that never cuts a long first sentence early.
    pub fn whole_sentences() -> Self {
        Self { whole_only: true, ..Self::default() }
    }

    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let sentence = std::mem::replace(&mut self.buf, rest.trim_start().to_owned());
            let sentence = sentence.trim().to_owned();
            if !sentence.is_empty() {
                self.emitted += 1;
                out.push(sentence);
            }
        }
        out
    }

    /// Text pushed but not yet part of a complete sentence.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    /// What is left when the text ends.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    /// Byte offset just past the first sentence end in the buffer, if there is one.
    fn boundary(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buf.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            if c == '\n' {
                return Some(at + 1);
            }
            if !matches!(c, '.' | '!' | '?' | '\u{2026}') {
                continue;
            }
            // Closing quotes or brackets belong to the sentence they close.
            let mut j = i + 1;
            while chars.get(j).is_some_and(|(_, n)| CLOSERS.contains(n)) {
                j += 1;
            }
            // The end is known only once whitespace follows: "3." may become "3.5", "example." "example.com".
            if !chars.get(j).is_some_and(|(_, n)| n.is_whitespace()) {
                continue;
            }
            if c == '.' && self.is_not_an_end(at) {
                continue;
            }
            return Some(chars.get(j).map_or(self.buf.len(), |(b, _)| *b));
        }
        let len = chars.len();
        if self.emitted == 0 && !self.whole_only && len > EARLY_FLUSH_CHARS {
            let clause = chars
                .iter()
                .skip(EARLY_FLUSH_CHARS / 2)
                .find(|(b, ch)| matches!(ch, ',' | ';' | ':' | '\u{2014}') && self.buf[*b + ch.len_utf8()..].starts_with(' '));
            if let Some(&(b, ch)) = clause {
                return Some(b + ch.len_utf8());
            }
        }
        if len > MAX_SENTENCE_CHARS {
            let cut = self.buf[..chars[MAX_SENTENCE_CHARS].0].rfind(char::is_whitespace).filter(|&c| c > 0);
            return Some(cut.unwrap_or(chars[MAX_SENTENCE_CHARS].0));
        }
        None
    }

    /// A period after an abbreviation, an initial, or a list number at the start of a line.
    fn is_not_an_end(&self, at: usize) -> bool {
        let before = &self.buf[..at];
        let word_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = before[word_start..].trim_start_matches(|c: char| CLOSERS.contains(&c) || c == '(').to_lowercase();
        let list_marker = !word.is_empty()
            && word.len() <= 2
            && word.chars().all(|c| c.is_ascii_digit())
            && before[..word_start].trim_end_matches(' ').ends_with('\n')
            || (word_start == 0 && word.chars().all(|c| c.is_ascii_digit()) && !word.is_empty());
        ABBREVIATIONS.contains(&word.as_str()) || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic)) || list_marker
    }
}

/// Splits the answer into sentences and makes each one for the ear ([`super::ear`]).
pub struct SentenceStage {
    state: PerTurn<(SentenceSplitter, super::ear::ListJoiner)>,
}

impl SentenceStage {
    pub fn new() -> Self {
        Self { state: PerTurn::default() }
    }
}

impl Default for SentenceStage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage for SentenceStage {
    fn name(&self) -> &'static str {
        "sentences"
    }

    fn accepts(&self) -> KindSet {
        super::info("sentences").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("sentences").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let (turn, pts) = (env.turn, env.pts);
        if let Frame::TextDelta(text) = &env.frame {
            let (splitter, lists) = self.state.get(turn);
            let sentences: Vec<String> = splitter.push(text).iter().flat_map(|s| lists.push(s)).collect();
            out.send(env)?;
            for s in sentences {
                out.emit(turn, pts, Frame::Sentence(s))?;
            }
        }
        Ok(())
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let (mut splitter, mut lists) = self.state.take(turn);
        let mut last: Vec<String> = splitter.finish().map(|rest| lists.push(&rest)).unwrap_or_default();
        last.extend(lists.finish());
        for s in last {
            out.emit(turn, pts, Frame::Sentence(s))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&str]) -> Vec<String> {
        let mut s = SentenceSplitter::default();
        let mut out: Vec<String> = pieces.iter().flat_map(|p| s.push(p)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn splits_streamed_sentences() {
        assert_eq!(split(&["Hello the", "re. How are", " you? Fine"]), ["Hello there.", "How are you?", "Fine"]);
    }

    #[test]
    fn keeps_decimals_abbreviations_and_initials() {
        assert_eq!(
            split(&["It costs 3.", "5 euros. Ask Dr. Smith or J. Doe now."]),
            ["It costs 3.5 euros.", "Ask Dr. Smith or J. Doe now."]
        );
    }

    #[test]
    fn times_lists_quotes_and_urls() {
        assert_eq!(split(&["Meet me at 10:30. Bring the map."]), ["Meet me at 10:30.", "Bring the map."]);
        assert_eq!(split(&["Steps:\n1. Open the door.\n2. Go in."]), ["Steps:", "1. Open the door.", "2. Go in."]);
        assert_eq!(split(&["He said \"Stop.\" Then he left."]), ["He said \"Stop.\"", "Then he left."]);
        assert_eq!(split(&["See example.com/a.b for more. Thanks."]), ["See example.com/a.b for more.", "Thanks."]);
        assert_eq!(split(&["He was born in 1879. He died in 1955."]), ["He was born in 1879.", "He died in 1955."]);
    }

    #[test]
    fn a_long_first_sentence_is_cut_at_a_clause() {
        let long = "When you arrive at the station after the long journey from the north, take the second exit and walk on.";
        let out = split(&[long]);
        assert_eq!(out[0], "When you arrive at the station after the long journey from the north,");
        // Only the first sentence is cut early.
        let out = split(&["Hi. ", long]);
        assert_eq!(out, ["Hi.", long]);
    }

    #[test]
    fn text_without_punctuation_stays_bounded() {
        let mut s = SentenceSplitter::default();
        let mut longest = 0;
        for _ in 0..5_000 {
            for piece in s.push("word ") {
                longest = longest.max(piece.len());
            }
            assert!(s.buf.len() <= MAX_SENTENCE_CHARS + 8);
        }
        assert!(longest <= MAX_SENTENCE_CHARS);
    }

    #[test]
    fn empty_text_gives_nothing() {
        assert!(split(&["", "  "]).is_empty());
    }
}
