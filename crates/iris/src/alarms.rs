//! The live loop's timers and its side check for "stop", wired to real models.
//!
//! On devices the timers run on the wall clock and are kept in `$IRIS_HOME/timers.json` (each
//! change written atomically), so a timer set before a restart still rings, at once if it came
//! due while Iris was off. In the simulated room they run on the loop's media clock, which goes
//! faster than real time, and are not kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use iris_backend::AsrOptions;
use iris_tools::Timers;

use crate::backends::Models;

/// A timers file larger than this is not read (a few hundred timers fit in a few kilobytes).
const MAX_FILE: u64 = 64 << 10;
/// Timers saved at most.
const MAX_KEPT: usize = 256;

/// What the loop needs beside its pipeline: timers that ring, and the stop check.
pub struct Extras {
    pub alarms: Alarms,
    pub announce: iris_live::Announce,
    pub stop_check: iris_live::Transcribe,
    /// The recogniser the stop check shares with the pipeline, when they share one.
    pub asr: Option<Arc<dyn iris_backend::Asr>>,
}

impl Extras {
    /// `kept_in`: the timers file on devices; `None` in the simulated room (media clock,
    /// nothing kept).
    pub fn load(models: &Models, kept_in: Option<&Path>) -> Result<Self> {
        let alarms = match kept_in {
            Some(file) => Alarms::kept_in(file),
            None => Alarms::on_media_clock(),
        };
        // One recogniser for the pipeline and the stop check: a check runs while an answer
        // plays, when the pipeline's recogniser is idle.
        let asr = models.asr()?;
        let stop_check = stop_checker_on(asr.clone(), models.config.asr_language());
        Ok(Self { alarms, announce: announcer(models), stop_check, asr: Some(asr) })
    }

    /// Around timers made elsewhere (`iris serve`'s, shared with its API); the stop check's
    /// recogniser is loaded beside the loop.
    pub fn with_alarms(models: &Models, alarms: Alarms) -> Result<Self> {
        Ok(Self { alarms, announce: announcer(models), stop_check: stop_checker(models), asr: None })
    }
}

/// How long a timer that fired while no loop was listening still rings when one starts.
const STALE: Duration = Duration::from_secs(60);

/// Timers and what the loop polls for the ones that came due. Cloning shares them.
#[derive(Clone)]
pub struct Alarms {
    pub timers: Timers,
    /// Wall clock: the timers that fired, waiting for the loop.
    fired: Option<Arc<Mutex<Vec<(String, Instant)>>>>,
    /// Media clock: the loop's position, for timers on its clock.
    pub clock: Option<Arc<AtomicU64>>,
}

impl Alarms {
    /// Timers on the loop's media clock (the simulated room).
    pub fn on_media_clock() -> Self {
        let clock = Arc::new(AtomicU64::new(0));
        let pos = clock.clone();
        let timers = Timers::on_clock(Arc::new(move || pos.load(Ordering::Relaxed) as f64 / 16_000.0));
        Self { timers, fired: None, clock: Some(clock) }
    }

    /// Wall-clock timers kept in `file`. Each that fires is logged, and rung by a voice loop
    /// if one listens within a minute.
    pub fn kept_in(file: &Path) -> Self {
        let fired: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let on_fire = fired.clone();
        let pending = read(file);
        if !pending.is_empty() {
            eprintln!("{} timer(s) kept from before the restart", pending.len());
        }
        let path = file.to_owned();
        let persist = Box::new(move |due: &[(f64, String)]| save(&path, due));
        let timers = Timers::restored(
            Arc::new(move |label: &str| {
                eprintln!("timer: your {label} is done");
                let mut list = on_fire.lock().unwrap_or_else(|p| p.into_inner());
                list.retain(|(_, at)| at.elapsed() < STALE);
                list.push((label.to_owned(), Instant::now()));
            }),
            pending,
            Some(persist),
        );
        Self { timers, fired: Some(fired), clock: None }
    }

    /// What the loop polls each chunk: the labels of the timers that came due.
    pub fn due(&self) -> Box<dyn FnMut() -> Vec<String> + Send> {
        match &self.fired {
            Some(fired) => {
                let fired = fired.clone();
                Box::new(move || {
                    let mut list = fired.lock().unwrap_or_else(|p| p.into_inner());
                    std::mem::take(&mut *list).into_iter().filter(|(_, at)| at.elapsed() < STALE).map(|(l, _)| l).collect()
                })
            }
            None => {
                let timers = self.timers.clone();
                Box::new(move || timers.take_due())
            }
        }
    }
}

/// Where timers are kept: beside the settings file (`$IRIS_HOME` by default).
pub fn timers_file(config_path: Option<&Path>, models: &Models) -> PathBuf {
    let dir = config_path.and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()).unwrap_or(models.store.home());
    dir.join("timers.json")
}

