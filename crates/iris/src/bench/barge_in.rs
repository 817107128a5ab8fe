//! `iris bench loop --barge-in`: "Hey Jarvis" said over a long answer, through the simulated
//! room, with no echo and with the speaker heard at 0 dB after 30 ms (echo cancellation on).
//! For each: how many interruptions were heard; the time from the end of the interrupting wake
//! word to silence on the speaker (p50, p90, from the speaker file itself: the answer pauses
//! when the word's score stirs, before it is confirmed); barge-ins before the user spoke (Iris
//! interrupting itself) and pauses that went on (a stir that was not the word) per hour of Iris
//! talking; and the echo canceller's ERLE.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use iris_live::{Echo, Event, Mode, Room};
use serde::Deserialize;

use crate::backends::Models;
use crate::live::Assistant;

#[derive(Deserialize)]
struct BargeSession {
    file: String,
    wake_start: f64,
    wake_end: f64,
}

#[derive(Default)]
struct Tally {
    sessions: usize,
    heard: usize,
    to_silence_ms: Vec<f64>,
    early: usize,
    /// Pauses that were not the wake word (the answer went on).
    resumed: usize,
    /// Barge-ins after which the speaker kept sounding.
    not_silent: usize,
    talking_s: f64,
    erle: Vec<f64>,
}

/// The settings with echo cancellation `on`.
fn with_echo_cancel(models: &Models, on: bool) -> Models {
    let mut config = models.config.clone();
    config.audio.echo_cancel = on;
    models.with_config(config)
}

fn one(models: &Models, wav: &Path, out: &Path, echo: Option<Echo>) -> Result<(Vec<Event>, Vec<f32>, Option<f64>)> {
    let mic = iris_audio::load_speech(wav)?;
    let assistant = Assistant::load(models, Mode::WakeWord, models.config.audio.semantic_turn, None, None)?;
    let (mut room, speaker) = Room::new(mic, out, echo)?;
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = events.clone();
    let record = move |e: &Event| sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone());
    let summary = assistant.run(&mut room, speaker, vec![Box::new(record)], &AtomicBool::new(false));
    room.finish()?;
    let played = iris_audio::read_wav(out)?.samples;
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((events, played, summary.echo_erle_db))
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
}

pub fn run(models: &Models, dir: &Path, json: bool) -> Result<()> {
    let index = dir.join("barge.jsonl");
    let text = std::fs::read_to_string(&index).with_context(|| format!("{}: make it with deploy/loop-sessions.sh", index.display()))?;
    let sessions: Vec<BargeSession> =
        text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>().context("barge.jsonl")?;
    if sessions.is_empty() {
        bail!("{}: no sessions", index.display());
    }
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out.wav");
    let variants = [("no echo", None, false), ("echo 0 dB 30 ms, AEC3", Some(Echo { gain: 1.0, delay: 480 }), true)];
    let mut report = Vec::new();
    for (name, echo, cancel) in variants {
        let models = with_echo_cancel(models, cancel);
        let mut t = Tally::default();
        for s in &sessions {
            let (events, played, erle) = one(&models, &dir.join(&s.file), &out, echo)?;
            t.sessions += 1;
            t.erle.extend(erle);
            let at = |kind: &str| events.iter().filter(|e| e.kind.name() == kind).map(|e| e.t).collect::<Vec<_>>();
            t.early += at("barge_in").iter().filter(|b| **b < s.wake_start).count();
            t.resumed += at("resume").len();
            if let Some(b) = at("barge_in").into_iter().find(|b| *b >= s.wake_start) {
                t.heard += 1;
                // The loop stopped the sound at the barge-in, or at the hold it confirmed (one
                // with no resume between). The speaker file must be silent from then on (one
                // 20 ms chunk may still be in flight) until 0.3 s after the barge-in.
                let resumed = at("resume");
                let held = at("hold").into_iter().filter(|h| *h <= b && !resumed.iter().any(|r| r > h && *r <= b)).last();
                let stopped = held.unwrap_or(b) + 0.02;
                let (from, to) = ((stopped * 16_000.0) as usize, ((b + 0.32) * 16_000.0) as usize);
                if played.get(from..to).is_some_and(|w| w.iter().all(|x| x.abs() <= 0.01)) {
                    t.to_silence_ms.push((stopped - s.wake_end) * 1000.0);
                } else {
                    t.not_silent += 1;
                }
            }
            // Iris talking: each answer's sound, start to stop.
            let starts = at("audio_start");
            let stops = at("audio_stop");
            t.talking_s += starts.iter().zip(&stops).map(|(a, b)| (b - a).max(0.0)).sum::<f64>();
        }
        report.push((name, t));
    }
    if json {
        let rows: Vec<_> = report
            .iter()
            .map(|(name, t)| {
                serde_json::json!({
                    "variant": name, "sessions": t.sessions, "heard": t.heard,
                    "to_silence_ms_p50": pct(&t.to_silence_ms, 0.5), "to_silence_ms_p90": pct(&t.to_silence_ms, 0.9),
                    "false_barge_ins": t.early, "pauses_resumed": t.resumed, "not_silent_after": t.not_silent, "iris_talking_s": t.talking_s,
                    "erle_db": if t.erle.is_empty() { None } else { Some(t.erle.iter().sum::<f64>() / t.erle.len() as f64) },
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!("| room | interruptions heard | wake word end → silence, p50 / p90 | not silent after | false barge-ins (per hour of Iris talking) | pauses that went on | ERLE |");
    println!("|---|---|---|---|---|---|---|");
    for (name, t) in &report {
        let per_hour = if t.talking_s > 0.0 { t.early as f64 * 3600.0 / t.talking_s } else { 0.0 };
        let erle = if t.erle.is_empty() { "–".to_owned() } else { format!("{:.1} dB", t.erle.iter().sum::<f64>() / t.erle.len() as f64) };
        println!(
            "| {name} | {} of {} | {:.0} / {:.0} ms | {} | {} in {:.0} s ({per_hour:.0}/h) | {} | {erle} |",
            t.heard,
            t.sessions,
            pct(&t.to_silence_ms, 0.5),
            pct(&t.to_silence_ms, 0.9),
            t.not_silent,
            t.early,
            t.talking_s,
            t.resumed
        );
    }
    Ok(())
}
