//! `iris listen`: the appliance's main loop. On sound devices (cpal), or in the simulated room
//! (`--mic-file IN.wav --speaker-file OUT.wav`), which runs the very same loop on files for
//! tests and `iris bench loop`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_live::{
    Capture, Controller, Echo, Event, EventKind, FrontEnd, FrontSettings, IoError, JsonLines, LiveLoop, Mode, Room, Speaker, Summary,
    TurnRules,
};
use iris_pipeline::stages::BUILTIN;
use iris_pipeline::{Pipeline, PipelineSpec, Turns};

use crate::backends::Models;

pub const LISTEN_PIPELINE: &str = include_str!("../../../pipelines/listen.toml");

#[derive(Args)]
pub struct ListenArgs {
    /// The simulated room: this WAV (any rate, any channels) is the microphone, fed in media time.
    #[arg(long, requires = "speaker_file")]
    pub mic_file: Option<PathBuf>,
    /// The simulated room: what Iris plays goes here (16 kHz mono, aligned with --mic-file).
    #[arg(long)]
    pub speaker_file: Option<PathBuf>,
    /// The speaker heard by the microphone: DB (gain) and MS (delay), e.g. -12,40.
    #[arg(long, allow_hyphen_values = true)]
    pub echo: Option<String>,
    /// Write every event of the loop here, one JSON object a line.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// wake_word (default), always or push_to_talk; overrides [audio] mode.
    #[arg(long)]
    pub mode: Option<String>,
    /// Ask the semantic end-of-turn model at pauses (overrides [audio] semantic_turn).
    #[arg(long)]
    pub semantic: Option<bool>,
    /// The simulated room: this photo is what the camera shows (JPEG or PNG).
    #[arg(long, requires = "mic_file")]
    pub camera_file: Option<PathBuf>,
    /// On devices: stop after this many seconds of listening (and the last answer).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Keep what the echo canceller was given and gave back in this folder (played.wav, mic.wav,
    /// cleaned.wav, steps.txt), to replay a missed barge-in; needs [audio] echo_cancel = true.
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// The loop's parts, loaded once.
pub struct Assistant {
    pub pipeline: Pipeline,
    pub front: FrontEnd,
    pub controller: Controller,
    pub detector: Option<Box<dyn iris_backend::TurnDetector>>,
    extras: Option<crate::alarms::Extras>,
    echo_cancel: bool,
    /// Where the echo canceller's calls are recorded (`--record`).
    pub record: Option<PathBuf>,
}

/// The front end as the settings make it: the VAD, and the wake words in wake-word mode (also
/// what `iris audio echo` hears a recording with).
pub fn front_end(models: &Models, mode: Mode) -> Result<FrontEnd> {
    let cfg = &models.config;
    let env = models.onnx()?;
    let vad = iris_silero::SileroVad::load(env, &models.file(&cfg.models.vad, "vad")?)?;
    let wake: Option<Box<dyn iris_backend::WakeWord>> =
        if mode == Mode::WakeWord { Some(crate::wake::load_engine(models, env)?) } else { None };
    let a = &cfg.audio;
    let settings = FrontSettings {
        wake_threshold: a.wake_threshold,
        hold_threshold: a.wake_hold_threshold,
        refractory: a.refractory_ms as f64 / 1000.0,
        lull: a.lull_ms as f64 / 1000.0,
        ..FrontSettings::default()
    };
    Ok(FrontEnd::new(wake, Box::new(vad), settings))
}

pub fn mode_of(models: &Models, wanted: Option<&str>) -> Result<Mode> {
    let name = wanted.unwrap_or(&models.config.audio.mode);
    Mode::parse(name).with_context(|| format!("mode {name:?}: use wake_word, always or push_to_talk"))
}

impl Assistant {
    /// Loads every model the loop needs (`iris listen`); timers are kept in `timers` (on
    /// devices) or run on the loop's media clock (`None`: the simulated room).
    pub fn load(
        models: &Models,
        mode: Mode,
        semantic: bool,
        camera: Option<Box<dyn iris_backend::Camera>>,
        timers: Option<&Path>,
    ) -> Result<Self> {
        let spec = PipelineSpec::parse(LISTEN_PIPELINE, BUILTIN)?;
        let extras = crate::alarms::Extras::load(models, timers)?;
        let stages = models.stages_sharing(&spec, &extras.alarms.timers, camera, extras.asr.clone())?;
        Self::with_stages(models, stages, mode, semantic, Some(extras))
    }

