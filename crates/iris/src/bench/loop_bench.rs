//! `iris bench loop`: end of the user's speech → first audio out, through the simulated room
//! on the configured models, per spoken session, with each stage's share. The same loop and the
//! same events as `iris listen`: the figures come from the events, on the media clock.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_live::{Mode, Room, TurnTimes};
use serde::Deserialize;

use crate::backends::Models;
use crate::live::Assistant;

#[derive(Args)]
pub struct LoopArgs {
    /// A folder made by deploy/loop-sessions.sh: NN.wav and sessions.jsonl.
    #[arg(long)]
    sessions: PathBuf,
    /// wake_word (default) or always.
    #[arg(long, default_value = "wake_word")]
    mode: String,
    /// Ask the semantic end-of-turn model at pauses (default: [audio] semantic_turn).
    #[arg(long)]
    semantic: Option<bool>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Interruptions instead: "Hey Jarvis" over a long answer (barge-NN.wav, barge.jsonl).
    #[arg(long)]
    barge_in: bool,
    /// Iris telling long stories with its echo heard back and cancelled, nobody interrupting
    /// (selftalk.wav, selftalk.json): what it hears of itself, per hour of talking.
    #[arg(long, conflicts_with = "barge_in")]
    self_talk: bool,
    /// Where the models that can use a GPU run (instead of `[models] device`): on `cuda`,
    /// Whisper on candle's engine there (whisper.cpp here is built for the CPU) and the language
    /// model on Iris's CUDA engine; the wake word, VAD, Smart Turn and Piper stay on the CPU.
    #[arg(long, value_parser = ["cpu", "cuda", "metal"])]
    device: Option<String>,
}

#[derive(Deserialize)]
pub struct Session {
    pub file: String,
    pub question: String,
    pub answer_has_any: Vec<String>,
}

pub fn read_sessions(dir: &Path) -> Result<Vec<Session>> {
    let index = dir.join("sessions.jsonl");
    let text = std::fs::read_to_string(&index).with_context(|| format!("{}: make it with deploy/loop-sessions.sh", index.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: {l}", index.display())))
        .collect()
}

/// One session through the room: the turns it produced.
pub fn run_session(models: &Models, mode: Mode, semantic: bool, wav: &Path, out: &Path) -> Result<Vec<TurnTimes>> {
    let mic = iris_audio::load_speech(wav)?;
    let assistant = Assistant::load(models, mode, semantic, None, None)?;
    let (mut room, speaker) = Room::new(mic, out, None)?;
    let summary = assistant.run(&mut room, speaker, Vec::new(), &AtomicBool::new(false));
    room.finish()?;
    Ok(summary.turns)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn run(config_path: Option<&Path>, args: LoopArgs) -> Result<ExitCode> {
    let mut models = Models::open(config_path)?;
    if let Some(device) = &args.device {
        let mut config = models.config.clone();
        config.models.device = device.clone();
        if device != "cpu" {
            config.models.asr_engine = "candle".into();
        }
        models = models.with_config(config);
    }
    if args.barge_in {
        super::barge_in::run(&models, &args.sessions, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.self_talk {
        super::self_talk::run(&models, &args.sessions, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mode = Mode::parse(&args.mode).with_context(|| format!("--mode {:?}: use wake_word or always", args.mode))?;
    let semantic = args.semantic.unwrap_or(models.config.audio.semantic_turn);
    let sessions = read_sessions(&args.sessions)?;
    if sessions.is_empty() {
        bail!("{}: no sessions", args.sessions.display());
    }
    let tmp = tempfile::tempdir()?;
    if !args.json {
        let m = &models.config.models;
        println!("{} and {} on {} ({} engine for Whisper)", m.asr, m.llm, m.device, m.asr_engine);
    }
    let mut rows = Vec::new();
    for s in &sessions {
        let turns = run_session(&models, mode, semantic, &args.sessions.join(&s.file), &tmp.path().join("out.wav"))?;
        let t = turns.into_iter().find(|t| t.audio_start.is_some()).unwrap_or_default();
        let right = s.answer_has_any.iter().any(|w| t.answer_text.to_lowercase().contains(&w.to_lowercase()));
        if !args.json {
            println!(
                "{:<8} {:>6} ms  asked {:?}, heard {:?} → {:?}{}",
                s.file,
                t.response().map_or("-".into(), |r| format!("{:.0}", r * 1000.0)),
                s.question,
                t.transcript_text,
                t.answer_text,
                if right { "" } else { "  (not right)" }
            );
        }
        rows.push((t, right));
    }
    let span = |f: fn(&TurnTimes) -> Option<(f64, f64)>| -> Vec<f64> {
        rows.iter().filter_map(|(t, _)| f(t).map(|(a, b)| (b - a) * 1000.0)).collect()
    };
    let mut total = span(|t| Some((t.speech_end?, t.audio_start?)));
    let stages: [(&str, Vec<f64>); 5] = [
        ("end of turn (silence)", span(|t| Some((t.speech_end?, t.end_of_turn?)))),
        ("transcript", span(|t| Some((t.end_of_turn?, t.transcript?)))),
        ("first token", span(|t| Some((t.transcript?, t.llm_first_token?)))),
        ("first sentence voiced", span(|t| Some((t.llm_first_token?, t.sentence?)))),
        ("playback", span(|t| Some((t.sentence?, t.audio_start?)))),
    ];
    let answered = total.len();
    let right = rows.iter().filter(|(_, r)| *r).count();
    let (p50, p90) = (pct(&mut total.clone(), 0.5), pct(&mut total, 0.9));
    if args.json {
        let shares: serde_json::Map<_, _> =
            stages.iter().map(|(n, v)| ((*n).to_owned(), serde_json::json!(pct(&mut v.clone(), 0.5).round()))).collect();
        println!(
            "{}",
            serde_json::json!({"sessions": sessions.len(), "semantic": semantic, "answered": answered, "right": right, "p50_ms": p50.round(), "p90_ms": p90.round(), "stage_p50_ms": shares})
        );
    } else {
        println!(
            "\n{answered} of {} sessions answered, {right} right; speech end → first audio: p50 {p50:.0} ms, p90 {p90:.0} ms",
            sessions.len()
        );
        for (name, v) in stages {
            println!("  {name:<22} p50 {:>5.0} ms", pct(&mut v.clone(), 0.5));
        }
    }
    Ok(ExitCode::SUCCESS)
}
