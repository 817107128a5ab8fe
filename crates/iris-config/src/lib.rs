//! Iris's settings file (`$IRIS_HOME/config.toml`, or `--config`): parsed and validated here,
//! with no I/O beyond reading the file. Every field has a default, so an empty or missing file
//! is a working configuration; an invalid one is an error naming the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod atomic;
mod board;
mod onnx;
mod profile;
mod remote;
mod tflite;
mod web;
mod wyoming;
pub use atomic::{remove_leftovers, why_not_written, write_atomic, TEMP_PREFIX};
pub use board::{Board, BoardError};
pub use onnx::Onnx;
pub use profile::{Profile, ProfileError};
pub use remote::LlmServer;
pub use tflite::Tflite;
pub use web::Web;
pub use wyoming::Wyoming;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: `{field}` {problem}")]
    Invalid { path: PathBuf, field: &'static str, problem: String },
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub assistant: Assistant,
    pub models: Models,
    pub speech: Speech,
    pub tools: Tools,
    pub audio: Audio,
    pub wyoming: Wyoming,
    pub camera: Camera,
    pub llm_server: LlmServer,
    pub onnx: Onnx,
    pub tflite: Tflite,
    pub web: Web,
    pub kiosk: Kiosk,
    /// Worker threads for inference; 0 means all cores.
    pub threads: usize,
    /// The profile last chosen (`pipelines/profiles/`), "" for none: for the panel to show.
    pub profile: String,
}

/// `[kiosk]`: the full-screen push-to-talk page at `/kiosk`, for a public kiosk. It answers the
/// box's own browser (and the logged-in owner); each question stands alone.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Kiosk {
    pub enabled: bool,
    /// Seconds without a question after which the page clears itself for the next visitor.
    pub idle_reset_s: u64,
}

