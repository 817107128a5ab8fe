//! `iris say "text"`: speak text with the configured voice, sentence by sentence.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use iris_backend::NeverStop;
use iris_pipeline::stages::SentenceSplitter;

use crate::backends::Models;

#[derive(Args)]
pub struct SayArgs {
    /// The text to speak ("-" reads it from standard input).
    text: String,
    /// A voice model id from the catalog (default: the configured one).
    #[arg(long)]
    voice: Option<String>,
    /// The language of the text (ISO 639-1); a language with no Piper voice is spoken by espeak-ng.
    #[arg(long)]
    language: Option<String>,
    /// Write a WAV file instead of playing.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(config_path: Option<&Path>, args: SayArgs) -> Result<ExitCode> {
    let models = Models::open(config_path)?;
    let config = &models.config;
    let text = if args.text == "-" { std::io::read_to_string(std::io::stdin()).context("cannot read standard input")? } else { args.text };
    let mut voice = models.voice(args.voice.as_deref().unwrap_or(&config.models.tts))?;
    if let Some(lang) = &args.language {
        voice.select_language(lang)?;
    }
    eprintln!("voice: {}", voice.voice_name());
    let rate = voice.sample_rate();
    // Sentence by sentence, as the pipeline speaks: each is written or queued as soon as it is
    // made, so memory stays bounded however long the text.
    let mut wav = args.out.as_deref().map(|p| iris_audio::WavStream::create(p, rate)).transpose()?;
    let speaker = if wav.is_none() { Some(iris_playback::Speaker::open().context("cannot play")?) } else { None };
    let mut splitter = SentenceSplitter::default();
    let mut speak = |sentence: String| -> Result<()> {
        let audio = voice.synthesize(&sentence, &NeverStop)?;
        match (&mut wav, &speaker) {
            (Some(w), _) => w.write(&audio)?,
            (None, Some(s)) => s.queue(audio, rate)?,
            (None, None) => {}
        }
        Ok(())
    };
    // Feed the splitter in pieces, as an LLM would, rather than all at once.
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(64) {
        for sentence in splitter.push(&piece.iter().collect::<String>()) {
            speak(sentence)?;
        }
    }
    if let Some(rest) = splitter.finish() {
        speak(rest)?;
    }
    match (wav, speaker) {
        (Some(w), _) => {
            w.finish()?;
            println!("{}", args.out.as_deref().unwrap_or(Path::new("")).display());
        }
        (None, Some(s)) => s.wait(),
        (None, None) => {}
    }
    Ok(ExitCode::SUCCESS)
}
