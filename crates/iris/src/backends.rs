//! Builds the real backends from the configuration and the model store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use iris_backend::AsrOptions;
use iris_config::Config;
use iris_models::convert::{ConvertError, ExternalConverter};
use iris_models::{Catalog, ModelEntry, Store};
use iris_pipeline::stages::{AsrSettings, AsrStage, LlmStage, SentenceStage, TtsStage, VadSettings, VadStage};
use iris_pipeline::{PipelineSpec, Stage};

pub const CATALOG: &str = include_str!("../../../models/catalog.toml");
/// The text-reading model of the vision aid.
pub const OCR: &str = "ppocr-v6-tiny";
/// The semantic end-of-turn model.
pub const TURN: &str = "smart-turn";
/// The classifier of the vision aid and its class names.
pub const CLASSIFIER: &str = "mobilenet-v2";
pub const LABELS: &str = "imagenet-labels";
/// OpenVINO's execution provider for ONNX Runtime, for `[onnx] providers = ["openvino", …]`.
pub const OPENVINO_EP: &str = "openvino-ep";
/// Qualcomm's QNN execution provider, for `[onnx] providers = ["qnn", …]`.
pub const QNN_EP: &str = "qnn-ep";

pub const ASK_PIPELINE: &str = include_str!("../../../pipelines/ask.toml");

/// The catalog (`IRIS_CATALOG` if set, else the one built in) and the user's own models.
pub fn catalog(store: &Store) -> Result<Catalog> {
    let base = match std::env::var_os("IRIS_CATALOG") {
        Some(p) => {
            let path = PathBuf::from(p);
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read catalog {}", path.display()))?;
            Catalog::parse(&text, &path)?
        }
        None => Catalog::parse(CATALOG, Path::new("models/catalog.toml"))?,
    };
    Ok(iris_models::own::with_local(base, store)?)
}

/// The settings' model fields: the field, the model id it names, and the task it must be for.
pub fn configured(c: &Config) -> [(&'static str, &str, &'static str); 5] {
    let m = &c.models;
    [
        ("models.asr", m.asr.as_str(), "asr"),
        ("models.llm", m.llm.as_str(), "llm"),
        ("models.tts", m.tts.as_str(), "tts"),
        ("models.vad", m.vad.as_str(), "vad"),
        ("models.runtime", m.runtime.as_str(), "runtime"),
    ]
}

/// Conversions that need a model library.
pub struct Converters;

impl ExternalConverter for Converters {
    fn convert(&self, kind: &str, inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<(), ConvertError> {
        match (kind, inputs, outputs) {
            ("gguf-requant-q8_0", [input], [output]) => {
                iris_llm_candle::requant::requantize_q8_0(input, output).map_err(|e| ConvertError::Invalid(e.to_string()))
            }
            _ => Err(ConvertError::Unavailable(kind.to_owned())),
        }
    }
}

/// What every command starts from: the model store, the catalog and the settings.
pub struct Models {
    pub store: Store,
    pub catalog: Catalog,
    pub config: Config,
}

impl Models {
    /// Opens the store, the catalog and the settings (`config_path`, else `$IRIS_HOME/config.toml`).
    pub fn open(config_path: Option<&Path>) -> Result<Self> {
        let store = Store::from_env()?;
        let path = config_path.map(Path::to_owned).unwrap_or_else(|| store.home().join("config.toml"));
        let config = Config::load(&path)?;
        let catalog = catalog(&store)?;
        Ok(Self { store, catalog, config })
    }

    /// The same store and catalog with other settings (to move into a thread, or to try a
    /// setting).
    pub fn with_config(&self, config: Config) -> Self {
        Self { store: Store::new(self.store.home()), catalog: self.catalog.clone(), config }
    }

    fn entry(&self, id: &str, task: &str) -> Result<&ModelEntry> {
        let m = self
            .catalog
            .get(id)
            .with_context(|| format!("the configured {task} model `{id}` is not in the catalog (see `iris models list`)"))?;
        Ok(m)
    }

