//! `iris audio list`: the sound devices, by the names `[audio] input` and `output` take.
//! `iris audio echo DIR`: an `iris listen --record` folder replayed through the echo canceller,
//! with what the wake words heard in it before and after.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use iris_backend::EchoCanceller;
use iris_live::Heard;

use crate::backends::Models;
use crate::echo_record::Recording;

#[derive(Subcommand)]
pub enum AudioCmd {
    /// List the microphones and loudspeakers.
    List,
    /// Replay an `iris listen --record` folder through the echo canceller: echo removed, and
    /// the wake words heard in the microphone and in what the canceller gave back.
    Echo {
        dir: PathBuf,
        /// AEC3's output: linear (what the loop uses) or suppressed.
        #[arg(long, default_value = "linear")]
        output: String,
        /// Write the replayed, cleaned microphone here.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Leave the speaker-to-microphone clock drift uncorrected (to see what correcting it does).
        #[arg(long)]
        no_drift_correction: bool,
    },
}

pub fn run(config_path: Option<&Path>, cmd: AudioCmd) -> Result<ExitCode> {
    match cmd {
        AudioCmd::Echo { dir, output, write, no_drift_correction } => {
            echo(config_path, &dir, &output, write.as_deref(), !no_drift_correction)
        }
        AudioCmd::List => {
            let devices = iris_sound::list()?;
            if devices.is_empty() {
                println!("no sound devices; on a headless box, connect a USB microphone and speaker");
            }
            for d in devices {
                let mut roles = Vec::new();
                if d.input {
                    roles.push(if d.default_input { "input (default)" } else { "input" });
                }
                if d.output {
                    roles.push(if d.default_output { "output (default)" } else { "output" });
                }
                println!("{:<24} {:<32} {}", d.name, roles.join(", "), d.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn echo(config_path: Option<&Path>, dir: &Path, output: &str, write: Option<&Path>, drift: bool) -> Result<ExitCode> {
    let output = match output {
        "linear" => iris_aec::Output::Linear,
        "suppressed" => iris_aec::Output::Suppressed,
        other => anyhow::bail!("--output {other:?}: use linear or suppressed"),
    };
    let rec = Recording::open(dir)?;
    let mut aec = iris_aec::Aec3::new(output);
    if !drift {
        aec = aec.without_drift_correction();
    }
    let cleaned = rec.replay(&mut aec);
    if let Some(path) = write {
        iris_audio::write_wav_atomic(path, &cleaned, 16_000).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let models = Models::open(config_path)?;
    println!(
        "{:.1} s, echo removed {} (delay {} ms, clock drift {})",
        rec.mic.len() as f64 / 16_000.0,
        aec.erle_db().map_or("?".into(), |d| format!("{d:.1} dB")),
        aec.delay_ms().map_or("?".into(), |d| d.to_string()),
        aec.drift_ppm().map_or("not measured".into(), |d| format!("{d:+.0} ppm"))
    );
    for (name, audio) in [("microphone", &rec.mic), ("cleaned", &cleaned)] {
        // The loop's own front end, so a wake is judged as the loop judges it.
        let mut front = crate::live::front_end(&models, iris_live::Mode::WakeWord)?;
        let mut heard = Vec::new();
        for chunk in audio.chunks(320) {
            for h in front.hear(chunk)? {
                if let Heard::Wake { at, word, score } = h {
                    heard.push(format!("{word} at {at:.2} s ({score:.2})"));
                }
            }
        }
        let max: Vec<String> = front.words().iter().zip(&front.max_scores).map(|(w, m)| format!("{w} max {m:.3}")).collect();
        println!("{name}: {} wake(s) [{}]", heard.len(), max.join(", "));
        for h in heard {
            println!("  {h}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
