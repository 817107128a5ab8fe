//! `iris say "text"`: speak text with the configured voice, sentence by sentence.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use iris_backend::NeverStop;
use iris_config::Config;
use iris_pipeline::stages::SentenceSplitter;

use crate::backends::{self, Models};

#[derive(Args)]
pub struct SayArgs {
    /// The text to speak ("-" reads it from standard input).
    text: String,
    /// A voice model id from the catalog (default: the configured one).
    #[arg(long)]
    voice: Option<String>,
    /// Write a WAV file instead of playing.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(config_path: Option<&Path>, args: SayArgs) -> Result<ExitCode> {
    let store = iris_models::Store::from_env()?;
    let config = Config::load(&config_path.map(Path::to_owned).unwrap_or_else(|| store.home().join("config.toml")))?;
    let text = if args.text == "-" { std::io::read_to_string(std::io::stdin()).context("cannot read standard input")? } else { args.text };
    let models = Models { store, catalog: backends::catalog()?, config: &config };
    let mut voice = models.voice(args.voice.as_deref().unwrap_or(&config.models.tts))?;
    let mut audio = Vec::new();
    // Sentence by sentence, as the pipeline speaks: long texts stay in bounded memory per call.
    let mut splitter = SentenceSplitter::default();
    let mut sentences = splitter.push(&text);
    sentences.extend(splitter.finish());
    for s in sentences {
        audio.extend(voice.synthesize(&s, &NeverStop)?);
    }
    let rate = voice.sample_rate();
    match &args.out {
        Some(out) => {
            iris_audio::write_wav_atomic(out, &audio, rate)?;
            println!("{}", out.display());
        }
        None => iris_playback::play_blocking(&audio, rate).context("cannot play")?,
    }
    Ok(ExitCode::SUCCESS)
}
