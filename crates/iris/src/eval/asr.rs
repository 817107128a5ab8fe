//! `iris eval asr DIR`: each `NAME.wav` in DIR with its reference text in `NAME.txt` is heard
//! through the same pipeline as `iris transcribe` (VAD, then Whisper), and scored by word error
//! rate with the shared normaliser; with `--reference`, whisper.cpp hears the very same samples
//! with the same model file and threads, so the two rates can be compared point for point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::wer::word_errors;
use crate::backends::Models;
use crate::bench::whisper_cpp;
use crate::listen::Listener;

#[derive(Args)]
pub struct AsrArgs {
    /// A folder of NAME.wav recordings, each with its transcript in NAME.txt.
    dir: PathBuf,
    /// Also run whisper.cpp from this Python's pywhispercpp package on the same samples.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Print every file, not only those with errors.
    #[arg(long)]
    verbose: bool,
    #[arg(long)]
    json: bool,
}

struct Item {
    name: String,
    text: String,
    pcm: Vec<f32>,
}

pub fn run(config_path: Option<&Path>, args: AsrArgs) -> Result<ExitCode> {
    let mut models = Models::open(config_path)?;
    let items = load_dir(&args.dir)?;
    let audio_s: f64 = items.iter().map(|i| i.pcm.len() as f64 / 16_000.0).sum();
    let words: usize = items.iter().map(|i| word_errors(&i.text, "").1).sum();
    let model_id = models.config.models.asr.clone();
    let model = models.file(&model_id, "asr")?;
    let threads = models.config.threads();
    let language = if models.config.speech.language == "auto" { "auto".to_owned() } else { models.config.speech.language.clone() };

    let listener = Listener::new(&mut models, false)?;
    let started = Instant::now();
    let mut heard = Vec::new();
    for item in &items {
        heard.push(listener.hear(&item.pcm, false, &mut |_| {})?.text);
    }
    let iris_s = started.elapsed().as_secs_f64();
    let reference = match &args.reference {
        Some(python) => {
            let inputs: Vec<&[f32]> = items.iter().map(|i| i.pcm.as_slice()).collect();
            Some(whisper_cpp::transcribe(python, &model, threads, &language, &inputs, 1)?)
        }
        None => None,
    };

    let mut rows = Vec::new();
    let (mut iris_errors, mut ref_errors) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let (e, n) = word_errors(&item.text, &heard[i]);
        iris_errors += e;
        let r = reference.as_ref().map(|r| (r.results[i].0.clone(), word_errors(&item.text, &r.results[i].0).0));
        ref_errors += r.as_ref().map_or(0, |r| r.1);
        if !args.json && (args.verbose || e > 0 || r.as_ref().is_some_and(|r| r.1 > 0)) {
            println!("{:<32} {e:>2}/{n:<2} {}", item.name, heard[i]);
            if let Some((text, re)) = &r {
                println!("{:<32} {re:>2}/{n:<2} {text}  (whisper.cpp)", "");
            }
            println!("{:<32}       {}  (reference)", "", item.text);
        }
        rows.push(json!({"file": item.name, "reference": item.text, "iris": heard[i], "iris_errors": e, "words": n,
                         "whisper_cpp": r.as_ref().map(|r| r.0.clone()), "whisper_cpp_errors": r.as_ref().map(|r| r.1)}));
    }
    let pct = |e: usize| 100.0 * e as f64 / words.max(1) as f64;
    let ref_s: Option<f64> = reference.as_ref().map(|r| r.results.iter().map(|x| x.1).sum());
    if args.json {
        println!(
            "{}",
            json!({"model": model_id, "files": items.len(), "words": words, "audio_s": audio_s, "threads": threads,
                   "iris": {"errors": iris_errors, "wer": pct(iris_errors), "rtf": iris_s / audio_s},
                   "whisper_cpp": ref_s.map(|s| json!({"errors": ref_errors, "wer": pct(ref_errors), "rtf": s / audio_s})),
                   "rows": rows})
        );
    } else {
        println!("{model_id} on {} files, {words} words, {audio_s:.0} s of audio, {threads} threads", items.len());
        println!("iris         WER {:>5.2} % ({iris_errors} errors)  RTF {:.3}", pct(iris_errors), iris_s / audio_s);
        if let Some(s) = ref_s {
            println!("whisper.cpp  WER {:>5.2} % ({ref_errors} errors)  RTF {:.3}", pct(ref_errors), s / audio_s);
            println!("difference: {:+.2} points", pct(iris_errors) - pct(ref_errors));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_dir(dir: &Path) -> Result<Vec<Item>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut wavs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav"))).collect();
    wavs.sort();
    if wavs.is_empty() {
        bail!("{}: no .wav files; put NAME.wav recordings there, each with its transcript in NAME.txt", dir.display());
    }
    let mut items = Vec::new();
    for wav in wavs {
        let txt = wav.with_extension("txt");
        let text = std::fs::read_to_string(&txt)
            .with_context(|| format!("{}: no transcript; write its text into {}", wav.display(), txt.display()))?;
        let pcm = iris_audio::load_speech(&wav)?;
        let name = wav.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        items.push(Item { name, text: text.trim().to_owned(), pcm });
    }
    Ok(items)
}
