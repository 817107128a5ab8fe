//! The assistant as a long-running service: the models loaded once and shared by every client
//! (the panel, the OpenAI-compatible API, Wyoming), swapped whole when the configuration names
//! other models, whole turns run through the pipeline, and the statistics a status page and
//! `/metrics` show. No model or C dependency: the binary supplies a [`Loader`].

mod missing;
mod shared;
mod stats;
mod transcribe;
mod turn;
mod voice;

use std::sync::{Arc, RwLock};

use iris_backend::{Asr, BackendError, ChatMessage, Flow, GenParams, GenStats, Llm, Skills, StopFlag, Tts, Vad, Vlm};
use iris_config::Config;
use iris_pipeline::stages::{LlmSettings, LlmStage};

pub use shared::{SharedLlm, SharedTts, SharedVlm};
pub use stats::{now_unix, Histogram, LogLine, Stats, TurnRecord, BUCKETS};
pub use turn::{TurnEvent, TurnInput};
pub use voice::VoiceTurn;

use shared::{lock, Shared};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load the models: {0}")]
    Load(String),
    #[error("`{field}` {problem}")]
    Invalid { field: String, problem: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Turn(String),
}

/// The most text one request may have spoken (HTTP and Wyoming alike).
pub const MAX_SPEAK_BYTES: usize = 4096;

/// A model in use, for the status page: what it does, which one, and where it really runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LoadedModel {
    pub task: String,
    pub id: String,
    pub device: String,
}

/// Factories for parts that keep per-stream state and so cannot be shared.
pub type VadFactory = Arc<dyn Fn() -> Result<Box<dyn Vad>, BackendError> + Send + Sync>;
pub type SkillsFactory = Arc<dyn Fn() -> Box<dyn Skills> + Send + Sync>;

/// Everything one configuration loads.
pub struct Backends {
    pub asr: Arc<dyn Asr>,
    pub llm: Box<dyn Llm>,
    pub tts: Box<dyn Tts>,
    pub vision: Option<Box<dyn Vlm>>,
    /// A fresh VAD for each turn; `None` recognises each turn's audio whole.
    pub vad: Option<VadFactory>,
    pub skills: Option<SkillsFactory>,
    pub loaded: Vec<LoadedModel>,
}

/// Builds backends from a configuration: the binary's real models, or fakes in tests.
pub trait Loader: Send + Sync {
    /// What stops `config` from loading, found without loading it (a model not installed):
    /// the field to fix and the problem.
    fn check(&self, config: &Config) -> Result<(), (String, String)>;
    fn load(&self, config: &Config) -> Result<Backends, String>;
}

struct Live {
    config: Config,
    /// Why the models are stand-ins (not installed at start), until they load.
    missing: Option<String>,
    asr: Arc<dyn Asr>,
    llm: Shared<Box<dyn Llm>>,
    tts: Shared<Box<dyn Tts>>,
    vision: Option<Shared<Box<dyn Vlm>>>,
    vad: Option<VadFactory>,
    skills: Option<SkillsFactory>,
    loaded: Vec<LoadedModel>,
}

impl Live {
    /// The answering end of a pipeline on these shared models: the language model (with the
    /// vision model and, when `tools`, the skills), sentences, the voice.
    fn answer_stages(&self, tools: bool, camera: Option<Box<dyn iris_backend::Camera>>) -> [Box<dyn iris_pipeline::Stage>; 3] {
        let vision = self.vision.clone().map(|v| Box::new(SharedVlm(v)) as Box<dyn Vlm>);
        let mut llm = LlmStage::new(Box::new(SharedLlm(self.llm.clone())), vision, llm_settings(&self.config));
        if let Some(skills) = self.skills.as_ref().filter(|_| tools) {
            llm = llm.with_skills(skills());
        }
        if let Some(camera) = camera {
            llm = llm.with_camera(camera);
        }
        [
            Box::new(llm),
            Box::new(iris_pipeline::stages::SentenceStage::new()),
            Box::new(iris_pipeline::stages::TtsStage::new(Box::new(SharedTts(self.tts.clone())))),
        ]
    }

    fn new(config: Config, b: Backends) -> Self {
        Self {
            config,
            missing: None,
            asr: b.asr,
            llm: Arc::new(std::sync::Mutex::new(b.llm)),
            tts: Arc::new(std::sync::Mutex::new(b.tts)),
            vision: b.vision.map(|v| Arc::new(std::sync::Mutex::new(v))),
            vad: b.vad,
            skills: b.skills,
            loaded: b.loaded,
        }
    }
}

