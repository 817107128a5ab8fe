//! `iris doctor`: one screen that says what works on this box and what to do about what does
//! not. Every check looks at the machine and the settings as they are (nothing is installed,
//! made or changed), and the exit code is non-zero when something configured cannot work.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use iris_config::Config;
use iris_models::store::InstallState;
use iris_models::{Quiet, Store};
use serde::Serialize;

use crate::backends::{catalog, Models};

mod runtimes;

#[derive(Args)]
pub struct DoctorArgs {
    /// Recompute every configured model's sha256 (slow on big models), not only its size and stamp.
    #[arg(long)]
    verify: bool,
    /// The panel's address, as `iris serve --listen` takes it.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The Wyoming server's address, as `iris serve --wyoming` takes it, or "off".
    #[arg(long, default_value = "0.0.0.0:10300")]
    wyoming: String,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    /// Works, but worth knowing (something unused is missing, a limit is near).
    Note,
    /// Something configured cannot work.
    Problem,
}

#[derive(Serialize)]
struct Finding {
    area: String,
    level: Level,
    what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Finding>);

impl Report {
    fn ok(&mut self, area: &str, what: impl Into<String>) {
        self.0.push(Finding { area: area.into(), level: Level::Ok, what: what.into(), fix: None });
    }
    fn note(&mut self, area: &str, what: impl Into<String>, fix: impl Into<String>) {
        self.0.push(Finding { area: area.into(), level: Level::Note, what: what.into(), fix: Some(fix.into()) });
    }
    fn problem(&mut self, area: &str, what: impl Into<String>, fix: impl Into<String>) {
        self.0.push(Finding { area: area.into(), level: Level::Problem, what: what.into(), fix: Some(fix.into()) });
    }
}

/// The edge board this is, if a profile in `firmware/boards/` knows it, and whether the
/// settings already follow that profile.
fn board(r: &mut Report, config: &Config) {
    let model = crate::board_cmd::machine_model();
    match iris_config::Board::recognise(&model) {
        Some(b) if b.applied_in(config) => {
            r.ok("board", format!("{} ({model}): its profile's settings are in use; latency: {}", b.title, b.latency))
        }
        Some(b) => r.note(
            "board",
            format!("this is a {} ({model}); its profile (firmware/boards/{}.toml) suits it: {}", b.title, b.name, b.cpu),
            format!("`iris board apply {}` lays its model pack, threads and audio settings over yours", b.name),
        ),
        None => r.ok(
            "board",
            format!("{}: no board profile names it (`iris board list`)", if model.is_empty() { "this machine" } else { &model }),
        ),
    }
}

