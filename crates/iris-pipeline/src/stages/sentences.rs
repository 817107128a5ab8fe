//! Splits streamed text into sentences, so speech can start before the answer is complete.
//! Text deltas pass on unchanged (a display shows them as they come); sentences are added.

use std::time::Duration;

use iris_frames::{Envelope, Frame, KindSet, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

/// Words whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] = &["mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no", "approx", "fig"];

/// A streaming splitter: push text, take the complete sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
}

impl SentenceSplitter {
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let sentence = std::mem::replace(&mut self.buf, rest.trim_start().to_owned());
            let sentence = sentence.trim().to_owned();
            if !sentence.is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// What is left when the text ends.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    /// Byte offset just past a sentence end followed by whitespace, if the buffer has one.
    fn boundary(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buf.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            let next = chars.get(i + 1).map(|&(_, n)| n);
            let ends = matches!(c, '.' | '!' | '?' | '\n') || (c == ':' && next == Some('\n'));
            // The end is known only once whitespace follows: "3." may become "3.5".
            if !ends || !next.is_some_and(char::is_whitespace) {
                if c == '\n' {
                    return Some(at + 1);
                }
                continue;
            }
            if c == '.' {
                let word: String = self.buf[..at].rsplit(|ch: char| ch.is_whitespace()).next().unwrap_or("").to_lowercase();
                if ABBREVIATIONS.contains(&word.as_str()) || (word.len() == 1 && word.chars().all(char::is_alphabetic)) {
                    continue;
                }
            }
            return Some(at + c.len_utf8());
        }
        None
    }
}

pub struct SentenceStage {
    state: PerTurn<SentenceSplitter>,
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
            let sentences = self.state.get(turn).push(text);
            out.send(env)?;
            for s in sentences {
                out.emit(turn, pts, Frame::Sentence(s))?;
            }
        }
        Ok(())
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        if let Some(rest) = self.state.take(turn).finish() {
            out.emit(turn, pts, Frame::Sentence(rest))?;
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
    fn empty_text_gives_nothing() {
        assert!(split(&["", "  "]).is_empty());
    }
}