/// What applying a new configuration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Only settings read per turn changed: in force for the next turn.
    Settings,
    /// Models or their load-time settings changed: they were loaded again.
    Reloaded,
}

pub struct Engine {
    loader: Box<dyn Loader>,
    live: RwLock<Arc<Live>>,
    pub stats: Stats,
    /// The voice loop runs (`iris serve` with `[audio] enabled`), and push-to-talk requests for it.
    voice_loop: std::sync::atomic::AtomicBool,
    talk: std::sync::atomic::AtomicU64,
    /// Counts configurations put in force, so a long-running user (the voice loop) notices one.
    generation: std::sync::atomic::AtomicU64,
}

impl Engine {
    pub fn start(loader: Box<dyn Loader>, config: Config) -> Result<Self, EngineError> {
        let backends = loader.load(&config).map_err(EngineError::Load)?;
        Ok(Self::with_live(loader, Live::new(config, backends)))
    }

    /// Starts without loading: `config`'s models are not installed yet (`problem` says which,
    /// and how to get them). Every request that needs a model is answered with that; the
    /// models load when [`Engine::complete`] finds them installed.
    pub fn start_without_models(loader: Box<dyn Loader>, config: Config, problem: &str) -> Self {
        let backends = missing::backends(&config, problem);
        let mut live = Live::new(config, backends);
        live.missing = Some(problem.to_owned());
        Self::with_live(loader, live)
    }

    /// What keeps the assistant from answering (models not installed), if anything.
    pub fn missing(&self) -> Option<String> {
        self.live().missing.clone()
    }