    /// ONNX Runtime, asking for the execution providers in `[onnx] providers`, and for a
    /// model's own list in `[onnx.models]` (on each of its ONNX files).
    pub fn onnx(&self) -> Result<&'static iris_onnx::Environment> {
        let env = iris_onnx::init(&iris_onnx::library_path(&self.file(&self.config.models.runtime, "runtime")?))?;
        let providers = self.providers(&self.config.onnx.providers)?;
        if iris_onnx::chosen() != providers {
            iris_onnx::use_providers(env, &providers)?;
        }
        // Models a provider runs wrongly stay on the CPU provider unless `[onnx.models]` names
        // them (measured 2026-12-03, `iris bench onnx`): OpenVINO 2026.4 computes Smart Turn
        // otherwise, even in f32 (0.34 where ONNX Runtime's CPU provider and pipecat's reference
        // give 0.87 on the sample question); QNN 2.7 fails a Piper voice at run time ("cannot
        // broadcast 108 by 109": the nodes it takes fix a length the next sentence changes).
        let mut lists = self.config.onnx.models.clone();
        let first = self.config.onnx.providers.first().map(String::as_str);
        let kept: Vec<&str> = match first {
            Some("openvino") => vec![TURN],
            Some("qnn") => self.catalog.models.iter().filter(|m| m.task == "tts").map(|m| m.id.as_str()).collect(),
            _ => Vec::new(),
        };
        for id in kept.into_iter().filter(|id| self.installed(id).is_some()) {
            lists.entry(id.to_owned()).or_insert_with(|| vec!["cpu".to_owned()]);
        }
        let mut choices = Vec::new();
        for (id, list) in &lists {
            let entry = self.entry(id, "ONNX").with_context(|| format!("[onnx.models] names `{id}`"))?;
            let main = self.store.main_file(entry)?;
            let dir = main.parent().map(Path::to_path_buf).unwrap_or_default();
            let files: Vec<PathBuf> = entry.files.iter().filter(|f| f.name.ends_with(".onnx")).map(|f| dir.join(&f.name)).collect();
            anyhow::ensure!(!files.is_empty(), "[onnx.models] names `{id}`, which has no ONNX file; name one of the ONNX models (silero-vad, smart-turn, openwakeword, a voice, ppocr-v6-tiny)");
            let list = self.providers(list).with_context(|| format!("[onnx.models] {id}"))?;
            choices.extend(files.into_iter().map(|file| (file, list.clone())));
        }
        iris_onnx::set_model_providers(env, choices).context("[onnx.models]")?;
        Ok(env)
    }

    /// The providers named in a list of `[onnx]`, with their plugins' libraries.
    fn providers(&self, names: &[String]) -> Result<Vec<iris_onnx::Provider>> {
        names
            .iter()
            .map(|p| match p.as_str() {
                "openvino" => Ok(iris_onnx::Provider::OpenVino(self.file(OPENVINO_EP, "runtime")?)),
                "qnn" => Ok(iris_onnx::Provider::Qnn(self.file(QNN_EP, "runtime")?)),
                _ => Ok(iris_onnx::Provider::Cpu),
            })
            .collect()
    }

    /// The verified main file of a configured model.
    pub fn file(&self, id: &str, task: &str) -> Result<PathBuf> {
        Ok(self.store.main_file(self.entry(id, task)?)?)
    }

    /// The voice `id` first, then every other installed Piper voice, with espeak-ng behind
    /// them for languages none of them speaks.
    pub fn voice(&self, id: &str) -> Result<Box<dyn iris_backend::Tts>> {
        let cfg = &self.config;
        let entry = self.entry(id, "tts")?;
        anyhow::ensure!(entry.task == "tts", "`{id}` is a {} model, not a voice (see `iris models list`)", entry.task);
        let env = self.onnx()?;
        let settings =
            iris_piper::VoiceSettings { rate: cfg.speech.rate, volume: cfg.speech.volume, threads: cfg.threads(), ..Default::default() };
        let mut voices = vec![(id.to_owned(), iris_piper::PiperVoice::load(env, &self.file(id, "tts")?, settings)?)];
        for other in self.catalog.models.iter().filter(|m| m.task == "tts" && m.id != id) {
            // Other voices are optional: one that is not installed (or fails its check) is skipped.
            if let Ok(path) = self.store.main_file(other) {
                voices.push((other.id.clone(), iris_piper::PiperVoice::load(env, &path, settings)?));
            }
        }
        Ok(Box::new(iris_piper::VoiceRouter::new(voices)))
    }

