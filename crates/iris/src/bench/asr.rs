//! `iris bench asr FILE…`: Iris and the reference whisper.cpp (pywhispercpp, compiled for this
//! CPU) on the same samples, model file and thread count, in one run. Iris is timed twice: its
//! Whisper backend alone on the whole file (engine against engine), and its full path as users
//! run it (Silero VAD, then one Whisper window per utterance).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use iris_backend::{Asr, AsrOptions, NeverStop};
use serde_json::json;

use super::{median, whisper_cpp};
use crate::backends::Models;
use crate::listen::Listener;

#[derive(Args)]
pub struct AsrArgs {
    /// WAV files (any rate and channel count).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Timed runs per file after one warm-up; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The Python that has pywhispercpp, built from source.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Only the two Iris engines (whisper.cpp and candle on the configured device): no VAD,
    /// no reference. For a machine that has only the Whisper model, such as a lent GPU box.
    #[arg(long)]
    engines_only: bool,
    /// Decode as the live loop does a question (`fit_context`: an encoder window fitted to the
    /// audio, at least half of Whisper's 30 s), not a whole 30 s window.
    #[arg(long)]
    live: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(config_path: Option<&Path>, args: AsrArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let mut models = Models::open(config_path)?;
    let inputs: Vec<Vec<f32>> = args.files.iter().map(|f| iris_audio::load_speech(f)).collect::<Result<_, _>>()?;
    let model_id = models.config.models.asr.clone();
    let model = models.file(&model_id, "asr")?;
    let threads = models.config.threads();
    let language = if models.config.speech.language == "auto" { None } else { Some(models.config.speech.language.clone()) };

    let t = Instant::now();
    let engine = iris_whisper::WhisperAsr::load(&model, threads)?;
    let load_s = t.elapsed().as_secs_f64();
    let opts = AsrOptions { language: language.clone(), partial: false, fit_context: args.live };
    let time = |f: &mut dyn FnMut() -> Result<String>| -> Result<(String, f64)> {
        f()?;
        let mut times = Vec::new();
        let mut text = String::new();
        for _ in 0..args.runs {
            let t0 = Instant::now();
            text = f()?;
            times.push(t0.elapsed().as_secs_f64());
        }
        Ok((text, median(times.into_iter())))
    };
    // The engine alone first, with nothing else loaded, then candle's, then the whole path.
    let mut engine_runs = Vec::new();
    for pcm in &inputs {
        engine_runs.push(time(&mut || Ok(engine.transcribe(pcm, &opts, &NeverStop)?.text))?);
    }
    drop(engine);
    let device = iris_whisper_candle::device(&models.config.models.device)?;
    let candle = iris_whisper_candle::CandleWhisper::load(&model, &device)?;
    let candle_device = candle.device().to_string();
    let (mut candle_runs, mut stages) = (Vec::new(), Vec::new());
    for pcm in &inputs {
        candle_runs.push(time(&mut || Ok(candle.transcribe(pcm, &opts, &NeverStop)?.text))?);
        stages.push(candle.last_stages());
    }
    drop(candle);
    if args.engines_only {
        return engines_table(&args, &model_id, threads, &inputs, &engine_runs, (&candle_runs, &stages), &candle_device);
    }
    let listener = Listener::new(&mut models, false)?;
    let mut rows = Vec::new();
    for ((file, pcm), (engine_text, engine_s)) in args.files.iter().zip(&inputs).zip(engine_runs) {
        let (_, pipeline_s) = time(&mut || Ok(listener.hear(pcm, false, &mut |_| {})?.text))?;
        rows.push((file, pcm.len() as f64 / 16_000.0, engine_text, engine_s, pipeline_s));
    }
    let candle_s: f64 = candle_runs.iter().map(|r| r.1).sum();
    drop(listener);
    // One warm-up run inside, like ours: the first decode of a fresh model is slower.
    let runs = args.runs + 1;
    let slices: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let reference = whisper_cpp::transcribe(&args.python, &model, threads, language.as_deref().unwrap_or("auto"), &slices, runs)?;

    let mut out = Vec::new();
    if !args.json {
        println!("{model_id}, {threads} threads, median of {} runs (whisper.cpp: of {runs}, first included)", args.runs);
        println!("{:<28} {:>7} {:>12} {:>14} {:>15} {:>10}", "file", "audio s", "iris engine", "iris pipeline", "whisper.cpp", "ratio");
    }
    for (i, (file, audio_s, engine_text, engine_s, pipeline_s)) in rows.iter().enumerate() {
        let (ref_text, ref_s) = &reference.results[i];
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if args.json {
            out.push(json!({"file": name, "audio_s": audio_s, "iris_engine_s": engine_s, "iris_pipeline_s": pipeline_s,
                            "whisper_cpp_s": ref_s, "ratio_engine": ref_s / engine_s, "ratio_pipeline": ref_s / pipeline_s,
                            "candle_s": candle_runs[i].1, "candle": candle_runs[i].0,
                            "same_text": engine_text == ref_text, "iris": engine_text, "whisper_cpp": ref_text}));
        } else {
            println!(
                "{name:<28} {audio_s:>7.2} {:>9.0} ms {:>11.0} ms {:>12.0} ms {:>9.2}x",
                engine_s * 1e3,
                pipeline_s * 1e3,
                ref_s * 1e3,
                ref_s / engine_s
            );
            if engine_text != ref_text {
                println!("  iris:        {engine_text}\n  whisper.cpp: {ref_text}");
            }
            if candle_runs[i].0 != *engine_text {
                println!("  candle:      {}", candle_runs[i].0);
            }
        }
    }
    let total = |f: &dyn Fn(usize) -> f64| (0..rows.len()).map(f).sum::<f64>();
    let audio = total(&|i| rows[i].1);
    let (engine, pipeline, refr) = (total(&|i| rows[i].3), total(&|i| rows[i].4), total(&|i| reference.results[i].1));
    if args.json {
        println!(
            "{}",
            json!({"model": model_id, "threads": threads, "runs": args.runs, "load_s": {"iris": load_s, "whisper_cpp": reference.load_s},
                   "rtf": {"iris_engine": engine / audio, "iris_pipeline": pipeline / audio, "whisper_cpp": refr / audio, "candle": candle_s / audio},
                   "candle_device": candle_device,
                   "ratio_engine": refr / engine, "ratio_pipeline": refr / pipeline, "files": out})
        );
    } else {
        println!("RTF: iris engine {:.3}, iris pipeline {:.3}, whisper.cpp {:.3}", engine / audio, pipeline / audio, refr / audio);
        println!("ratio whisper.cpp time / iris time (>1 is faster): engine x{:.2}, pipeline x{:.2}", refr / engine, refr / pipeline);
        println!("candle backend on {candle_device}: RTF {:.3}, ratio against whisper.cpp x{:.2}", candle_s / audio, refr / candle_s);
    }
    Ok(ExitCode::SUCCESS)
}

fn engines_table(
    args: &AsrArgs,
    model_id: &str,
    threads: usize,
    inputs: &[Vec<f32>],
    cpp: &[(String, f64)],
    (candle, stages): (&[(String, f64)], &[iris_whisper_candle::Stages]),
    device: &str,
) -> Result<ExitCode> {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let audio: f64 = inputs.iter().map(|p| p.len() as f64 / 16_000.0).sum();
    let (cpp_s, candle_s): (f64, f64) = (cpp.iter().map(|r| r.1).sum(), candle.iter().map(|r| r.1).sum());
    let same = cpp.iter().zip(candle).filter(|(a, b)| a.0 == b.0).count();
    if args.json {
        println!(
            "{}",
            json!({"model": model_id, "threads": threads, "runs": args.runs, "candle_device": device,
                   "rtf": {"whisper_cpp_engine": cpp_s / audio, "candle": candle_s / audio},
                   "files": args.files.iter().zip(cpp.iter().zip(candle)).zip(stages).map(|((f, (a, b)), st)| json!({
                       "file": f.display().to_string(), "whisper_cpp_engine_s": a.1, "candle_s": b.1, "same_text": a.0 == b.0,
                       "whisper_cpp_engine": a.0, "candle": b.0,
                       "candle_ms": {"mel": ms(st.mel), "encoder": ms(st.encoder), "decoder": ms(st.decoder), "tokens": st.tokens}})).collect::<Vec<_>>()})
        );
    } else {
        println!("{model_id}, median of {} runs; whisper.cpp on {threads} CPU threads, candle on {device}", args.runs);
        for ((f, (a, b)), st) in args.files.iter().zip(cpp.iter().zip(candle)).zip(stages) {
            println!(
                "{:<28} whisper.cpp {:>7.0} ms  candle {:>7.0} ms (mel {:.1}, encoder {:.1}, decoder {:.1} for {} tokens)  {}",
                f.display(),
                a.1 * 1e3,
                b.1 * 1e3,
                ms(st.mel),
                ms(st.encoder),
                ms(st.decoder),
                st.tokens,
                if a.0 == b.0 { "same text" } else { "texts differ" }
            );
        }
        println!(
            "RTF: whisper.cpp engine {:.4}, candle {:.4}; same text on {same} of {} files",
            cpp_s / audio,
            candle_s / audio,
            cpp.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
