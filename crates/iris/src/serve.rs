//! `iris serve`: the panel, the OpenAI-compatible API and the Wyoming server, on the models of
//! the configuration, loaded once and shared.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use iris_config::Config;
use iris_engine::{Backends, Engine, LoadedModel, Loader};
use iris_models::store::InstallState;
use iris_models::{Catalog, Store};

use crate::backends::{Converters, Models};

#[derive(Args)]
pub struct ServeArgs {
    /// Address of the panel and the HTTP APIs. The default answers the whole network, so a
    /// headless box can be set up from a phone; nothing but the setup page answers until then.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the Wyoming server (Home Assistant's speech protocol), or "off". It answers
    /// only once Iris is set up and `[wyoming] enabled` is on, and only the addresses allowed.
    #[arg(long, default_value = "0.0.0.0:10300")]
    wyoming: String,
}

/// Loads the real models of a configuration.
struct RealLoader {
    home: PathBuf,
    catalog: Catalog,
    /// One set of timers for every load: kept across reloads and restarts.
    alarms: crate::alarms::Alarms,
    /// The engine, once started, for lines a model writes to its log.
    engine: Arc<std::sync::OnceLock<std::sync::Weak<Engine>>>,
}

impl RealLoader {
    fn models(&self, config: &Config) -> Models {
        Models { store: Store::new(&self.home), catalog: self.catalog.clone(), config: config.clone() }
    }
}

impl Loader for RealLoader {
    fn check(&self, c: &Config) -> Result<(), (String, String)> {
        let store = Store::new(&self.home);
        for (field, id, task) in crate::backends::configured(c) {
            let Some(entry) = self.catalog.get(id) else {
                return Err((field.into(), format!("is \"{id}\", which is not in the catalog (see the Models page)")));
            };
            if entry.task != task {
                return Err((field.into(), format!("is \"{id}\", a {} model, not a {task} model", entry.task)));
            }
            if !matches!(store.state(entry), InstallState::Installed { .. }) {
                return Err((field.into(), format!("is \"{id}\", which is not installed; fetch it on the Models page first")));
            }
        }
        if !c.models.vlm.is_empty() && !Path::new(&c.models.vlm).join("config.json").is_file() {
            return Err(("models.vlm".into(), format!("is {:?}, which is not a folder with a PaliGemma config.json", c.models.vlm)));
        }
        // The language model (and Whisper on candle, and the VLM) run there.
        if matches!(c.models.device.as_str(), "cuda" | "metal") {
            iris_whisper_candle::device(&c.models.device).map_err(|e| ("models.device".to_owned(), e.to_string()))?;
        }
        Ok(())
    }

    fn load(&self, config: &Config) -> Result<Backends, String> {
        self.load_inner(config).map_err(|e| format!("{e:#}"))
    }
}

impl RealLoader {
    fn load_inner(&self, config: &Config) -> Result<Backends> {
        let models = self.models(config);
        let asr = models.asr()?;
        let engine = self.engine.clone();
        let llm = models.language_model(Arc::new(move |line| {
            eprintln!("{line}");
            if let Some(engine) = engine.get().and_then(std::sync::Weak::upgrade) {
                engine.stats.log("warn", line);
            }
        }))?;
        let tts = models.voice(&config.models.tts)?;
        // What ONNX Runtime reported the voice ran on ([onnx] providers); the VAD opens later.
        let tts_device = iris_onnx::placement(&models.file(&config.models.tts, "tts")?);
        let vision = models.vision()?;
        let env = models.onnx()?;
        let vad_file = models.file(&config.models.vad, "vad")?;
        let vad_device = iris_onnx::placement(&vad_file);
        let vad: iris_engine::VadFactory = Arc::new(move || {
            Ok(Box::new(iris_silero::SileroVad::load(env, &vad_file).map_err(|e| iris_backend::BackendError::Inference(e.to_string()))?)
                as Box<dyn iris_backend::Vad>)
        });
        let timers = self.alarms.timers.clone();
        let hook = (!config.tools.webhook_url.is_empty()).then(|| iris_tools::Webhook {
            url: config.tools.webhook_url.clone(),
            token: (!config.tools.webhook_token.is_empty()).then(|| config.tools.webhook_token.clone()),
        });
        let name = config.assistant.name.clone();
        let skills: iris_engine::SkillsFactory =
            Arc::new(move || Box::new(iris_tools::Tools::new(timers.clone(), hook.clone()).named(&name)));
        let mut loaded = vec![
            LoadedModel { task: "asr".into(), id: config.models.asr.clone(), device: asr.device().to_string() },
            LoadedModel { task: "llm".into(), id: config.models.llm.clone(), device: llm.device().to_string() },
            LoadedModel { task: "tts".into(), id: config.models.tts.clone(), device: tts_device },
            LoadedModel { task: "vad".into(), id: config.models.vad.clone(), device: vad_device },
        ];
        if config.models.vlm.is_empty() {
            // The vision aid's parts by their catalog ids, as loaded: the Models page must not
            // offer to remove what it reads with.
            // What ONNX Runtime reported the OCR's two networks ran on (opened with the vision aid).
            let ocr_device = match models.ocr_files()? {
                Some((det, rec)) => match (iris_onnx::placement(&det), iris_onnx::placement(&rec)) {
                    (d, r) if d == r => d,
                    (d, r) => format!("detector: {d}; recogniser: {r}"),
                },
                None => String::new(),
            };
            for (task, id, device) in [
                ("ocr", crate::backends::OCR, ocr_device),
                ("classify", crate::backends::CLASSIFIER, "cpu (candle)".into()),
                ("labels", crate::backends::LABELS, "cpu".into()),
            ] {
                if models.installed(id).is_some() {
                    loaded.push(LoadedModel { task: task.into(), id: id.into(), device });
                }
            }
        } else {
            loaded.push(LoadedModel { task: "vision".into(), id: config.models.vlm.clone(), device: "candle".into() });
        }
        Ok(Backends { asr, llm, tts, vision: Some(vision), vad: Some(vad), skills: Some(skills), loaded })
    }
}