    /// The loop around pipeline stages made elsewhere (`iris serve`'s shared models); loads only
    /// the front end's small models (VAD, wake word, end of turn).
    pub fn with_stages(
        models: &Models,
        stages: Vec<Box<dyn iris_pipeline::Stage>>,
        mode: Mode,
        semantic: bool,
        extras: Option<crate::alarms::Extras>,
    ) -> Result<Self> {
        let cfg = &models.config;
        let spec = PipelineSpec::parse(LISTEN_PIPELINE, BUILTIN)?;
        let pipeline = Pipeline::start(&spec, stages, Turns::new());
        let env = models.onnx()?;
        let front = front_end(models, mode)?;
        let detector: Option<Box<dyn iris_backend::TurnDetector>> = if semantic {
            let file = models.file(crate::backends::TURN, "turn").context(
                "the semantic end-of-turn model; fetch it with `iris models pull smart-turn`, or set [audio] semantic_turn = false",
            )?;
            Some(Box::new(iris_smartturn::SmartTurn::load(env, &file, 1)?))
        } else {
            None
        };
        let a = &cfg.audio;
        let rules = TurnRules {
            mode,
            endpoint: cfg.speech.endpoint_ms as f64 / 1000.0,
            max_pause: a.max_pause_ms as f64 / 1000.0,
            follow_up: a.follow_up_ms as f64 / 1000.0,
            barge_in_on_speech: a.barge_in_on_speech,
            ..TurnRules::default()
        };
        Ok(Self {
            pipeline,
            front,
            controller: Controller::new(rules, semantic),
            detector,
            extras,
            echo_cancel: cfg.audio.echo_cancel,
            record: None,
        })
    }

    /// Runs the loop on `capture` and `speaker` until the capture finishes or `stop` is set.
    pub fn run(self, capture: &mut dyn Capture, speaker: Speaker, sinks: Vec<Box<dyn iris_live::EventSink>>, stop: &AtomicBool) -> Summary {
        self.run_with(capture, speaker, sinks, None, stop)
    }