    /// The catalog's entry for `id`, when it is installed.
    pub fn installed(&self, id: &str) -> Option<&ModelEntry> {
        self.catalog.get(id).filter(|e| matches!(self.store.state(e), iris_models::store::InstallState::Installed { .. }))
    }

    /// The OCR model's detector and recogniser, verified, when it is installed.
    pub fn ocr_files(&self) -> Result<Option<(PathBuf, PathBuf)>> {
        let Some(entry) = self.installed(OCR) else { return Ok(None) };
        Ok(Some((self.store.verified_file(entry, "PP-OCRv6_det_tiny.onnx")?, self.store.verified_file(entry, "PP-OCRv6_rec_tiny.onnx")?)))
    }

    /// The vision aid: reads text when the OCR model is installed (it is in the default pack),
    /// and says what it cannot do when it is not.
    pub fn vision_aid(&self) -> Result<iris_vision::VisionAid> {
        let ocr = match self.ocr_files()? {
            Some((det, rec)) => Some(iris_ocr::Ocr::load(self.onnx()?, &det, &rec, self.config.threads())?),
            None => None,
        };
        let classifier = match (self.installed(CLASSIFIER), self.installed(LABELS)) {
            (Some(_), Some(_)) => {
                Some(iris_classify::Classifier::load(&self.file(CLASSIFIER, "classify")?, &self.file(LABELS, "labels")?)?)
            }
            _ => None,
        };
        Ok(iris_vision::VisionAid::new(ocr, classifier))
    }

    /// The language model: the local one, or the `[llm_server]` with the local one as its
    /// fallback; `log` hears when the server fails and the local model answers.
    pub fn language_model(&self, log: iris_llm_remote::LogSink) -> Result<Box<dyn iris_backend::Llm>> {
        // On a GPU (`[models] device`), candle runs the model there; on the CPU, Iris's engine.
        let device = iris_whisper_candle::device(&self.config.models.device)?;
        let local = Box::new(iris_llm_candle::LlamaChat::load_on_device(
            &self.file(&self.config.models.llm, "llm")?,
            4096,
            iris_llm_candle::plan::available_memory(),
            iris_llm_candle::Engine::Auto,
            &device,
        )?);
        let s = &self.config.llm_server;
        if !s.enabled() {
            return Ok(local);
        }
        let server = iris_llm_remote::Server {
            url: s.url.clone(),
            model: s.model.clone(),
            api_key: s.api_key.clone(),
            wait: std::time::Duration::from_millis(s.wait_ms),
            retry_after: std::time::Duration::from_secs(s.retry_after_s),
        };
        Ok(Box::new(iris_llm_remote::RemoteLlm::new(server, local, log)))
    }

    /// What describes images: the configured vision-language model, else the vision aid.
    pub fn vision(&self) -> Result<Box<dyn iris_backend::Vlm>> {
        let dir = &self.config.models.vlm;
        if dir.is_empty() {
            return Ok(Box::new(self.vision_aid()?));
        }
        let device = iris_whisper_candle::device(&self.config.models.device)?;
        let vlm = iris_vlm::PaliGemmaVlm::load(Path::new(dir), &device).with_context(|| format!("[models] vlm = {dir:?}"))?;
        Ok(Box::new(vlm))
    }

    /// The configured speech recogniser on its configured engine and device.
    pub fn asr(&self) -> Result<Arc<dyn iris_backend::Asr>> {
        let cfg = &self.config;
        let file = self.file(&cfg.models.asr, "asr")?;
        Ok(match cfg.models.asr_engine.as_str() {
            "candle" => {
                let device = iris_whisper_candle::device(&cfg.models.device)?;
                Arc::new(iris_whisper_candle::CandleWhisper::load(&file, &device)?)
            }
            _ => Arc::new(iris_whisper::WhisperAsr::load(&file, cfg.threads())?),
        })
    }