impl Default for Kiosk {
    fn default() -> Self {
        Self { enabled: false, idle_reset_s: 60 }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Assistant {
    pub name: String,
    pub system_prompt: String,
    /// What the model is told it cannot know, said after the system prompt (empty: nothing).
    /// Left out where an API client brings its own tools, which may well know the weather.
    pub limits: String,
    pub max_tokens: usize,
    pub temperature: f64,
    pub history_turns: usize,
    /// Stop an answer after this many sentences (0: no limit).
    pub max_sentences: usize,
    /// Sampling when temperature > 0: the k likeliest tokens (0: all), the nucleus p (0: off).
    pub top_k: usize,
    pub top_p: f64,
    /// The answer ends before the first of these texts.
    pub stop: Vec<String>,
    /// Offer the tools (time, timers, calculator, home actions) to the model as functions it
    /// may call, for requests the built-in phrasings miss. Best with a model whose template has
    /// a tool format (Qwen2.5); a small model without one is slowed and confused by it.
    pub model_tools: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Models {
    pub asr: String,
    pub llm: String,
    pub tts: String,
    pub vad: String,
    pub runtime: String,
    /// Which engine runs Whisper: "whisper.cpp" (CPU) or "candle" (CPU, or CUDA in a CUDA build).
    pub asr_engine: String,
    /// Where candle runs: "cpu", "cuda", "metal", or "auto" (the GPU this build has, if one answers).
    pub device: String,
    /// A folder with a PaliGemma checkpoint (config.json, *.safetensors, tokenizer.json) to
    /// describe images; empty: the offline vision aid (text reading, object names, colours).
    pub vlm: String,
}

/// The live voice loop (`iris listen`, and `iris serve` when `enabled`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audio {
    /// Run the loop inside `iris serve` on the devices below.
    pub enabled: bool,
    /// Device names from `iris audio list`; empty means the default device.
    pub input: String,
    pub output: String,
    /// "wake_word", "always" or "push_to_talk".
    pub mode: String,
    /// openWakeWord words to listen for (see [`WAKE_WORDS`]).
    pub wake_words: Vec<String>,
    /// The runtime of the wake-word networks: "onnx" (ONNX Runtime) or "tflite" (TensorFlow
    /// Lite, as on small boards). A word that exists only in the other format runs there.
    pub wake_runtime: String,
    /// The wake-word engine: "openwakeword" (on `wake_runtime`) or "microwakeword" (TensorFlow
    /// Lite, 50-80 KB a word, for small boards: [`MICRO_WAKE_WORDS`]; each word's model brings
    /// its own cutoff, used in place of `wake_threshold`).
    pub wake_engine: String,
    /// Score (0..1) at or above which a wake word wakes Iris.
    pub wake_threshold: f32,
    /// During an answer, a wake word score at or above this (and under `wake_threshold`) pauses
    /// the answer until the word is confirmed or not (then it goes on where it paused): the
    /// speaker falls silent as the word ends rather than when its score settles. 0 turns it off.
    pub wake_hold_threshold: f32,
    /// Any speech during an answer interrupts it, not only the wake word (best with
    /// `echo_cancel` on a speaker, or with headphones).
    pub barge_in_on_speech: bool,
    /// After a detection, the same word is ignored this long, in ms.
    pub refractory_ms: u64,
    /// After an answer, speech within this long needs no wake word, in ms; 0 turns it off.
    pub follow_up_ms: u64,
    /// Ask a semantic end-of-turn model whether a pause ends the sentence (needs `smart-turn`).
    pub semantic_turn: bool,
    /// With the semantic check, the longest pause inside an unfinished sentence, in ms.
    pub max_pause_ms: u64,
    /// Silence after which the recogniser starts on the question so far, and the answer ahead
    /// with it, before the pause (200 ms) that decides the turn, in ms; 200 waits for the pause.
    /// A decode that speech makes moot stops, so a lull inside a sentence costs little.
    pub lull_ms: u64,
    /// Take the loudspeaker's echo out of the microphone (WebRTC's AEC3), so Iris does not hear
    /// itself. Off by default: AEC3's suppressor also takes out a short "stop" said over an
    /// answer (double talk), which matters more on a device whose microphone barely hears it.
    pub echo_cancel: bool,
}

impl Default for Audio {
    fn default() -> Self {
        Self {
            enabled: false,
            input: String::new(),
            output: String::new(),
            mode: "wake_word".into(),
            wake_words: vec!["hey_jarvis".into()],
            wake_runtime: "onnx".into(),
            wake_engine: "openwakeword".into(),
            wake_threshold: 0.5,
            wake_hold_threshold: 0.2,
            barge_in_on_speech: false,
            refractory_ms: 2_000,
            follow_up_ms: 5_000,
            semantic_turn: false,
            max_pause_ms: 1_200,
            lull_ms: 100,
            echo_cancel: false,
        }
    }
}

/// `[camera]`: a question about what is in front of the user ("what is this?", "read this")
/// takes this camera's latest frame at that moment.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    pub enabled: bool,
    /// Which camera (`iris look --list-cameras`).
    pub index: u32,
}

/// The wake words the `openwakeword` (ONNX) and `openwakeword-tflite` models ship between them.
pub const WAKE_WORDS: &[&str] = &["hey_jarvis", "alexa", "hey_mycroft", "hey_marvin", "hey_rhasspy", "okay_nabu"];

/// The words of the `microwakeword` models.
pub const MICRO_WAKE_WORDS: &[&str] = &["okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"];

/// The home-action webhook (e.g. a Home Assistant service URL); empty means none.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tools {
    pub webhook_url: String,
    pub webhook_token: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Speech {
    /// ISO 639-1 language of the user, or "auto" (multilingual models only).
    pub language: String,
    /// Speaking rate; 1.0 is the voice's own.
    pub rate: f32,
    /// Peak loudness, 0..1.
    pub volume: f32,
    /// Trailing silence that ends an utterance, in ms.
    pub endpoint_ms: u64,
    /// Media time between partial transcripts while someone speaks, in ms; 0 turns them off.
    pub partial_ms: u64,
}

impl Default for Assistant {
    fn default() -> Self {
        Self {
            name: "Iris".into(),
            // Tuned on SmolLM2-135M: longer instructions make a small model ramble or go wrong.
            system_prompt: "You are a helpful AI assistant named Iris. Give short, correct answers.".into(),
            // Measured with `iris eval answers` (README, Answers worth hearing): without it the
            // default model makes up the user's car, dog and weather.
            limits: DEFAULT_LIMITS.into(),
            max_tokens: 80,
            temperature: 0.0,
            history_turns: 4,
            max_sentences: 2,
            top_k: 0,
            top_p: 0.0,
            stop: Vec::new(),
            model_tools: false,
        }
    }
}

/// What the model cannot know offline, in the words measured best (see `Assistant::limits`).
pub const DEFAULT_LIMITS: &str = "You have no internet, news or weather forecasts, and you know nothing about the user's life, home or day except what they have told you: when a question needs those, say that you don't know.";

impl Assistant {
    /// The system message: the persona, then the limits unless the client brought tools.
    pub fn instructions(&self, client_tools: bool) -> String {
        let persona = self.system_prompt.trim();
        let limits = self.limits.trim();
        match (persona.is_empty(), limits.is_empty() || client_tools) {
            (_, true) => persona.to_owned(),
            (true, false) => limits.to_owned(),
            (false, false) => format!("{persona} {limits}"),
        }
    }
}

impl Default for Models {
    fn default() -> Self {
        Self {
            asr: "whisper-tiny.en".into(),
            llm: default_llm(),
            tts: "piper-en_US-joe-medium".into(),
            vad: "silero-vad".into(),
            runtime: "onnxruntime".into(),
            asr_engine: "whisper.cpp".into(),
            device: "auto".into(),
            vlm: String::new(),
        }
    }
}

/// The default pack's language model: the smallest one that answers the held-out questions
/// right (README, "Answers"). `IRIS_DEFAULT_LLM` names another for settings that name none: a
/// board with little memory, or the test suite, which pins SmolLM2-135M to keep its time and
/// tests this default on its own.
pub const DEFAULT_LLM: &str = "qwen2.5-coder-1.5b-instruct";

fn default_llm() -> String {
    std::env::var("IRIS_DEFAULT_LLM").ok().filter(|id| !id.trim().is_empty()).unwrap_or_else(|| DEFAULT_LLM.into())
}

impl Default for Speech {
    fn default() -> Self {
        Self { language: "en".into(), rate: 1.0, volume: 0.9, endpoint_ms: 500, partial_ms: 500 }
    }
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError::Read { path: path.into(), message: e.to_string() }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = match line {
                Some(n) => format!("line {n}: {}", e.message()),
                None => e.message().to_owned(),
            };
            ConfigError::Read { path: path.into(), message }
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// The file's text, as `parse` reads it back.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks and then writes the settings: to a temporary file beside `path`, renamed into
    /// place, so a crash never leaves a half-written config.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate(path)?;
        let text = self.to_toml();
        let write = |message: String| ConfigError::Read { path: path.into(), message };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| write(format!("cannot create its folder: {e}")))?;
        write_atomic(path, text.as_bytes())
            .map_err(|e| write(format!("cannot save it: {}; the settings in force are unchanged", why_not_written(&e))))
    }

    /// Every value in its allowed range; the error names the first field that is not.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: &'static str, problem: String| Err(ConfigError::Invalid { path: path.into(), field, problem });
        if !(1..=4096).contains(&self.assistant.max_tokens) {
            return bad("assistant.max_tokens", format!("is {}; use 1 to 4096", self.assistant.max_tokens));
        }
        if !(0.0..=2.0).contains(&self.assistant.temperature) {
            return bad("assistant.temperature", format!("is {}; use 0 (greedy) to 2", self.assistant.temperature));
        }
        if self.assistant.system_prompt.len() > 8_000 {
            return bad("assistant.system_prompt", "is longer than 8000 bytes".into());
        }
        if self.assistant.limits.len() > 8_000 {
            return bad("assistant.limits", "is longer than 8000 bytes".into());
        }
        if !(0.25..=4.0).contains(&self.speech.rate) {
            return bad("speech.rate", format!("is {}; use 0.25 to 4", self.speech.rate));
        }
        if !(0.0..=1.0).contains(&self.speech.volume) {
            return bad("speech.volume", format!("is {}; use 0 to 1", self.speech.volume));
        }
        if !(100..=5_000).contains(&self.speech.endpoint_ms) {
            return bad("speech.endpoint_ms", format!("is {}; use 100 to 5000", self.speech.endpoint_ms));
        }
        if !(0.0..=1.0).contains(&self.assistant.top_p) {
            return bad("assistant.top_p", format!("is {}; use 0 (off) to 1", self.assistant.top_p));
        }
        if !["whisper.cpp", "candle"].contains(&self.models.asr_engine.as_str()) {
            return bad("models.asr_engine", format!("is \"{}\"; use \"whisper.cpp\" or \"candle\"", self.models.asr_engine));
        }
        if !["auto", "cpu", "cuda", "metal"].contains(&self.models.device.as_str()) {
            return bad("models.device", format!("is \"{}\"; use \"auto\", \"cpu\", \"cuda\" or \"metal\"", self.models.device));
        }
        if self.speech.partial_ms != 0 && !(200..=5_000).contains(&self.speech.partial_ms) {
            return bad("speech.partial_ms", format!("is {}; use 200 to 5000, or 0 for no partials", self.speech.partial_ms));
        }
        if self.assistant.top_k > 1_000 {
            return bad("assistant.top_k", format!("is {}; use 0 (all) to 1000", self.assistant.top_k));
        }
        if self.assistant.history_turns > 50 {
            return bad("assistant.history_turns", format!("is {}; use 0 to 50", self.assistant.history_turns));
        }
        if self.assistant.max_sentences > 50 {
            return bad("assistant.max_sentences", format!("is {}; use 0 (no limit) to 50", self.assistant.max_sentences));
        }
        if self.assistant.stop.len() > 8 || self.assistant.stop.iter().any(|s| s.is_empty() || s.len() > 64) {
            return bad("assistant.stop", "holds at most 8 texts of 1 to 64 bytes".into());
        }
        if self.assistant.name.trim().is_empty() || self.assistant.name.len() > 64 {
            return bad("assistant.name", "must be 1 to 64 bytes".into());
        }
        if self.models.vlm.len() > 4096 {
            return bad("models.vlm", "is longer than 4096 bytes".into());
        }
        if self.threads > 256 {
            return bad("threads", format!("is {}; use 0 (all cores) to 256", self.threads));
        }
        let a = &self.audio;
        if !["wake_word", "always", "push_to_talk"].contains(&a.mode.as_str()) {
            return bad("audio.mode", format!("is {:?}; use \"wake_word\", \"always\" or \"push_to_talk\"", a.mode));
        }
        if !["openwakeword", "microwakeword"].contains(&a.wake_engine.as_str()) {
            return bad("audio.wake_engine", format!("is {:?}; use \"openwakeword\" or \"microwakeword\"", a.wake_engine));
        }
        let words = if a.wake_engine == "microwakeword" { MICRO_WAKE_WORDS } else { WAKE_WORDS };
        if let Some(w) = a.wake_words.iter().find(|w| !words.contains(&w.as_str())) {
            return bad("audio.wake_words", format!("has {w:?}; {} has {}", a.wake_engine, words.join(", ")));
        }
        if !["onnx", "tflite"].contains(&a.wake_runtime.as_str()) {
            return bad("audio.wake_runtime", format!("is {:?}; use \"onnx\" or \"tflite\"", a.wake_runtime));
        }
        if a.mode == "wake_word" && a.wake_words.is_empty() {
            return bad("audio.wake_words", "is empty in wake_word mode; name at least one, e.g. [\"hey_jarvis\"]".into());
        }
        if !(0.05..=0.99).contains(&a.wake_threshold) {
            return bad("audio.wake_threshold", format!("is {}; use 0.05 to 0.99", a.wake_threshold));
        }
        if a.wake_hold_threshold != 0.0 && !(0.05..a.wake_threshold).contains(&a.wake_hold_threshold) {
            return bad(
                "audio.wake_hold_threshold",
                format!("is {}; use 0 (off) or 0.05 up to under wake_threshold ({})", a.wake_hold_threshold, a.wake_threshold),
            );
        }
        if a.refractory_ms > 10_000 {
            return bad("audio.refractory_ms", format!("is {}; use 0 to 10000", a.refractory_ms));
        }
        if a.follow_up_ms > 30_000 {
            return bad("audio.follow_up_ms", format!("is {}; use 0 (off) to 30000", a.follow_up_ms));
        }
        if !(200..=5_000).contains(&a.max_pause_ms) {
            return bad("audio.max_pause_ms", format!("is {}; use 200 to 5000", a.max_pause_ms));
        }
        if !(40..=200).contains(&a.lull_ms) {
            return bad("audio.lull_ms", format!("is {}; use 40 to 200 (200: at the pause)", a.lull_ms));
        }
        if a.wake_words.len() > WAKE_WORDS.len() {
            return bad("audio.wake_words", format!("has {} entries; list each word once", a.wake_words.len()));
        }
        if a.input.len() > 256 || a.output.len() > 256 {
            return bad("audio.input", "device names are at most 256 bytes".into());
        }
        if self.camera.index > 63 {
            return bad("camera.index", format!("is {}; use 0 to 63 (see `iris look --list-cameras`)", self.camera.index));
        }
        if let Err(problem) = self.wyoming.check() {
            return bad("wyoming.allow", problem);
        }
        if let Err((field, problem)) = self.llm_server.check() {
            return bad(field, problem);
        }
        if let Err((field, problem)) = self.onnx.check() {
            return bad(field, problem);
        }
        if let Err((field, problem)) = self.tflite.check() {
            return bad(field, problem);
        }
        if let Err((field, problem)) = self.web.check() {
            return bad(field, problem);
        }
        if !(10..=3600).contains(&self.kiosk.idle_reset_s) {
            return bad("kiosk.idle_reset_s", format!("is {}; use 10 to 3600 seconds", self.kiosk.idle_reset_s));
        }
        if !(self.profile.is_empty() || Profile::exists(&self.profile)) {
            return bad("profile", format!("is {:?}; use home, vision-aid, kiosk or headless (or leave it empty)", self.profile));
        }
        let url = &self.tools.webhook_url;
        if url.len() > 2048 || self.tools.webhook_token.len() > 1024 {
            return bad("tools.webhook_url", "is longer than 2048 bytes (or its token than 1024)".into());
        }
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad("tools.webhook_url", format!("is {url:?}; use an http:// or https:// URL"));
        }
        let lang = &self.speech.language;
        if lang != "auto" && !(lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase())) {
            return bad("speech.language", format!("is {lang:?}; use a two-letter code such as \"en\", or \"auto\""));
        }
        Ok(())
    }

    /// The language to recognise: the configured code, or `None` to detect it ("auto").
    pub fn asr_language(&self) -> Option<String> {
        (self.speech.language != "auto").then(|| self.speech.language.clone())
    }

    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.models.asr, "whisper-tiny.en");
    }

    #[test]
    fn the_limits_follow_the_persona_unless_the_client_brings_tools() {
        let mut a = Assistant { system_prompt: "Be Ada.".into(), limits: "No internet.".into(), ..Assistant::default() };
        assert_eq!(a.instructions(false), "Be Ada. No internet.");
        assert_eq!(a.instructions(true), "Be Ada.");
        a.system_prompt.clear();
        assert_eq!(a.instructions(false), "No internet.");
        a.limits = " ".into();
        assert_eq!(a.instructions(false), "");
    }

    #[test]
    fn saved_file_reads_back_the_same() {
        let dir = std::env::temp_dir().join(format!("iris-config-{}", std::process::id()));
        let path = dir.join("config.toml");
        let mut c = Config::default();
        c.assistant.system_prompt = "You are \"Iris\".\nBe brief.".into();
        c.speech.rate = 1.25;
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        c.speech.rate = 99.0;
        assert!(c.save(&path).is_err());
        assert_eq!(Config::load(&path).unwrap().speech.rate, 1.25, "a bad config leaves the old file");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = Config::parse("[speech]\nrate = 9.0", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("`speech.rate` is 9"), "{e}");
        let e = Config::parse("[assistant]\nmax_tokens = 3\nmax_tokns = 3", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml: line 3: unknown field `max_tokns`"), "{e}");
    }

    /// Issue 14.2: `threads = 100000` spawned thousands of threads; a machine can bear 256.
    #[test]
    fn threads_and_audio_settings_have_ranges() {
        let e = Config::parse("threads = 100000", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("`threads` is 100000; use 0 (all cores) to 256"), "{e}");
        assert!(Config::parse("threads = 256", Path::new("c.toml")).is_ok());
        for (text, field) in [
            ("[audio]\nmode = \"sometimes\"", "audio.mode"),
            ("[camera]\nindex = 4096", "camera.index"),
            ("[audio]\nwake_words = [\"hey_siri\"]", "audio.wake_words"),
            ("[audio]\nwake_threshold = 0.0", "audio.wake_threshold"),
            ("[audio]\nwake_hold_threshold = 0.6", "audio.wake_hold_threshold"),
            ("[audio]\nwake_runtime = \"tpu\"", "audio.wake_runtime"),
            ("[audio]\nwake_engine = \"porcupine\"", "audio.wake_engine"),
            ("[audio]\nwake_engine = \"microwakeword\"\nwake_words = [\"hey_rhasspy\"]", "audio.wake_words"),
            ("[audio]\nfollow_up_ms = 3600000", "audio.follow_up_ms"),
            ("[assistant]\ntop_k = 100000", "assistant.top_k"),
            ("[assistant]\nhistory_turns = 100000", "assistant.history_turns"),
            ("[assistant]\nstop = [\"\"]", "assistant.stop"),
            ("[wyoming]\nallow = [\"nas.local\"]", "wyoming.allow"),
            ("[llm_server]\nurl = \"192.168.1.20:8080\"", "llm_server.url"),
            ("[llm_server]\nwait_ms = 0", "llm_server.wait_ms"),
            ("[onnx]\nproviders = [\"npu\"]", "onnx.providers"),
            ("[onnx]\nproviders = []", "onnx.providers"),
            ("[onnx]\nproviders = [\"qnn\", \"openvino\", \"cpu\"]", "onnx.providers"),
            ("[onnx.models]\nsmart-turn = [\"tpu\"]", "onnx.models"),
        ] {
            let e = Config::parse(text, Path::new("c.toml")).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