    /// As `run`, polling `talk` each chunk for push-to-talk requests.
    pub fn run_with(
        self,
        capture: &mut dyn Capture,
        speaker: Speaker,
        sinks: Vec<Box<dyn iris_live::EventSink>>,
        talk: Option<Box<dyn FnMut() -> bool + '_>>,
        stop: &AtomicBool,
    ) -> Summary {
        let mut lp = LiveLoop::new(&self.pipeline, self.front, self.controller, self.detector, speaker);
        if self.echo_cancel {
            let mut aec: Box<dyn iris_backend::EchoCanceller> = Box::new(iris_aec::Aec3::new(iris_aec::Output::Linear));
            if let Some(dir) = &self.record {
                aec = crate::echo_record::recorded(aec, dir);
            }
            lp = lp.with_echo_canceller(aec);
        }
        if let Some(x) = self.extras {
            lp = lp.with_alarms(x.alarms.due(), x.announce).with_stop_check(x.stop_check);
            if let Some(clock) = x.alarms.clock {
                lp = lp.with_clock(clock);
            }
        }
        if let Some(talk) = talk {
            lp = lp.with_talk(talk);
        }
        for s in sinks {
            lp = lp.with_boxed_sink(s);
        }
        let summary = lp.run(capture, stop);
        self.pipeline.shutdown();
        summary
    }
}

/// A line on stderr for what a person watching would want to see.
pub(crate) fn console(e: &Event) {
    let line = match &e.kind {
        EventKind::Wake { word, score } => format!("heard {word} ({score:.2})"),
        EventKind::Transcript { text } => format!("you said: {text}"),
        EventKind::Answer { text } => format!("iris said: {text}"),
        EventKind::BargeIn => "interrupted".to_owned(),
        EventKind::Error { message } => format!("error: {message}"),
        _ => return,
    };
    eprintln!("[{:8.2}] {line}", e.t);
}

pub fn run(config_path: Option<&Path>, args: ListenArgs) -> Result<ExitCode> {
    let models = Models::open(config_path)?;
    let mode = mode_of(&models, args.mode.as_deref())?;
    let echo = args.echo.as_deref().map(Echo::parse).transpose().map_err(anyhow::Error::msg)?;
    let mic = args.mic_file.as_deref().map(iris_audio::load_speech).transpose()?;
    let mut sinks: Vec<Box<dyn iris_live::EventSink>> = vec![Box::new(console)];
    if let Some(path) = &args.events {
        let file = File::create(path).with_context(|| format!("cannot write the events file {}", path.display()))?;
        sinks.push(Box::new(JsonLines::new(BufWriter::new(file))));
    }
    let camera = crate::eyes::camera(&models.config, args.camera_file.as_deref())?;
    let simulated = mic.is_some() && args.speaker_file.is_some();
    let kept = (!simulated).then(|| crate::alarms::timers_file(config_path, &models));
    if args.record.is_some() && !models.config.audio.echo_cancel {
        bail!("--record keeps the echo canceller's input and output: set [audio] echo_cancel = true");
    }
    let mut assistant =
        Assistant::load(&models, mode, args.semantic.unwrap_or(models.config.audio.semantic_turn), camera, kept.as_deref())?;
    assistant.record = args.record.clone();
    let stop = AtomicBool::new(false);
    let summary = match (mic, &args.speaker_file) {
        (Some(mic), Some(out)) => {
            let (mut room, speaker) = Room::new(mic, out, echo)?;
            let summary = assistant.run(&mut room, speaker, sinks, &stop);
            room.finish()?;
            summary
        }
        _ => {
            if echo.is_some() {
                bail!("--echo applies to the simulated room: give --mic-file and --speaker-file too");
            }
            let a = &models.config.audio;
            eprintln!("listening (mode {:?}); Ctrl-C stops", mode);
            let mut devices = Devices::new(&a.input, &a.output);
            devices.limit = args.seconds.map(|s| (s.max(0.0) * 16_000.0) as u64);
            let speaker = devices.speaker.clone();
            // Push to talk from the terminal: each Enter starts a turn.
            let pressed = Arc::new(AtomicBool::new(false));
            if mode == Mode::PushToTalk {
                eprintln!("press Enter, then ask");
                let flag = pressed.clone();
                std::thread::spawn(move || {
                    for line in std::io::stdin().lines() {
                        if line.is_err() {
                            break;
                        }
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
            let talk = Box::new(move || pressed.swap(false, std::sync::atomic::Ordering::Relaxed));
            assistant.run_with(&mut devices, speaker, sinks, Some(talk), &stop)
        }
    };
    let scores: Vec<String> = summary.max_wake_scores.iter().map(|(w, s)| format!("{w} max {s:.3}")).collect();
    let echo = match (summary.echo_erle_db, summary.echo_delay_ms) {
        (Some(erle), delay) => format!(", echo cancelled by {erle:.1} dB (delay {} ms)", delay.map_or("?".into(), |d| d.to_string())),
        _ => String::new(),
    };
    eprintln!(
        "{:.1} s heard, {} wake(s) [{}], {} turn(s), {} error(s){echo}",
        summary.seconds,
        summary.wakes,
        scores.join(", "),
        summary.turns.len(),
        summary.errors
    );
    Ok(ExitCode::SUCCESS)
}

/// Real devices: the microphone, and the loudspeaker reopened with back-off. While there is no
/// loudspeaker the answers are drained unheard at the microphone's pace, so the loop goes on.
pub struct Devices {
    mic: iris_sound::Microphone,
    output: String,
    pub speaker: Speaker,
    loud: Option<iris_sound::Loudspeaker>,
    /// Stop after this many samples heard.
    pub limit: Option<u64>,
    heard: u64,
    /// With no device at all the media clock stands still: the limit also holds in wall time.
    started: Instant,
    /// The speaker's played position, and when it last moved (a stalled stream is reopened).
    last_played: u64,
    moved_at: Instant,
    next_try: Instant,
    backoff: Duration,
    reported: bool,
}

impl Devices {
    pub fn new(input: &str, output: &str) -> Self {
        Self {
            mic: iris_sound::Microphone::new(input),
            output: output.to_owned(),
            speaker: Speaker::new(16_000),
            loud: None,
            limit: None,
            heard: 0,
            started: Instant::now(),
            last_played: 0,
            moved_at: Instant::now(),
            next_try: Instant::now(),
            backoff: Duration::from_millis(250),
            reported: false,
        }
    }

    fn keep_loudspeaker(&mut self) {
        // A stream whose server went away may report nothing: if queued sound has not moved for
        // a second, the loudspeaker is gone too.
        let played = self.speaker.played();
        if played != self.last_played || self.speaker.pending() == 0 {
            (self.last_played, self.moved_at) = (played, Instant::now());
        }
        let stalled = self.moved_at.elapsed() > Duration::from_secs(1);
        if self.loud.as_ref().is_some_and(|l| l.failed() || stalled) {
            self.moved_at = Instant::now();
            if let Some(l) = self.loud.take() {
                l.close();
            }
            eprintln!("error: the loudspeaker stopped working; reopening it");
        }
        if self.loud.is_none() && Instant::now() >= self.next_try {
            match iris_sound::Loudspeaker::open(&self.output, &self.speaker) {
                Ok(l) => {
                    self.loud = Some(l);
                    self.backoff = Duration::from_millis(250);
                    self.reported = false;
                }
                Err(e) => {
                    if !self.reported {
                        eprintln!("error: {e}; answers are not heard until it is back (retrying)");
                        self.reported = true;
                    }
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl Capture for Devices {
    fn read(&mut self) -> Result<Vec<f32>, IoError> {
        self.keep_loudspeaker();
        let chunk = self.mic.read()?;
        self.heard += chunk.len() as u64;
        if self.loud.is_none() {
            let mut drained = vec![0.0; chunk.len()];
            self.speaker.pull(&mut drained);
        }
        Ok(chunk)
    }

    fn finished(&self) -> bool {
        self.limit.is_some_and(|l| self.heard >= l || self.started.elapsed().as_secs_f64() > l as f64 / 16_000.0 + 5.0)
    }
}

/// The per-turn figures a status page and `/metrics` show, from a turn's events.
pub fn voice_turn(t: &iris_live::TurnTimes) -> iris_engine::VoiceTurn {
    let ms = |a: Option<f64>, b: Option<f64>| Some(((b? - a?).max(0.0) * 1000.0).round() as u64);
    let stages = [
        ("end_of_turn", ms(t.speech_end, t.end_of_turn)),
        ("asr", ms(t.end_of_turn, t.transcript)),
        ("llm", ms(t.transcript, t.sentence)),
        ("tts", ms(t.sentence, t.audio_start)),
    ];
    iris_engine::VoiceTurn {
        transcript: t.transcript_text.clone(),
        answer: t.answer_text.clone(),
        stages_ms: stages.into_iter().filter_map(|(n, v)| Some((n.to_owned(), v?))).collect(),
        response_ms: t.response().map(|r| (r * 1000.0).round() as u64),
    }
}
