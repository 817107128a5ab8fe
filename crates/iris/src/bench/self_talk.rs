//! `iris bench loop --self-talk`: Iris telling long stories through the simulated room with its
//! speaker heard at 0 dB after 30 ms and echo cancellation on, nobody interrupting. Everything
//! it hears of itself is a fault: wake words, answers paused, barge-ins and turns that no
//! scripted wake word started, per hour of Iris talking.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use iris_live::{Echo, Event, Mode, Room};
use serde::Deserialize;

use crate::backends::Models;
use crate::live::Assistant;

#[derive(Deserialize)]
struct SelfTalk {
    file: String,
    /// Where each request's wake word starts and ends.
    wakes: Vec<(f64, f64)>,
}

/// Long answers: no sentence limit, up to 500 tokens each.
fn story_teller(models: &Models) -> Models {
    let mut config = models.config.clone();
    config.audio.echo_cancel = true;
    config.assistant.max_sentences = 0;
    config.assistant.max_tokens = 500;
    models.with_config(config)
}

pub fn run(models: &Models, dir: &Path, json: bool) -> Result<()> {
    let index = dir.join("selftalk.json");
    let text = std::fs::read_to_string(&index).with_context(|| format!("{}: make it with deploy/loop-sessions.sh", index.display()))?;
    let session: SelfTalk = serde_json::from_str(&text).with_context(|| index.display().to_string())?;
    let models = story_teller(models);
    let mic = iris_audio::load_speech(&dir.join(&session.file))?;
    let tmp = tempfile::tempdir()?;
    let assistant = Assistant::load(&models, Mode::WakeWord, models.config.audio.semantic_turn, None, None)?;
    let (mut room, speaker) = Room::new(mic, &tmp.path().join("out.wav"), Some(Echo { gain: 1.0, delay: 480 }))?;
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = events.clone();
    let record = move |e: &Event| sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone());
    let summary = assistant.run(&mut room, speaker, vec![Box::new(record)], &AtomicBool::new(false));
    room.finish()?;
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
    let at = |kind: &str| events.iter().filter(|e| e.kind.name() == kind).map(|e| e.t).collect::<Vec<_>>();
    // A scripted wake word is confirmed within half a second of its end.
    let scripted = |t: &f64| session.wakes.iter().any(|(s, e)| *t >= *s && *t <= e + 0.5);
    let talking_s: f64 = at("audio_start").iter().zip(at("audio_stop")).map(|(a, b)| (b - a).max(0.0)).sum();
    let faults = |kind: &str| at(kind).iter().filter(|t| !scripted(t)).count();
    let (wakes, holds, barge_ins) = (faults("wake"), faults("hold"), faults("barge_in"));
    let hold_scores: Vec<f32> = events
        .iter()
        .filter_map(|e| match e.kind {
            iris_live::EventKind::Hold { score } if !scripted(&e.t) => Some(score),
            _ => None,
        })
        .collect();
    let answers = at("answer").len();
    let per_hour = |n: usize| if talking_s > 0.0 { n as f64 * 3600.0 / talking_s } else { 0.0 };
    if json {
        let row = serde_json::json!({
            "requests": session.wakes.len(), "answers": answers, "iris_talking_s": talking_s,
            "false_wakes": wakes, "false_holds": holds, "false_hold_scores": hold_scores, "false_barge_ins": barge_ins,
            "erle_db": summary.echo_erle_db, "echo_delay_ms": summary.echo_delay_ms,
        });
        println!("{row}");
        return Ok(());
    }
    // What each request became, so a missing answer can be traced.
    for e in &events {
        match &e.kind {
            iris_live::EventKind::Transcript { text } => println!("[{:7.2}] heard: {text}", e.t),
            iris_live::EventKind::Answer { text } => {
                let words = text.split_whitespace().count();
                println!("[{:7.2}] answered ({words} words played)", e.t)
            }
            iris_live::EventKind::Hold { score } => println!("[{:7.2}] paused (score {score:.2})", e.t),
            iris_live::EventKind::BargeIn => println!("[{:7.2}] interrupted", e.t),
            iris_live::EventKind::Error { message } => println!("[{:7.2}] error: {message}", e.t),
            _ => {}
        }
    }
    println!("| Iris talking | requests / answers | false wake words | answers paused | false barge-ins | ERLE, delay |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {:.1} min | {} / {answers} | {wakes} ({:.1}/h) | {holds} ({:.1}/h) | {barge_ins} ({:.1}/h) | {}, {} |",
        talking_s / 60.0,
        session.wakes.len(),
        per_hour(wakes),
        per_hour(holds),
        per_hour(barge_ins),
        summary.echo_erle_db.map_or("–".into(), |e| format!("{e:.1} dB")),
        summary.echo_delay_ms.map_or("–".into(), |d| format!("{d} ms")),
    );
    Ok(())
}
