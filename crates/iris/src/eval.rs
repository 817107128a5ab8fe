//! `iris eval tts`: speak a fixed, varied sentence set (numbers, names, questions) with a voice,
//! hear it back with the speech recogniser, and report the word error rate.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use iris_backend::{Asr, AsrOptions, NeverStop};
use serde_json::json;

use crate::backends::Models;

const SENTENCES: &str = include_str!("../../../tests/data/tts_sentences.txt");

#[derive(Subcommand)]
pub enum EvalCmd {
    /// Round-trip intelligibility of a voice: TTS → ASR → word error rate.
    Tts(TtsArgs),
}

#[derive(Args)]
pub struct TtsArgs {
    /// A voice model id (default: the configured one).
    #[arg(long)]
    voice: Option<String>,
    /// One sentence per line (default: the built-in set of 24).
    #[arg(long)]
    sentences: Option<std::path::PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(config_path: Option<&Path>, cmd: EvalCmd) -> Result<ExitCode> {
    let EvalCmd::Tts(args) = cmd;
    let models = Models::open(config_path)?;
    let config = &models.config;
    let text = match &args.sentences {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => SENTENCES.to_owned(),
    };
    let sentences: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let voice_id = args.voice.clone().unwrap_or_else(|| config.models.tts.clone());
    let mut voice = models.voice(&voice_id)?;
    let asr = iris_whisper::WhisperAsr::load(&models.file(&config.models.asr, "asr")?, config.threads())?;
    let (mut errors, mut words) = (0usize, 0usize);
    let started = Instant::now();
    let mut rows = Vec::new();
    for s in &sentences {
        let audio = voice.synthesize(s, &NeverStop)?;
        let pcm = iris_audio::resample(&audio, voice.sample_rate(), 16_000);
        let heard = asr.transcribe(&pcm, &AsrOptions { language: Some("en".into()) }, &NeverStop)?.text;
        let (e, n) = word_errors(s, &heard);
        errors += e;
        words += n;
        if !args.json {
            println!("{:>3} {:<52} | {}", e, s, heard.trim());
        }
        rows.push(json!({"text": s, "heard": heard.trim(), "errors": e, "words": n}));
    }
    let wer = errors as f64 / words.max(1) as f64;
    if args.json {
        println!("{}", json!({"voice": voice_id, "sentences": rows, "words": words, "errors": errors, "wer": wer}));
    } else {
        println!(
            "voice {voice_id}: WER {:.1} % ({errors} errors in {words} words, {} sentences, {:.1} s)",
            wer * 100.0,
            sentences.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Words for scoring, as Whisper's English normaliser would compare them: lower case, no
/// punctuation ("7:45" and "7.45" both become "7 45"), small number words as digits.
pub fn normalise_words(s: &str) -> Vec<String> {
    let cleaned: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(|w| iris_tools::intent::number_word(w).map_or_else(|| w.to_owned(), |n| n.to_string()))
        .collect()
}

/// (word edits, reference words): Levenshtein distance over normalised words.
pub fn word_errors(reference: &str, heard: &str) -> (usize, usize) {
    let a = normalise_words(reference);
    let b = normalise_words(heard);
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, wb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(wa != wb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    (prev[b.len()], a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_ignores_form_not_words() {
        assert_eq!(word_errors("The train leaves at 7:45.", "the train leaves at 7.45"), (0, 5 + 1));
        assert_eq!(word_errors("She bought 3 tickets.", "She bought three tickets"), (0, 4));
        assert_eq!(word_errors("Turn off the lights.", "Turn of the light"), (2, 4));
        assert_eq!(word_errors("", ""), (0, 0));
    }
}
