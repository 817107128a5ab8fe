//! `iris bench onnx`: each ONNX model Iris runs (Silero VAD, Smart Turn, openWakeWord's three
//! networks, the OCR's two, the Piper voice) on ONNX Runtime's CPU provider and on another
//! execution provider (OpenVINO, QNN) beside it, same input and process, one after the other:
//! the time per call, its ratio (>1: the provider is faster), how far the outputs moved, and
//! ONNX Runtime's own account of which provider took the model's nodes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_backend::{NeverStop, Tts, TurnDetector, Vad, WakeWord};
use serde_json::json;

use super::median;
use crate::backends::Models;

const SENTENCE: &str = "It is a quarter past seven, and the sky is clear.";

#[derive(Args)]
pub struct OnnxArgs {
    /// Speech (a WAV file at any rate) for the VAD, the turn model and the wake word.
    audio: PathBuf,
    /// The provider to set beside the CPU provider: `openvino` (after `iris models pull
    /// openvino-ep`) or `qnn` (after `iris models pull qnn-ep`).
    #[arg(long, default_value = "openvino")]
    provider: String,
    /// A photo or scan for the OCR; without one the OCR is left out.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Timed runs after one warm-up; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

/// One model's pass on one provider list: seconds per call, what it computed (compared between
/// lists where it is deterministic; Piper's voice draws noise inside the model) and where it ran.
struct Pass {
    seconds: f64,
    outputs: Option<Vec<f32>>,
    /// The OCR's reading, which must be the same text.
    reading: Option<String>,
    placement: String,
}

pub fn run(config_path: Option<&Path>, args: OnnxArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    if !matches!(args.provider.as_str(), "openvino" | "qnn") {
        bail!("--provider {:?}: name `openvino` or `qnn` (the CPU provider is always measured beside it)", args.provider);
    }
    let models = Models::open(config_path)?;
    let pcm = iris_audio::load_speech(&args.audio).with_context(|| format!("the speech to run on, {}", args.audio.display()))?;
    let image = match &args.image {
        Some(p) => Some(iris_vision::load_image(p).with_context(|| format!("the image for the OCR, {}", p.display()))?),
        None => None,
    };
    let lists = [vec!["cpu".to_owned()], vec![args.provider.clone(), "cpu".to_owned()]];
    let mut passes: Vec<Vec<(&'static str, Pass)>> = Vec::new();
    for list in lists {
        // As `iris serve` would run with `[onnx] providers = list` (and the settings' own
        // `[onnx.models]`, with Iris's defaults for that list).
        let mut config = models.config.clone();
        if list == ["cpu"] {
            // The baseline is the CPU provider alone, whatever `[onnx.models]` asks for.
            config.onnx.models.clear();
        }
        config.onnx.providers = list.clone();
        let models = models.with_config(config);
        let env = models.onnx().with_context(|| format!("the providers {list:?}"))?;
        passes.push(measure(&models, env, &pcm, image.as_ref(), args.runs)?);
    }
    report(&args, &passes[0], &passes[1])
}

/// Every model on the providers in force, loaded afresh so its session takes them.
fn measure(
    models: &Models,
    env: &'static iris_onnx::Environment,
    pcm: &[f32],
    image: Option<&iris_frames::ImageFrame>,
    runs: usize,
) -> Result<Vec<(&'static str, Pass)>> {
    let cfg = &models.config;
    let threads = cfg.threads();
    let mut out = Vec::new();

    let vad_file = models.file(&cfg.models.vad, "vad")?;
    let mut vad = iris_silero::SileroVad::load(env, &vad_file)?;
    let frame = vad.frame_len();
    let frames = pcm.chunks_exact(frame).count().max(1);
    let (s, p) = timed(runs, || {
        vad.reset();
        pcm.chunks_exact(frame).map(|f| vad.speech_probability(f).map_err(anyhow::Error::from)).collect()
    })?;
    out.push((
        "silero-vad, a 32 ms frame",
        Pass { seconds: s / frames as f64, outputs: Some(p), reading: None, placement: iris_onnx::placement(&vad_file) },
    ));

    if let Some(entry) = models.installed(crate::backends::TURN) {
        let file = models.store.main_file(entry)?;
        let mut turn = iris_smartturn::SmartTurn::load(env, &file, threads)?;
        let (s, p) = timed(runs, || Ok(vec![turn.complete_probability(pcm)?]))?;
        out.push(("smart-turn, a turn", Pass { seconds: s, outputs: Some(p), reading: None, placement: iris_onnx::placement(&file) }));
    }

    let words = cfg.audio.wake_words.clone();
    let mut wake = crate::wake::load(models, &words, "onnx", env)?;
    let hops = pcm.chunks_exact(iris_wakeword::HOP).count().max(1);
    let (s, p) = timed(runs, || {
        wake.reset();
        let mut scores = Vec::new();
        for hop in pcm.chunks_exact(iris_wakeword::HOP) {
            scores.extend(wake.scores(hop)?);
        }
        Ok(scores)
    })?;
    let wake_place = models
        .installed(crate::wake::ONNX_SET)
        .and_then(|e| models.store.verified_file(e, "embedding_model.onnx").ok())
        .map(|f| iris_onnx::placement(&f))
        .unwrap_or_default();
    out.push(("openwakeword, an 80 ms hop", Pass { seconds: s / hops as f64, outputs: Some(p), reading: None, placement: wake_place }));

    if let (Some(image), Some((det, rec))) = (image, models.ocr_files()?) {
        let mut ocr = iris_ocr::Ocr::load(env, &det, &rec, threads)?;
        let mut text = String::new();
        let (s, p) = timed(runs, || {
            let lines = ocr.read(image)?;
            text = lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join(" / ");
            Ok(lines.iter().map(|l| l.confidence).collect())
        })?;
        anyhow::ensure!(!text.is_empty(), "the OCR read nothing in the image: give one with text (--image)");
        out.push((OCR_ROW, Pass { seconds: s, outputs: Some(p), reading: Some(text), placement: iris_onnx::placement(&det) }));
    }

    let voice_file = models.file(&cfg.models.tts, "tts")?;
    let settings = iris_piper::VoiceSettings { threads, ..Default::default() };
    let mut voice = iris_piper::PiperVoice::load(env, &voice_file, settings)?;
    let (s, _) = timed(runs, || Ok(vec![voice.synthesize(SENTENCE, &NeverStop)?.len() as f32]))?;
    out.push(("piper, a sentence", Pass { seconds: s, outputs: None, reading: None, placement: iris_onnx::placement(&voice_file) }));
    Ok(out)
}

const OCR_ROW: &str = "ppocr-v6-tiny, the image";

/// The median seconds of `runs` calls after one warm-up, and the last call's outputs.
fn timed(runs: usize, mut f: impl FnMut() -> Result<Vec<f32>>) -> Result<(f64, Vec<f32>)> {
    let mut outputs = f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        outputs = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((median(times.into_iter()), outputs))
}

fn report(args: &OnnxArgs, cpu: &[(&str, Pass)], other: &[(&str, Pass)]) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for ((name, a), (_, b)) in cpu.iter().zip(other) {
        let same_text = a.reading == b.reading;
        let moved = match (&a.outputs, &b.outputs) {
            (Some(x), Some(y)) if x.len() == y.len() && same_text => {
                Some(x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max))
            }
            _ => None,
        };
        let shown = match (moved, &a.outputs) {
            (Some(d), _) => format!("{d:.4}"),
            (None, Some(_)) => "other text".to_owned(),
            (None, None) => "(random)".to_owned(),
        };
        rows.push((
            *name,
            shown,
            json!({
                "model": name, "cpu_ms": a.seconds * 1e3, "provider_ms": b.seconds * 1e3, "ratio": a.seconds / b.seconds,
                "max_difference": moved, "same_text": same_text, "placement": b.placement,
            }),
        ));
    }
    if args.json {
        let models: Vec<_> = rows.into_iter().map(|(_, _, j)| j).collect();
        println!("{}", json!({ "provider": args.provider, "runs": args.runs, "models": models }));
        return Ok(ExitCode::SUCCESS);
    }
    let p = &args.provider;
    println!(
        "{p} beside ONNX Runtime's CPU provider, against the CPU provider alone (median of {} runs; ratio > 1: {p} is faster)",
        args.runs
    );
    println!("{:<28} {:>9} {:>13} {:>7} {:>10}  where it ran", "model", "cpu ms", format!("{p} ms"), "ratio", "moved by");
    for (name, shown, r) in &rows {
        let ms = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<28} {:>9.3} {:>13.3} {:>6.2}x {shown:>10}  {}",
            ms("cpu_ms"),
            ms("provider_ms"),
            ms("ratio"),
            r["placement"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