pub fn run(config_path: Option<&Path>, args: DoctorArgs) -> Result<ExitCode> {
    let store = Store::from_env()?;
    let config_file = config_path.map(Path::to_owned).unwrap_or_else(|| store.home().join("config.toml"));
    let mut r = Report::default();
    let config = match Config::load(&config_file) {
        Ok(c) if config_file.is_file() => {
            r.ok("settings", format!("{} reads", config_file.display()));
            c
        }
        Ok(c) => {
            r.ok("settings", format!("{} does not exist yet: the defaults apply", config_file.display()));
            c
        }
        Err(e) => {
            r.problem(
                "settings",
                e.to_string(),
                "correct that line (the panel's Settings page writes a valid file), or move the file away to start from the defaults",
            );
            Config::default()
        }
    };
    let models = Models { catalog: catalog(&store)?, store, config };
    system(&mut r, &models);
    board(&mut r, &models.config);
    memory(&mut r, &models);
    installed(&mut r, &models, args.verify);
    audio(&mut r, &models.config);
    camera(&mut r, &models.config);
    runtimes::gpu(&mut r, &models.config);
    runtimes::onnx_providers(&mut r, &models);
    runtimes::tflite(&mut r, &models);
    ports(&mut r, &args);
    web(&mut r, &models, &config_file);
    llm_server(&mut r, &models.config);

    let problems = r.0.iter().filter(|f| f.level == Level::Problem).count();
    if args.json {
        println!("{}", serde_json::json!({ "problems": problems, "findings": r.0 }));
    } else {
        let notes = r.0.iter().filter(|f| f.level == Level::Note).count();
        println!("iris doctor: {problems} problem{}, {notes} note{}", plural(problems), plural(notes));
        for f in &r.0 {
            let level = match f.level {
                Level::Ok => "ok",
                Level::Note => "note",
                Level::Problem => "PROBLEM",
            };
            println!("{level:<8} {:<15} {}", f.area, f.what);
            if let Some(fix) = &f.fix {
                println!("{:<24} fix: {fix}", "");
            }
        }
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn system(r: &mut Report, m: &Models) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let model = crate::board_cmd::cpu_model();
    r.ok(
        "cpu",
        format!(
            "{} {}, {cpus} CPUs{}; Iris uses {} threads",
            std::env::consts::OS,
            std::env::consts::ARCH,
            if model.is_empty() { String::new() } else { format!(" ({model})") },
            m.config.threads()
        ),
    );
    #[cfg(target_arch = "x86_64")]
    {
        let features: Vec<&str> = [
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
            ("f16c", is_x86_feature_detected!("f16c")),
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx512vnni", is_x86_feature_detected!("avx512vnni")),
        ]
        .into_iter()
        .filter_map(|(name, has)| has.then_some(name))
        .collect();
        let kernel = iris_llm_cpu::Kernel::detect();
        let what = format!(
            "features {}; Iris's LLM engine uses its {} kernel",
            if features.is_empty() { "none beyond x86-64".to_owned() } else { features.join(" ") },
            kernel.name()
        );
        if kernel == iris_llm_cpu::Kernel::Scalar {
            r.note(
                "cpu",
                what,
                "this CPU has no AVX2: answers are several times slower; choose the smallest model (SmolLM2) on the Models page",
            );
        } else {
            r.ok("cpu", what);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let kernel = iris_llm_cpu::Kernel::detect();
        let sdot = std::arch::is_aarch64_feature_detected!("dotprod");
        r.ok("cpu", format!("{}; Iris's LLM engine uses its {} kernel", if sdot { "NEON with sdot" } else { "NEON" }, kernel.name()));
    }
}

fn memory(r: &mut Report, m: &Models) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    let (Some(total), Some(available)) = (field("MemTotal:"), field("MemAvailable:")) else {
        r.note("memory", "this system does not say how much memory it has (/proc/meminfo)", "nothing to do; loading checks again");
        return;
    };
    // The language model's own plan (weights as its engine holds them, and the KV cache), plus
    // the other models at their size on disk.
    let c = &m.config.models;
    let llm = m.catalog.get(&c.llm).and_then(|e| m.store.main_file(e).ok());
    let plan = llm.as_deref().map(|p| iris_llm_candle::LlamaChat::inspect(p, 4096));
    let others: u64 = [c.asr.as_str(), &c.tts, &c.vad, &c.runtime, crate::backends::OCR, crate::backends::CLASSIFIER]
        .into_iter()
        .filter_map(|id| m.catalog.get(id))
        .filter(|e| matches!(m.store.state(e), InstallState::Installed { .. }))
        .map(|e| e.files.iter().map(|f| f.size).sum::<u64>())
        .sum();
    let what = |need: u64| format!("{} in all, {} available; the configured models need about {}", gib(total), gib(available), gib(need));
    match plan {
        Some(Ok((engine, plan))) => {
            let need = plan.total() + others;
            // A CUDA build with a driver runs the language model on the GPU: on Iris's CUDA
            // engine where it takes the file, else on candle.
            let gpu = cfg!(feature = "cuda") && c.device != "cpu" && runtimes::nvidia_driver().is_some();
            let engine = match llm.as_deref().filter(|_| gpu).map(iris_llm_candle::LlamaChat::inspect_gpu) {
                Some(Ok(on_gpu)) => format!("{on_gpu} on the GPU (cuda:0)"),
                _ => engine,
            };
            r.ok("llm", format!("{} runs on {engine}", c.llm));
            match plan.check(available.saturating_sub(others)) {
                Ok(()) if need > available / 10 * 8 => {
                    r.note("memory", what(need), "little is left for anything else: a smaller quantisation or context would leave room")
                }
                Ok(()) => r.ok("memory", what(need)),
                Err(advice) => r.problem("memory", what(need), format!("the language model {advice}")),
            }
        }
        Some(Err(e)) => {
            r.problem("llm", e.to_string(), format!("run `iris models verify {}`, or choose another model on the Models page", c.llm))
        }
        None => r.ok("memory", format!("{} in all, {} available", gib(total), gib(available))),
    }
    let free = iris_models::guard::free_bytes(m.store.home());
    match free {
        Some(free) if free < 200 << 20 => r.problem(
            "disk",
            format!("{} free in {}", gib(free), m.store.home().display()),
            "free some space: settings, timers and downloads are written there (`iris models remove` frees a model)",
        ),
        Some(free) if free < 2 << 30 => r.note(
            "disk",
            format!("{} free in {}", gib(free), m.store.home().display()),
            "a bigger model will not fit; `iris models remove` frees space",
        ),
        Some(free) => r.ok("disk", format!("{} free in {}", gib(free), m.store.home().display())),
        None => {}
    }
}

fn installed(r: &mut Report, m: &Models, verify: bool) {
    let c = &m.config.models;
    for (field, id, task) in crate::backends::configured(&m.config) {
        let Some(entry) = m.catalog.get(id) else {
            r.problem(field, format!("{id:?} is not in the catalog"), "choose one that `iris models list` shows, on the Settings page");
            continue;
        };
        if entry.task != task {
            r.problem(
                field,
                format!("{id:?} is a {} model, not a {task} model", entry.task),
                format!("choose a {task} model on the Settings page"),
            );
            continue;
        }
        model(
            r,
            m,
            field,
            entry,
            verify,
            "run `iris models pull default`, fetch it on the panel's Models page, or `iris models import` a bundle",
        );
    }
    for (id, what) in [(crate::backends::OCR, "reading text"), (crate::backends::CLASSIFIER, "naming objects")] {
        if let Some(entry) = m.catalog.get(id) {
            let fix = format!("without it the vision aid cannot help with {what}: `iris models pull {id}`");
            if m.store.state(entry) == InstallState::Missing {
                let level_fix = if m.config.camera.enabled { Level::Problem } else { Level::Note };
                let what = format!("{id} is not installed");
                if level_fix == Level::Problem {
                    r.problem("vision", what, fix);
                } else {
                    r.note("vision", what, fix);
                }
            } else {
                model(r, m, "vision", entry, verify, &fix);
            }
        }
    }
    if !c.vlm.is_empty() && !Path::new(&c.vlm).join("config.json").is_file() {
        r.problem(
            "models.vlm",
            format!("{:?} is not a folder with a PaliGemma config.json", c.vlm),
            "give the folder of a PaliGemma checkpoint, or clear `[models] vlm` to use the vision aid",
        );
    }
}

fn model(r: &mut Report, m: &Models, field: &str, entry: &iris_models::ModelEntry, verify: bool, fix: &str) {
    match m.store.state(entry) {
        InstallState::Installed { .. } => match m.store.verify(entry, verify, &Quiet) {
            Ok(()) => r.ok(field, format!("{} installed{}", entry.id, if verify { ", sha256 checked" } else { "" })),
            Err(e) => r.problem(field, e.to_string(), format!("run `iris models pull {}` to fetch it again", entry.id)),
        },
        InstallState::Partial => r.problem(field, format!("{} is only partly installed", entry.id), fix),
        InstallState::Missing => r.problem(field, format!("{} is not installed", entry.id), fix),
    }
}

fn audio(r: &mut Report, c: &Config) {
    let a = &c.audio;
    let names = match iris_sound::list() {
        Ok(d) => d.iter().map(|d| d.name.clone()).collect::<Vec<_>>().join(", "),
        Err(e) => e.to_string(),
    };
    r.ok("audio", format!("devices: {}", if names.is_empty() { "none" } else { &names }));
    for (input, wanted, key) in [(true, &a.input, "input"), (false, &a.output, "output")] {
        let area = if input { "microphone" } else { "speaker" };
        let shown = if wanted.is_empty() { "the default" } else { wanted.as_str() };
        match iris_sound::probe(wanted, input) {
            Ok(what) => r.ok(area, format!("{shown} opens: {what}")),
            Err(e) if a.enabled => r.problem(
                area,
                format!("{shown} does not open: {e}"),
                format!("connect a USB {area} and choose it as `[audio] {key}` on the Settings page (`iris audio list` names them), or turn the voice loop off"),
            ),
            Err(e) => r.note(
                area,
                format!("{shown} does not open: {e}"),
                "the voice loop is off, so nothing needs it; the panel's \"try it\", the APIs and Wyoming work without it",
            ),
        }
    }
}

fn camera(r: &mut Report, c: &Config) {
    let cams = iris_camera::list().unwrap_or_default();
    let names: Vec<String> = cams.iter().map(|c| format!("{} ({})", c.index, c.name)).collect();
    match (cams.iter().any(|cam| cam.index == c.camera.index), c.camera.enabled) {
        (true, _) => r.ok("camera", format!("cameras: {}", names.join(", "))),
        (false, true) => r.problem(
            "camera",
            format!(
                "camera {} is not there (found: {})",
                c.camera.index,
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
            "connect a USB camera and choose its index in `[camera]`, or turn the camera off",
        ),
        (false, false) => r.note(
            "camera",
            "no camera (the camera is off)",
            "for \"what is in front of me?\", connect a USB camera and turn `[camera] enabled` on",
        ),
    }
}

fn ports(r: &mut Report, args: &DoctorArgs) {
    let mut wanted = vec![("panel", args.listen)];
    if let Ok(addr) = args.wyoming.parse::<SocketAddr>() {
        wanted.push(("wyoming", addr));
    }
    for (area, addr) in wanted {
        if TcpListener::bind(addr).is_ok() {
            r.ok(area, format!("{addr} is free for `iris serve`"));
            continue;
        }
        let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        let iris = area == "panel" && is_iris(local);
        if iris
            || (area == "wyoming"
                && TcpStream::connect_timeout(&local, Duration::from_millis(500)).is_ok()
                && is_iris(SocketAddr::from(([127, 0, 0, 1], args.listen.port()))))
        {
            r.ok(area, format!("{addr}: Iris is already serving there"));
        } else {
            r.problem(
                area,
                format!("{addr} is taken by another program"),
                format!("stop that program, or give `iris serve --{}` another port", if area == "panel" { "listen" } else { "wyoming" }),
            );
        }
    }
}

/// Whether the panel answering on `addr` is Iris's (plain HTTP is answered on loopback).
fn is_iris(addr: SocketAddr) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).build().into();
    agent
        .get(&format!("http://{addr}/api/state"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("set_up").is_some())
}

fn web(r: &mut Report, m: &Models, config_file: &Path) {
    let w = &m.config.web;
    if !w.https {
        r.note(
            "https",
            "off: the panel is plain HTTP",
            "turn `[web] https` on unless a TLS proxy stands in front: a phone's browser opens the microphone only over HTTPS",
        );
    } else {
        let own = (!w.cert.is_empty()).then(|| (Path::new(&w.cert), Path::new(&w.key)));
        let dir = m.store.home().join("tls");
        if own.is_none() && !dir.join("cert.pem").is_file() {
            r.ok("https", format!("a self-signed certificate will be made at first start, in {}", dir.display()));
        } else {
            match iris_web::tls::Tls::load_or_make(&dir, own) {
                Ok(tls) => r.ok("https", format!("certificate sha256 {} ({})", tls.fingerprint, tls.cert_path.display())),
                Err(e) => r.problem("https", e, "give `[web] cert` and `key` that belong together, or clear both for Iris's own"),
            }
        }
    }
    let dir = config_file.parent().unwrap_or(Path::new("."));
    if !dir.join("panel.json").is_file() {
        r.note(
            "setup",
            "no owner yet: whoever has the setup code can claim the panel",
            format!("start `iris serve`; it prints the setup code and keeps it in {}", dir.join(iris_web::SETUP_CODE_FILE).display()),
        );
    } else {
        r.ok("setup", "an owner is set up");
    }
}

fn llm_server(r: &mut Report, c: &Config) {
    let s = &c.llm_server;
    if !s.enabled() {
        return;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(3))).build().into();
    let reach = agent.get(&format!("{}/models", s.url.trim_end_matches('/'))).call();
    match reach {
        Ok(_) => r.ok("llm_server", format!("{} answers", s.url)),
        Err(e) => r.note(
            "llm_server",
            format!("{} does not answer ({e})", s.url),
            "the local model answers until it does; check the server and `[llm_server] url`",
        ),
    }
}
