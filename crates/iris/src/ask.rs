//! `iris ask`: one spoken question through the whole pipeline, to a spoken answer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_frames::{AudioChunk, Envelope, Frame};
use iris_pipeline::stages::BUILTIN;
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Turns};
use serde_json::json;

use crate::backends::{self, Models};

#[derive(Args)]
pub struct AskArgs {
    /// The spoken question: a WAV file of any rate, channel count and sample format.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// A photo to ask about (JPEG or PNG).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Typed text, added to (or instead of) the spoken question.
    #[arg(long)]
    text: Option<String>,
    /// Write the spoken answer to this WAV file instead of playing it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// A pipeline file (default: the built-in pipelines/ask.toml).
    #[arg(long)]
    pipeline: Option<PathBuf>,
}

pub fn run(config_path: Option<&Path>, args: AskArgs) -> Result<ExitCode> {
    let started = Instant::now();
    if args.audio.is_none() && args.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        bail!("nothing to ask: give --audio question.wav and/or --text \"...\"");
    }
    let mut models = Models::open(config_path)?;
    // The question arrives whole, and only the final transcript is used: partial decodes
    // would be work nobody sees.
    models.config.speech.partial_ms = 0;

    // Check every input before loading any model: a bad file should fail in milliseconds.
    let speech = args.audio.as_deref().map(iris_audio::load_speech).transpose()?;
    let image = args.image.as_deref().map(iris_vision::load_image).transpose()?;
    if let Some(out) = &args.out {
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("{}: the folder {} does not exist; create it or choose another --out", out.display(), dir.display());
        }
    }
    let spec = match &args.pipeline {
        Some(p) => PipelineSpec::load(p, BUILTIN)?,
        None => PipelineSpec::parse(backends::ASK_PIPELINE, BUILTIN)?,
    };

    let load_started = Instant::now();
    // A timer the user sets fires here; `ask` waits for it before exiting (the live voice loop
    // will speak it).
    let timers = iris_tools::Timers::new(std::sync::Arc::new(|label: &str| println!("Timer:      your {label} is done.")));
    let stages = models.stages(&spec, &timers, crate::eyes::camera(&models.config, None)?)?;
    let load_ms = load_started.elapsed();

    let turns = Turns::new();
    let pipeline = Pipeline::start(&spec, stages, turns.clone());
    let turn = turns.begin();
    let asked = Instant::now();
    let feed = || -> Result<()> {
        let send = |pts: Duration, frame: Frame| {
            pipeline.send(Envelope::new(turn.id, pts, frame)).map_err(|_| anyhow::anyhow!("the pipeline stopped"))
        };
        if let Some(text) = &args.text {
            send(Duration::ZERO, Frame::UserText(text.clone()))?;
        }
        if let Some(img) = &image {
            send(Duration::ZERO, Frame::Image(img.clone()))?;
        }
        let mut pts = Duration::ZERO;
        if let Some(pcm) = &speech {
            for chunk in pcm.chunks(320) {
                let c = AudioChunk::new(16_000, chunk.to_vec());
                let d = c.duration();
                send(pts, Frame::Audio(c))?;
                pts += d;
            }
        }
        send(pts, Frame::EndOfTurn)
    };
    let mut transcript = String::new();
    let mut language = None;
    let mut answer = String::new();
    let mut audio: Vec<f32> = Vec::new();
    let mut rate = 22_050;
    let mut first_audio = None;
    let fed = std::thread::scope(|s| {
        let feeder = s.spawn(feed);
        let result = loop {
            match pipeline.recv() {
                Some(PipelineEvent::Frame(env)) => match env.frame {
                    Frame::Transcript(t) if t.is_final => {
                        if !t.text.is_empty() {
                            if !transcript.is_empty() {
                                transcript.push(' ');
                            }
                            transcript.push_str(&t.text);
                        }
                        language = t.language.or(language.take());
                    }
                    Frame::TextDelta(d) => answer.push_str(&d),
                    Frame::Audio(c) => {
                        first_audio.get_or_insert_with(|| asked.elapsed());
                        rate = c.sample_rate;
                        audio.extend_from_slice(&c.samples);
                    }
                    Frame::EndOfTurn => break Ok(()),
                    _ => {}
                },
                Some(PipelineEvent::Error { stage, message, .. }) => break Err(anyhow::anyhow!("{stage}: {message}")),
                None => break Err(anyhow::anyhow!("the pipeline stopped before answering")),
            }
        };
        if result.is_err() {
            pipeline.cancel(turn.id);
        }
        let fed = feeder.join().map_err(|_| anyhow::anyhow!("the input thread failed"));
        result.and(fed.and_then(|r| r))
    });
    let timings = pipeline.timings(turn.id);
    pipeline.shutdown();
    fed?;

    let answer = answer.trim().to_owned();
    if answer.is_empty() {
        match &args.audio {
            Some(p) if transcript.is_empty() => {
                bail!("{}: Iris heard no speech in it; record the question again, closer to the microphone", p.display())
            }
            _ => bail!("the language model gave no answer; try asking again in other words"),
        }
    }
    let total = started.elapsed();
    // In pipeline order: loading, each stage's busy time, time to first audio, total.
    let mut timings_ms: Vec<(&str, u64)> = vec![("load", ms(load_ms))];
    timings_ms.extend(timings.iter().map(|(stage, t)| (*stage, ms(*t))));
    if let Some(f) = first_audio {
        timings_ms.push(("first_audio", ms(f)));
    }
    timings_ms.push(("total", ms(total)));

    let wav_path = match &args.out {
        Some(out) => {
            iris_audio::write_wav_atomic(out, &audio, rate)?;
            Some(out.clone())
        }
        None => None,
    };
    if args.json {
        let obj = json!({
            "transcript": transcript,
            "language": language,
            "answer": answer,
            "timings_ms": timings_ms.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "answer_wav": wav_path.as_ref().map(|p| p.display().to_string()),
            "answer_seconds": audio.len() as f64 / f64::from(rate),
        });
        println!("{obj}");
    } else {
        println!("You asked:  {}", if transcript.is_empty() { args.text.as_deref().unwrap_or("") } else { &transcript });
        println!("Iris says:  {answer}");
        let parts: Vec<String> = timings_ms.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("Timings ms: {}", parts.join(", "));
        if let Some(p) = &wav_path {
            println!("Answer WAV: {}", p.display());
        }
    }
    if wav_path.is_none() {
        iris_playback::play_blocking(&audio, rate).context("cannot play the answer")?;
    }
    // Timers longer than a day are not something a one-shot command should sit through.
    timers.wait_all(Duration::from_secs(24 * 3600));
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
