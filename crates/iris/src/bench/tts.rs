//! `iris bench tts`: Iris's Piper backend and Piper's own runtime (the `piper-tts` pip
//! package) on the same voice file, text and machine, in one run, reported as ratios.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_backend::NeverStop;
use iris_pipeline::stages::SentenceSplitter;
use serde_json::json;

use super::median;
use crate::backends::Models;

const DEFAULT_TEXT: &str = "Good morning! It is a quarter past seven, and the sky is clear. \
Today will be sunny with a high of twenty four degrees. Don't forget your appointment with the dentist at three.";

/// Piper's runtime, timed the same way: time to the first audio chunk and to the last.
const REFERENCE: &str = r#"
import json, statistics, sys, time
from piper import PiperVoice
model, text, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter(); voice = PiperVoice.load(model); load = time.perf_counter() - t
def run():
    t0 = time.perf_counter(); first = None; samples = 0
    for chunk in voice.synthesize(text):
        if first is None: first = time.perf_counter() - t0
        samples += len(chunk.audio_float_array); rate = chunk.sample_rate
    return first, time.perf_counter() - t0, samples / rate
run()
res = [run() for _ in range(runs)]
print(json.dumps({"load_s": load, "first_s": statistics.median(r[0] for r in res),
                  "total_s": statistics.median(r[1] for r in res), "audio_s": statistics.median(r[2] for r in res)}))
"#;

#[derive(Args)]
pub struct TtsArgs {
    #[arg(long, default_value = DEFAULT_TEXT)]
    text: String,
    /// Timed runs after one warm-up; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The Python that has `piper-tts` installed.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    #[arg(long)]
    json: bool,
}

struct Timing {
    load_s: f64,
    first_s: f64,
    total_s: f64,
    audio_s: f64,
}

pub fn run(config_path: Option<&Path>, args: TtsArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let models = Models::open(config_path)?;
    let config = &models.config;
    let model = models.file(&config.models.tts, "tts")?;

    let t = Instant::now();
    let mut voice = models.voice(&config.models.tts)?;
    let load_s = t.elapsed().as_secs_f64();
    let mut once = || -> Result<(f64, f64, f64)> {
        let t0 = Instant::now();
        let mut first = None;
        let mut samples = 0usize;
        let mut splitter = SentenceSplitter::default();
        let mut sentences = splitter.push(&args.text);
        sentences.extend(splitter.finish());
        for s in sentences {
            samples += voice.synthesize(&s, &NeverStop)?.len();
            first.get_or_insert(t0.elapsed().as_secs_f64());
        }
        Ok((first.unwrap_or(0.0), t0.elapsed().as_secs_f64(), samples as f64 / f64::from(voice.sample_rate())))
    };
    once()?;
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(once()?);
    }
    let iris = Timing {
        load_s,
        first_s: median(runs.iter().map(|r| r.0)),
        total_s: median(runs.iter().map(|r| r.1)),
        audio_s: median(runs.iter().map(|r| r.2)),
    };

    let out = Command::new(&args.python)
        .args(["-c", REFERENCE])
        .arg(&model)
        .arg(&args.text)
        .arg(args.runs.to_string())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", args.python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'piper'") {
            bail!(
                "the reference needs Piper's runtime: `{} -m pip install piper-tts==1.8.0`, or --python with one that has it",
                args.python.display()
            );
        }
        bail!("Piper's runtime failed: {}", err.lines().last().unwrap_or("").trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("Piper's runtime printed no timings")?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let piper = Timing { load_s: f("load_s"), first_s: f("first_s"), total_s: f("total_s"), audio_s: f("audio_s") };

    let rtf = |t: &Timing| t.total_s / t.audio_s;
    if args.json {
        let obj = |t: &Timing| json!({"load_ms": t.load_s * 1e3, "first_audio_ms": t.first_s * 1e3, "total_ms": t.total_s * 1e3, "audio_s": t.audio_s, "rtf": rtf(t)});
        println!(
            "{}",
            json!({"iris": obj(&iris), "piper": obj(&piper), "threads": config.threads(), "runs": args.runs,
            "speedup_first_audio": piper.first_s / iris.first_s, "speedup_total": piper.total_s / iris.total_s})
        );
    } else {
        println!(
            "voice {} ({} threads, median of {} runs, {} chars)",
            config.models.tts,
            config.threads(),
            args.runs,
            args.text.chars().count()
        );
        println!("{:<14} {:>10} {:>16} {:>10} {:>9} {:>8}", "", "load ms", "first audio ms", "total ms", "audio s", "RTF");
        for (name, t) in [("iris", &iris), ("piper-tts", &piper)] {
            println!(
                "{name:<14} {:>10.0} {:>16.0} {:>10.0} {:>9.2} {:>8.3}",
                t.load_s * 1e3,
                t.first_s * 1e3,
                t.total_s * 1e3,
                t.audio_s,
                rtf(t)
            );
        }
        println!(
            "speed-up of Iris over piper-tts (>1 is faster): first audio x{:.2}, total x{:.2}",
            piper.first_s / iris.first_s,
            piper.total_s / iris.total_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
