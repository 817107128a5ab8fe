//! `iris transcribe FILE…`: speech to text with the configured recogniser, one whole file at a
//! time, behind the same Silero VAD gate as the pipeline: Whisper invents words ("you",
//! "Beeping") on silence, noise and tones, so only the span where the VAD hears speech (with
//! 300 ms either side) is recognised, and a file with no speech gives an empty transcript.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use iris_backend::{Asr, AsrOptions, NeverStop, Vad};
use serde_json::json;

use crate::backends::Models;

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
    let models = Models::open(config_path)?;
    let config = &models.config;
    // Decode everything first: one bad file fails fast, before the model loads.
    let audio: Vec<Vec<f32>> = args.files.iter().map(|f| iris_audio::load_speech(f)).collect::<Result<_, _>>()?;
    let asr: Arc<dyn Asr> = Arc::new(iris_whisper::WhisperAsr::load(&models.file(&config.models.asr, "asr")?, config.threads())?);
    let language = (config.speech.language != "auto").then(|| config.speech.language.clone());
    let env = iris_onnx::init(&iris_onnx::library_path(&models.file(&config.models.runtime, "runtime")?))?;
    let mut vad = iris_silero::SileroVad::load(env, &models.file(&config.models.vad, "vad")?)?;
    for (file, pcm) in args.files.iter().zip(audio) {
        let started = Instant::now();
        let out = match speech_span(&mut vad, &pcm)? {
            Some(span) => asr.transcribe(&pcm[span], &AsrOptions { language: language.clone() }, &NeverStop)?,
            None => iris_backend::AsrOutput { text: String::new(), language: language.clone() },
        };
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

/// The samples from 300 ms before the first speech frame to 300 ms after the last, or `None`
/// when fewer than 3 frames (96 ms) are speech.
fn speech_span(vad: &mut dyn Vad, pcm: &[f32]) -> Result<Option<std::ops::Range<usize>>> {
    const PAD: usize = 4_800;
    vad.reset();
    let n = vad.frame_len();
    let mut speech = Vec::new();
    for (i, frame) in pcm.chunks_exact(n).enumerate() {
        if vad.speech_probability(frame)? >= 0.5 {
            speech.push(i);
        }
    }
    if speech.len() < 3 {
        return Ok(None);
    }
    let first = speech[0] * n;
    let last = (speech[speech.len() - 1] + 1) * n;
    Ok(Some(first.saturating_sub(PAD)..(last + PAD).min(pcm.len())))
}
