//! `iris transcribe FILE…`: speech to text with the configured recogniser, behind the Silero
//! VAD: Whisper invents words ("you", "Beeping") on silence, noise and tones, so only what the
//! VAD hears as speech is recognised, and a file with no speech gives an empty transcript. Long
//! recordings are cut at their pauses, one Whisper window per utterance. With `--stream` the
//! file is played in real time and partial transcripts are shown as they come.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::backends::Models;
use crate::listen::{Listener, Partial};

#[derive(Args)]
pub struct TranscribeArgs {
    /// WAV files of any rate, channel count and sample format.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One JSON object per line: file, text, language, seconds of audio, ms of work (and with
    /// --stream one line per partial: text, at_s, heard_at_s).
    #[arg(long)]
    json: bool,
    /// Play each file in real time, as a microphone would deliver it, and show partials.
    #[arg(long)]
    stream: bool,
}

pub fn run(config_path: Option<&Path>, args: TranscribeArgs) -> Result<ExitCode> {
    let mut models = Models::open(config_path)?;
    // Decode everything first: one bad file fails fast, before the model loads.
    let audio: Vec<Vec<f32>> = args.files.iter().map(|f| iris_audio::load_speech(f)).collect::<Result<_, _>>()?;
    let listener = Listener::new(&mut models, args.stream)?;
    let tty = std::io::stdout().is_terminal();
    for (file, pcm) in args.files.iter().zip(audio) {
        let name = file.display().to_string();
        let started = Instant::now();
        let mut show = |p: &Partial| {
            if args.json {
                let obj = json!({"file": name, "partial": p.text, "at_s": secs(p.pts), "heard_at_s": secs(p.heard_at)});
                println!("{obj}");
            } else if tty {
                print!("\r\x1b[2K… {}", p.text);
                let _ = std::io::stdout().flush();
            } else {
                println!("… {}", p.text);
            }
        };
        let heard = listener.hear(&pcm, args.stream, &mut show)?;
        if args.stream && tty && !args.json && !heard.partials.is_empty() {
            print!("\r\x1b[2K");
        }
        if args.json {
            let obj = json!({"file": name, "text": heard.text, "language": heard.language,
                             "speech_started_s": heard.speech_started.map(secs),
                             "audio_s": pcm.len() as f64 / 16_000.0, "ms": started.elapsed().as_millis() as u64});
            println!("{obj}");
        } else if args.files.len() > 1 {
            println!("{name}: {}", heard.text);
        } else {
            println!("{}", heard.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
