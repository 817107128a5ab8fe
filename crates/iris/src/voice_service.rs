//! `iris serve`'s voice loop: the live loop on the sound devices, on the engine's shared models,
//! its turns in the engine's statistics, push to talk from the panel. It follows the settings:
//! turned on or off in the panel, it starts or stops; when a setting it uses changes (models,
//! voice, devices, wake words, camera, …) it is built again on what is in force, so a model
//! reloaded in the panel is the one the loop answers with. Runs on its own thread; a failure to
//! start is logged once per configuration and the rest of the server goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use iris_config::Config;
use iris_engine::Engine;
use iris_live::{Event, EventKind};

use crate::backends::Models;
use crate::live::{console, mode_of, voice_turn, Assistant, Devices};

/// How often a stopped loop looks whether it was turned on.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The settings the voice loop is built from: all but who may use the Wyoming server.
fn voice_part(config: &Config) -> Config {
    Config { wyoming: Default::default(), ..config.clone() }
}

/// `alarms`: the server's timers, rung through the speaker while the loop runs.
pub fn serve_voice(engine: Arc<Engine>, models: Models, alarms: crate::alarms::Alarms) {
    let spawned = std::thread::Builder::new().name("iris-voice".into()).spawn(move || supervise(&engine, models, &alarms));
    if let Err(e) = spawned {
        eprintln!("error: cannot start the voice loop's thread: {e}");
    }
}

fn supervise(engine: &Arc<Engine>, mut models: Models, alarms: &crate::alarms::Alarms) {
    // A configuration the loop could not start on is not retried until the settings change or
    // models are loaded (the generation moves).
    let mut failed_on: Option<(Config, u64)> = None;
    loop {
        let generation = engine.generation();
        let config = voice_part(&engine.config());
        let tried = failed_on.as_ref().is_some_and(|(c, g)| *c == config && *g == generation);
        if !config.audio.enabled || tried || engine.missing().is_some() {
            std::thread::sleep(IDLE_POLL);
            continue;
        }
        models.config = config.clone();
        if let Err(e) = run_until_changed(engine, &models, alarms) {
            engine.stats.log("error", format!("the voice loop cannot start: {e:#}"));
            eprintln!("error: the voice loop cannot start: {e:#}");
            failed_on = Some((config, generation));
        }
    }
}

/// Runs the loop on `models.config` until the settings it uses change.
fn run_until_changed(engine: &Arc<Engine>, models: &Models, alarms: &crate::alarms::Alarms) -> Result<()> {
    let a = models.config.audio.clone();
    let mode = mode_of(models, None)?;
    let camera = crate::eyes::camera(&models.config, None)?;
    let stages = engine.voice_stages(&a.wake_words, camera);
    let extras = crate::alarms::Extras::with_alarms(models, alarms.clone())?;
    let assistant = Assistant::with_stages(models, stages, mode, a.semantic_turn, Some(extras))?;
    engine.set_voice_loop(true);
    engine.stats.log("info", format!("voice loop listening ({mode:?}) on {:?} / {:?}", a.input, a.output));
    let mut devices = Devices::new(&a.input, &a.output);
    let speaker = devices.speaker.clone();
    let recorder = engine.clone();
    let mut timeline = iris_live::events::Timeline::default();
    let record = move |e: &Event| {
        timeline.record(e);
        if let (EventKind::Answer { .. }, Some(turn)) = (&e.kind, e.turn) {
            if let Some(t) = timeline.turns.iter().find(|t| t.turn == turn) {
                recorder.record_voice_turn(voice_turn(t));
            }
            timeline.turns.retain(|t| t.turn != turn);
        }
        if let EventKind::Error { message } = &e.kind {
            recorder.stats.log("error", format!("voice loop: {message}"));
        }
    };
    let sinks: Vec<Box<dyn iris_live::EventSink>> = vec![Box::new(console), Box::new(record)];
    let stop = AtomicBool::new(false);
    let mut seen = engine.generation();
    let built_on = models.config.clone();
    // Polled once a chunk: push to talk, and whether the settings moved on.
    let poll = Box::new(|| {
        let now = engine.generation();
        if now != seen {
            seen = now;
            if voice_part(&engine.config()) != built_on {
                stop.store(true, Ordering::Relaxed);
            }
        }
        engine.take_talk_request()
    });
    assistant.run_with(&mut devices, speaker, sinks, Some(poll), &stop);
    engine.set_voice_loop(false);
    engine.stats.log("info", "voice loop stopped: its settings changed".to_owned());
    Ok(())
}
