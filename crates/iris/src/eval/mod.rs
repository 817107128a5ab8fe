//! `iris eval tts`: speak a fixed, varied sentence set (numbers, names, questions) with a voice,
//! hear it back with the speech recogniser, and report the word error rate. `iris eval asr`
//! is in `asr.rs`, `iris eval answers` in `answers.rs`; the scoring of the first two is in
//! `wer.rs`; how an answer is read, in `judge.rs`.

mod answers;
mod asr;
mod judge;
pub mod wer;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use iris_backend::{Asr, AsrOptions, NeverStop};
use serde_json::json;

use crate::backends::Models;

const SENTENCES: &str = include_str!("../../../../tests/data/tts_sentences.txt");

#[derive(Subcommand)]
pub enum EvalCmd {
    /// Round-trip intelligibility of a voice: TTS → ASR → word error rate.
    Tts(TtsArgs),
    /// Word error rate and real-time factor of speech recognition on recordings with known text.
    Asr(asr::AsrArgs),
    /// Right, invented and badly spoken answers, and time to the first sentence, per language model.
    Answers(answers::AnswersArgs),
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
    let args = match cmd {
        EvalCmd::Tts(args) => args,
        EvalCmd::Asr(args) => return asr::run(config_path, args),
        EvalCmd::Answers(args) => return answers::run(config_path, args),
    };
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
        let heard = asr.transcribe(&pcm, &AsrOptions { language: Some("en".into()), partial: false, fit_context: false }, &NeverStop)?.text;
        let (e, n) = wer::word_errors(s, &heard);
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