    /// The stages of `spec` on freshly loaded models; `camera` is what the language model looks
    /// through for questions about what is in front of the user.
    pub fn stages(
        &self,
        spec: &PipelineSpec,
        timers: &iris_tools::Timers,
        camera: Option<Box<dyn iris_backend::Camera>>,
    ) -> Result<Vec<Box<dyn Stage>>> {
        self.stages_sharing(spec, timers, camera, None)
    }

    /// As `stages`, with the recogniser `asr` (already loaded) when given.
    pub fn stages_sharing(
        &self,
        spec: &PipelineSpec,
        timers: &iris_tools::Timers,
        mut camera: Option<Box<dyn iris_backend::Camera>>,
        asr: Option<Arc<dyn iris_backend::Asr>>,
    ) -> Result<Vec<Box<dyn Stage>>> {
        let cfg = &self.config;
        let threads = cfg.threads();
        let needs = |name: &str| spec.stages.iter().any(|s| s.info.name == name);
        let onnx = if needs("vad") || needs("tts") { Some(self.onnx()?) } else { None };
        // A VAD stage, or a live loop that marks speech itself, gates recognition.
        let gated = needs("vad") || spec.input.contains(iris_frames::FrameKind::SpeechStarted);
        let live = spec.input.contains(iris_frames::FrameKind::SpeechStarted);
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        for s in &spec.stages {
            let stage: Box<dyn Stage> = match s.info.name {
                "vad" => {
                    let env = onnx.context("ONNX Runtime")?;
                    let vad = iris_silero::SileroVad::load(env, &self.file(&cfg.models.vad, "vad")?)?;
                    let settings =
                        VadSettings { min_silence: std::time::Duration::from_millis(cfg.speech.endpoint_ms), ..VadSettings::default() };
                    Box::new(VadStage::new(Box::new(vad), settings))
                }
                "asr" => {
                    let asr = match &asr {
                        Some(shared) => shared.clone(),
                        None => self.asr()?,
                    };
                    let language = cfg.asr_language();
                    let partial_every = (cfg.speech.partial_ms > 0).then(|| std::time::Duration::from_millis(cfg.speech.partial_ms));
                    if live {
                        Box::new(AsrStage::for_live_turns(asr, language, partial_every, &cfg.audio.wake_words))
                    } else {
                        let stage = AsrStage::new(
                            asr,
                            AsrOptions { language, partial: false, fit_context: false },
                            AsrSettings { gated, partial_every },
                        );
                        // A recording: pauses do not split what Whisper hears.
                        Box::new(if gated { stage.merging_utterances(std::time::Duration::from_secs(25)) } else { stage })
                    }
                }
                "llm" => {
                    let llm = self.language_model(std::sync::Arc::new(|line| eprintln!("{line}")))?;
                    let settings = iris_engine::llm_settings(cfg);
                    let hook = (!cfg.tools.webhook_url.is_empty()).then(|| iris_tools::Webhook {
                        url: cfg.tools.webhook_url.clone(),
                        token: (!cfg.tools.webhook_token.is_empty()).then(|| cfg.tools.webhook_token.clone()),
                    });
                    let tools = iris_tools::Tools::new(timers.clone(), hook).named(&cfg.assistant.name);
                    let mut stage = LlmStage::new(llm, Some(self.vision()?), settings).with_skills(Box::new(tools));
                    stage.warm();
                    Box::new(match camera.take() {
                        Some(c) => stage.with_camera(c),
                        None => stage,
                    })
                }
                "sentences" => Box::new(SentenceStage::new()),
                "tts" => {
                    let env = onnx.context("ONNX Runtime")?;
                    let settings =
                        iris_piper::VoiceSettings { rate: cfg.speech.rate, volume: cfg.speech.volume, threads, ..Default::default() };
                    Box::new(TtsStage::new(Box::new(iris_piper::PiperVoice::load(env, &self.file(&cfg.models.tts, "tts")?, settings)?)))
                }
                other => anyhow::bail!("stage `{other}` has no backend in this build"),
            };
            stages.push(stage);
        }
        Ok(stages)
    }
}