    /// Loads the configured models if they were missing and are installed now (called after
    /// a model is fetched); whether the assistant is ready.
    pub fn complete(&self) -> bool {
        let Some(problem) = self.missing() else { return true };
        let config = self.config();
        if let Err((field, why)) = self.loader.check(&config) {
            let now = format!("`{field}` {why}");
            // Still missing, perhaps another part now: say what is missing now.
            if now != problem {
                let mut next = Live::new(config.clone(), missing::backends(&config, &now));
                next.missing = Some(now);
                *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
            }
            return false;
        }
        match self.loader.load(&config) {
            Ok(backends) => {
                *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Live::new(config, backends));
                self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
                self.stats.log("info", format!("every model is installed; loaded: {}", describe(&self.loaded())));
                true
            }
            Err(e) => {
                self.stats.log("error", format!("the models are installed but do not load: {e}"));
                false
            }
        }
    }

    fn with_live(loader: Box<dyn Loader>, live: Live) -> Self {
        let live = RwLock::new(Arc::new(live));
        let engine = Self {
            loader,
            live,
            stats: Stats::default(),
            voice_loop: Default::default(),
            talk: Default::default(),
            generation: Default::default(),
        };
        match engine.missing() {
            None => engine.stats.log("info", format!("models loaded: {}", describe(&engine.loaded()))),
            Some(problem) => engine.stats.log("warn", format!("started without models: {problem}")),
        }
        engine
    }

    fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn config(&self) -> Config {
        self.live().config.clone()
    }

    pub fn loaded(&self) -> Vec<LoadedModel> {
        self.live().loaded.clone()
    }

    /// Checks `config` without loading anything.
    pub fn check(&self, config: &Config) -> Result<(), EngineError> {
        self.loader.check(config).map_err(|(field, problem)| EngineError::Invalid { field, problem })
    }

    /// Puts `config` in force. Models are loaded again only when what they load from changed;
    /// if that fails the old models and settings stay in force.
    pub fn apply(&self, config: Config) -> Result<Applied, EngineError> {
        self.check(&config)?;
        let old = self.live();
        let needs_load = old.missing.is_some()
            || old.config.models != config.models
            || old.config.threads != config.threads
            || old.config.speech.rate != config.speech.rate
            || old.config.speech.volume != config.speech.volume
            || old.config.tools != config.tools;
        let live = if needs_load {
            let backends = self.loader.load(&config).map_err(|m| {
                // A model that cannot be loaded (damaged, missing) is the owner's to know about.
                self.stats.log("error", format!("settings not applied, the models in force stay: {m}"));
                EngineError::Load(m)
            })?;
            Live::new(config, backends)
        } else {
            Live {
                config,
                missing: None,
                asr: old.asr.clone(),
                llm: old.llm.clone(),
                tts: old.tts.clone(),
                vision: old.vision.clone(),
                vad: old.vad.clone(),
                skills: old.skills.clone(),
                loaded: old.loaded.clone(),
            }
        };
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        let applied = if needs_load { Applied::Reloaded } else { Applied::Settings };
        self.stats.log("info", format!("configuration applied ({applied:?}): {}", describe(&self.loaded())));
        Ok(applied)
    }

    /// How many configurations were put in force since start: a change means `config()` may differ.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The generation settings of the configuration in force.
    pub fn gen_params(&self) -> GenParams {
        llm_settings(&self.live().config).params
    }

    /// Raw chat completion: `messages` as given (the API client keeps the conversation).
    pub fn chat(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, EngineError> {
        let live = self.live();
        let started = std::time::Instant::now();
        let stats = lock(&live.llm).generate(messages, params, stop, on_text)?;
        self.stats.observe("llm", started.elapsed());
        Ok(stats)
    }

    /// Speaks `text` with the configured voice: mono samples and their rate.
    pub fn speak(&self, text: &str, stop: &dyn StopFlag) -> Result<(Vec<f32>, u32), EngineError> {
        let mut audio = Vec::new();
        let rate = self.speak_each(text, stop, &mut |samples, _| {
            audio.extend_from_slice(samples);
            Flow::Continue
        })?;
        Ok((audio, rate))
    }

    /// Speaks `text` sentence by sentence, as the voice loop does (Piper phrases each one
    /// whole), handing each sentence's samples and their rate on as soon as they are made, so
    /// a client hears the start while the rest is synthesised; `Flow::Stop` ends it there.
    /// Returns the rate.
    pub fn speak_each(&self, text: &str, stop: &dyn StopFlag, on_audio: &mut dyn FnMut(&[f32], u32) -> Flow) -> Result<u32, EngineError> {
        // Checked here, where every caller (HTTP, Wyoming) passes: speech costs ~3 s of CPU per KB.
        if text.len() > MAX_SPEAK_BYTES {
            return Err(EngineError::Turn(format!("the text to speak is {} bytes; send at most {MAX_SPEAK_BYTES} at a time", text.len())));
        }
        let live = self.live();
        let started = std::time::Instant::now();
        let mut tts = lock(&live.tts);
        let rate = tts.sample_rate();
        let mut splitter = iris_pipeline::stages::SentenceSplitter::default();
        let mut sentences = splitter.push(text);
        sentences.extend(splitter.finish());
        for sentence in sentences {
            let audio = tts.synthesize(&sentence, stop)?;
            if on_audio(&audio, rate) == Flow::Stop {
                break;
            }
        }
        drop(tts);
        self.stats.observe("tts", started.elapsed());
        Ok(rate)
    }

    /// What the vision backend says of `image` for `question`, and whether that is already the
    /// answer (text read aloud) rather than material for the language model. `None` without one.
    pub fn look(&self, image: &iris_frames::ImageFrame, question: &str) -> Result<Option<(String, bool)>, EngineError> {
        let live = self.live();
        let Some(vision) = &live.vision else { return Ok(None) };
        let started = std::time::Instant::now();
        let mut v = lock(vision);
        let seen = v.describe(image, question)?;
        let direct = v.answers_directly(question);
        drop(v);
        self.stats.observe("vision", started.elapsed());
        Ok(Some((seen, direct)))
    }

    /// Whether a vision backend is loaded (photos in a question can be looked at).
    pub fn sees(&self) -> bool {
        self.live().vision.is_some()
    }

    pub fn voice_name(&self) -> String {
        lock(&self.live().tts).voice_name()
    }
}

/// The language model's settings from the configuration (shared with `iris ask`).
pub fn llm_settings(cfg: &Config) -> LlmSettings {
    let a = &cfg.assistant;
    let params = GenParams {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_k: (a.top_k > 0).then_some(a.top_k),
        top_p: (a.top_p > 0.0).then_some(a.top_p),
        stop: a.stop.clone(),
        ..GenParams::default()
    };
    LlmSettings {
        system_prompt: a.instructions(false),
        params,
        history_turns: a.history_turns,
        max_sentences: a.max_sentences,
        model_tools: a.model_tools,
    }
}

fn describe(loaded: &[LoadedModel]) -> String {
    loaded.iter().map(|m| format!("{} {} on {}", m.task, m.id, m.device)).collect::<Vec<_>>().join(", ")
}