/// The kept timers; a missing, oversized or damaged file is one line and no timers.
fn read(file: &Path) -> Vec<(f64, String)> {
    let bad = |why: String| {
        eprintln!("warning: {}: {why}; starting with no timers", file.display());
        Vec::new()
    };
    match std::fs::metadata(file) {
        Err(_) => return Vec::new(),
        Ok(m) if m.len() > MAX_FILE => return bad(format!("{} bytes, more than a timers file holds", m.len())),
        Ok(_) => {}
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return bad(e.to_string()),
    };
    match serde_json::from_str::<Vec<(f64, String)>>(&text) {
        Ok(list) => list.into_iter().filter(|(due, label)| due.is_finite() && label.len() <= 200).take(MAX_KEPT).collect(),
        Err(e) => bad(format!("not a timers file ({e})")),
    }
}

fn save(file: &Path, due: &[(f64, String)]) {
    let kept = &due[..due.len().min(MAX_KEPT)];
    let text = serde_json::to_string(kept).unwrap_or_else(|_| "[]".into());
    if let Err(e) = iris_config::write_atomic(file, text.as_bytes()) {
        eprintln!("error: cannot keep the timers in {}: {}", file.display(), iris_config::why_not_written(&e));
    }
}

/// A model loaded on its own thread from the start, so the loop listens while it loads; the
/// first use waits for it if it is not there yet.
struct Preloaded<T> {
    rx: Option<Receiver<Result<T, String>>>,
    value: Option<Result<T, String>>,
    /// Joined on drop: a process that exits while a model is still loading would tear ONNX
    /// Runtime down under the loader (a segfault at exit, seen when a short run ends early).
    loader: Option<std::thread::JoinHandle<()>>,
}

impl<T> Drop for Preloaded<T> {
    fn drop(&mut self) {
        if let Some(loader) = self.loader.take() {
            let _ = loader.join();
        }
    }
}

impl<T: Send + 'static> Preloaded<T> {
    fn start(what: &str, load: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new().name(format!("iris-load-{what}")).spawn(move || {
            // Below the loop's priority: on two cores a load must not starve the microphone.
            // SAFETY: setpriority on the calling thread (Linux: `who` 0 is this thread).
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
            let _ = tx.send(load().map_err(|e| format!("{e:#}")));
        });
        match spawned {
            Ok(loader) => Self { rx: Some(rx), value: None, loader: Some(loader) },
            Err(e) => Self { rx: None, value: Some(Err(format!("cannot start loading the {what}: {e}"))), loader: None },
        }
    }

    fn get(&mut self) -> Result<&mut T, String> {
        let rx = self.rx.take();
        let value = self.value.get_or_insert_with(|| rx.and_then(|r| r.recv().ok()).unwrap_or_else(|| Err("it did not load".into())));
        value.as_mut().map_err(|e| e.clone())
    }
}

/// The reminder's voice: the configured Piper voice (and the others, for other languages),
/// loaded beside the loop at low priority so the loop's start is not slowed.
pub fn announcer(models: &Models) -> iris_live::Announce {
    let m = models.with_config(models.config.clone());
    let mut voice = Preloaded::start("reminder voice", move || m.voice(&m.config.models.tts));
    Box::new(move |text: &str| {
        let voice = voice.get()?;
        let rate = voice.sample_rate();
        voice.synthesize(text, &|| false).map(|s| (s, rate)).map_err(|e| e.to_string())
    })
}

/// The stop check on a recogniser already loaded.
fn stop_checker_on(asr: Arc<dyn iris_backend::Asr>, language: Option<String>) -> iris_live::Transcribe {
    stop_check(move || Ok(asr.clone()), language)
}

/// The stop check on a second instance of the configured recogniser, loaded beside the loop.
pub fn stop_checker(models: &Models) -> iris_live::Transcribe {
    let m = models.with_config(models.config.clone());
    let mut asr = Preloaded::start("stop check", move || m.asr());
    stop_check(move || asr.get().map(|a| a.clone()), models.config.asr_language())
}

/// Transcribes a short utterance on the recogniser `asr` gives (waiting for it if it loads).
fn stop_check(
    mut asr: impl FnMut() -> Result<Arc<dyn iris_backend::Asr>, String> + Send + 'static,
    language: Option<String>,
) -> iris_live::Transcribe {
    Box::new(move |audio: &[f32]| {
        let opts = AsrOptions { language: language.clone(), partial: false, fit_context: true };
        asr()?.transcribe(audio, &opts, &|| false).map(|o| o.text).map_err(|e| e.to_string())
    })
}