pub fn run(config_path: Option<&Path>, args: ServeArgs) -> Result<ExitCode> {
    let models = Models::open(config_path)?;
    let config_path = config_path.map(Path::to_owned).unwrap_or_else(|| models.store.home().join("config.toml"));
    let alarms = crate::alarms::Alarms::kept_in(&crate::alarms::timers_file(Some(&config_path), &models));
    let engine_cell = Arc::new(std::sync::OnceLock::new());
    let loader = RealLoader {
        home: models.store.home().to_owned(),
        catalog: models.catalog.clone(),
        alarms: alarms.clone(),
        engine: engine_cell.clone(),
    };
    // A box with nothing installed yet still starts: the panel comes up, and its Models page
    // fetches what is missing; the assistant starts once it is all in.
    let engine = Arc::new(match loader.check(&models.config) {
        Ok(()) => {
            eprintln!("loading models…");
            Engine::start(Box::new(loader), models.config.clone())?
        }
        Err((field, problem)) => {
            let problem = format!("`{field}` {problem}");
            eprintln!(
                "{}: {problem}; starting without models: fetch them on the panel's Models page, or run `iris models pull default`",
                config_path.display()
            );
            Engine::start_without_models(Box::new(loader), models.config.clone(), &problem)
        }
    });
    let _ = engine_cell.set(Arc::downgrade(&engine));
    // A save cut short (the process killed mid-write) leaves only a temporary file beside the
    // settings, never a half-written one in their place: clear it away and say so.
    if let Some(dir) = config_path.parent() {
        for name in iris_config::remove_leftovers(dir) {
            let line = format!("removed {name} in {}, left by a save that was interrupted; the saved settings are whole", dir.display());
            eprintln!("{line}");
            engine.stats.log("info", line);
        }
    }
    let shelf = iris_web::ModelShelf::new(Store::new(models.store.home()), models.catalog.clone(), Arc::new(Converters));
    let mut panel = iris_web::Panel::new(engine.clone(), config_path, shelf).map_err(anyhow::Error::msg)?;
    let web = &models.config.web;
    if web.https {
        let own = (!web.cert.is_empty()).then(|| (Path::new(&web.cert), Path::new(&web.key)));
        let tls = iris_web::tls::Tls::load_or_make(&models.store.home().join("tls"), own).map_err(anyhow::Error::msg)?;
        panel.tls = Some(Arc::new(tls));
    }
    let panel = Arc::new(panel);
    let set_up = panel.auth.is_set_up();
    // Watches the settings: the voice loop starts whenever `[audio] enabled` is on.
    crate::voice_service::serve_voice(engine.clone(), models, alarms);

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}; is another Iris running?", args.listen))?;
        // The code first: tests and scripts read it, then the real address, from these lines.
        if let Some((code, file)) = panel.auth.setup_code().filter(|_| !set_up) {
            println!("setup code: {code}");
            println!(
                "first visit: open the panel, enter the setup code and choose the owner's password (the code is also in {})",
                file.display()
            );
        }
        if let Some(tls) = &panel.tls {
            // Beside the setup code: the owner compares it with what the browser shows.
            println!("https: certificate sha256 {} ({})", tls.fingerprint, tls.cert_path.display());
        }
        println!("panel: http://{}/", listener.local_addr()?);
        if args.wyoming != "off" {
            let addr: SocketAddr =
                args.wyoming.parse().with_context(|| format!("--wyoming {:?} is not an address like 0.0.0.0:10300", args.wyoming))?;
            let p = panel.clone();
            tokio::spawn(iris_wyoming::run(engine.clone(), addr, Arc::new(move || p.auth.is_set_up())));
        }
        use std::io::Write;
        std::io::stdout().flush().ok();
        iris_web::serve(panel, listener).await.context("the web server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}
