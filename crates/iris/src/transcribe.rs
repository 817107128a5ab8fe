//! `iris transcribe FILE…`: speech to text with the configured recogniser, one whole file at a
//! time (streaming and the VAD gate of the live pipeline come with the hearing work).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use iris_backend::{Asr, AsrOptions, NeverStop};
use iris_config::Config;
use serde_json::json;

use crate::backends::{self, Models};

#[derive(Args)]
pub struct TranscribeArgs {
    /// WAV files of any rate, channel count and sample format.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One JSON object per line: file, text, language, seconds of audio, ms of work.
    #[arg(long)]
    json: bool,
}

pub fn run(config_path: Option<&Path>, args: TranscribeArgs) -> Result<ExitCode> {
    let store = iris_models::Store::from_env()?;
    let config = Config::load(&config_path.map(Path::to_owned).unwrap_or_else(|| store.home().join("config.toml")))?;
    // Decode everything first: one bad file fails fast, before the model loads.
    let audio: Vec<Vec<f32>> = args.files.iter().map(|f| iris_audio::load_speech(f)).collect::<Result<_, _>>()?;
    let models = Models { store, catalog: backends::catalog()?, config: &config };
    let asr: Arc<dyn Asr> = Arc::new(iris_whisper::WhisperAsr::load(&models.file(&config.models.asr, "asr")?, config.threads())?);
    let language = (config.speech.language != "auto").then(|| config.speech.language.clone());
    for (file, pcm) in args.files.iter().zip(audio) {
        let started = Instant::now();
        let out = asr.transcribe(&pcm, &AsrOptions { language: language.clone() }, &NeverStop)?;
        if args.json {
            let obj = json!({"file": file.display().to_string(), "text": out.text, "language": out.language,
                             "audio_s": pcm.len() as f64 / 16_000.0, "ms": started.elapsed().as_millis() as u64});
            println!("{obj}");
        } else if args.files.len() > 1 {
            println!("{}: {}", file.display(), out.text);
        } else {
            println!("{}", out.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}
