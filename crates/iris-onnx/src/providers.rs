//! Execution providers beyond ONNX Runtime's own CPU one. Plugin providers (ONNX Runtime's
//! "plugin EP" route: a library registered with the environment, whose devices a session then
//! asks for) are how OpenVINO's provider reaches a stock ONNX Runtime 1.31: the
//! `onnxruntime-openvino` wheel is ONNX Runtime 1.24 itself, older than the API Iris uses.
//!
//! The choice is process-wide, like the environment: every session opened after
//! [`use_providers`] asks for those providers, and records which provider took which nodes
//! ([`assignments`]) from ONNX Runtime itself, so what is reported is what runs.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::AsPointer;

use crate::{Environment, OnnxError};

/// A provider Iris can ask ONNX Runtime for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's own CPU provider.
    Cpu,
    /// OpenVINO's plugin, from its library (`libonnxruntime_providers_openvino_plugin.so`).
    OpenVino(PathBuf),
    /// Qualcomm's QNN plugin (`libonnxruntime_providers_qnn.so`), its HTP backend
    /// (`libQnnHtp.so`, the Hexagon NPU) beside it.
    Qnn(PathBuf),
}

impl Provider {
    /// ONNX Runtime's name for the provider's devices.
    pub fn ep_name(&self) -> &'static str {
        match self {
            Self::Cpu => "CPUExecutionProvider",
            Self::OpenVino(_) => "OpenVINOExecutionProvider",
            Self::Qnn(_) => "QNNExecutionProvider",
        }
    }

    /// A plugin's library, the name to register it under (QNN's plugin names its provider
    /// after it), and the catalog entry that installs it.
    fn plugin(&self) -> Option<(&Path, &'static str, &'static str)> {
        match self {
            Self::Cpu => None,
            Self::OpenVino(library) => Some((library, "openvino", "openvino-ep")),
            Self::Qnn(library) => Some((library, "QNNExecutionProvider", "qnn-ep")),
        }
    }

    /// Options a session passes the provider, prefixed with its name (`with_devices`).
    fn options(&self) -> Vec<(String, String)> {
        match self {
            // The backend QNN runs on: the HTP (Hexagon NPU) library installed beside the plugin.
            Self::Qnn(library) => {
                let htp = library.parent().unwrap_or(Path::new(".")).join("libQnnHtp.so");
                vec![(format!("{}.backend_path", self.ep_name()), htp.to_string_lossy().into_owned())]
            }
            // f32 on the CPU, as the model is: on a CPU with AMX or AVX-512 BF16, OpenVINO
            // otherwise infers in bf16, and the OCR read a word otherwise. (Its own `precision`
            // option changed nothing there: ACCURACY, FP32 and FP16 gave the same outputs.)
            Self::OpenVino(_) => vec![(format!("{}.load_config", self.ep_name()), r#"{"CPU":{"INFERENCE_PRECISION_HINT":"f32"}}"#.into())],
            Self::Cpu => Vec::new(),
        }
    }
}

/// What the last session opened on each model ran on: the provider and how many nodes it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub model: PathBuf,
    pub nodes: Vec<(String, usize)>,
    /// Why the model runs on the CPU provider alone though a plugin was asked for first.
    pub refused: Option<String>,
}

static CHOSEN: Mutex<Vec<Provider>> = Mutex::new(Vec::new());
/// Per-model choices that replace [`CHOSEN`] for those files (`[onnx.models]`).
static FOR_MODEL: Mutex<Vec<(PathBuf, Vec<Provider>)>> = Mutex::new(Vec::new());
static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static ASSIGNED: Mutex<Vec<Assignment>> = Mutex::new(Vec::new());
/// Models whose assignment is remembered; a long-running server opens few distinct ones.
const MAX_ASSIGNMENTS: usize = 64;

fn provider_error(message: String) -> OnnxError {
    OnnxError::Provider(message)
}

/// Asks for `providers`, in order of preference, in every session opened from now on. A plugin
/// is registered once per process; a provider that offers no device here is an error naming it.
pub fn use_providers(env: &Environment, providers: &[Provider]) -> Result<(), OnnxError> {
    prepare(env, providers)?;
    *CHOSEN.lock().unwrap_or_else(|e| e.into_inner()) = providers.to_vec();
    Ok(())
}

/// Asks for `providers` in every session opened from now on on `model` alone, in place of the
/// process-wide choice (checked as [`use_providers`] checks it).
pub fn use_providers_for(env: &Environment, model: &Path, providers: &[Provider]) -> Result<(), OnnxError> {
    prepare(env, providers)?;
    let mut overrides = FOR_MODEL.lock().unwrap_or_else(|e| e.into_inner());
    overrides.retain(|(m, _)| m != model);
    overrides.push((model.to_owned(), providers.to_vec()));
    Ok(())
}

/// Drops every per-model choice.
pub fn clear_model_providers() {
    FOR_MODEL.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Replaces every per-model choice with `choices` at once (the settings' `[onnx.models]`), so
/// a session opened meanwhile on another thread sees the old set or the new, never none; an
/// unchanged set costs nothing.
pub fn set_model_providers(env: &Environment, choices: Vec<(PathBuf, Vec<Provider>)>) -> Result<(), OnnxError> {
    if *FOR_MODEL.lock().unwrap_or_else(|e| e.into_inner()) == choices {
        return Ok(());
    }
    for (_, providers) in &choices {
        prepare(env, providers)?;
    }
    *FOR_MODEL.lock().unwrap_or_else(|e| e.into_inner()) = choices;
    Ok(())
}

/// The providers `model`'s sessions ask for: its own choice, else the process-wide one.
pub fn chosen_for(model: &Path) -> Vec<Provider> {
    let overrides = FOR_MODEL.lock().unwrap_or_else(|e| e.into_inner());
    overrides.iter().find(|(m, _)| m == model).map(|(_, p)| p.clone()).unwrap_or_else(chosen)
}

/// Registers the plugins among `providers` and checks each offers a device here.
fn prepare(env: &Environment, providers: &[Provider]) -> Result<(), OnnxError> {
    for p in providers {
        if let Some((library, name, entry)) = p.plugin() {
            let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
            if !registered.iter().any(|r| r == library) {
                let ep = p.ep_name();
                // QNN's plugin brings its own C++ runtime (libc++ and its unwinder): loaded first,
                // OpenVINO's plugin then fails inside its own start-up ("Unknown Exception").
                if let Some(other) = registered.iter().find(|r| clashes(r, library)) {
                    return Err(provider_error(format!(
                        "{ep} cannot be loaded beside the plugin this process already loaded ({}): their C++ runtimes clash; choose one of them in [onnx] providers and restart Iris",
                        other.display()
                    )));
                }
                if !library.is_file() {
                    return Err(provider_error(format!(
                        "{ep} is not installed ({} is missing): run `iris models pull {entry}`",
                        library.display()
                    )));
                }
                env.register_ep_library(name, library)
                    .map_err(|e| provider_error(format!("ONNX Runtime cannot load {ep} from {}: {e}", library.display())))?;
                registered.push(library.to_path_buf());
            }
        }
        if !env.devices().any(|d| d.ep().is_ok_and(|ep| ep == p.ep_name())) {
            let offered: Vec<String> = offered(env).into_iter().map(|(ep, device)| format!("{ep} ({device})")).collect();
            return Err(provider_error(format!(
                "{} offers no device on this machine (ONNX Runtime offers: {})",
                p.ep_name(),
                offered.join(", ")
            )));
        }
    }
    Ok(())
}

/// Whether two plugin libraries cannot share a process: QNN's and any other.
fn clashes(a: &Path, b: &Path) -> bool {
    let qnn = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().contains("providers_qnn"));
    qnn(a) != qnn(b)
}

/// The providers asked for (empty: ONNX Runtime's defaults, the CPU provider).
pub fn chosen() -> Vec<Provider> {
    CHOSEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Every provider the environment offers a device for, with the device's kind, e.g.
/// ("OpenVINOExecutionProvider", "CPU").
pub fn offered(env: &Environment) -> Vec<(String, String)> {
    env.devices().filter_map(|d| Some((d.ep().ok()?.to_owned(), format!("{:?}", d.hardware_device().ty())))).collect()
}

/// What each model's last session ran on.
pub fn assignments() -> Vec<Assignment> {
    ASSIGNED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Where `model`'s sessions run, for a status line: the nodes each provider took in the last
/// session opened on it, when ONNX Runtime reported them; else the providers asked for.
pub fn placement(model: &Path) -> String {
    let recorded = assignments().into_iter().find(|a| a.model == model);
    describe(&chosen_for(model), recorded.as_ref())
}

fn describe(chosen: &[Provider], recorded: Option<&Assignment>) -> String {
    let short = |ep: &str| ep.trim_end_matches("ExecutionProvider").to_owned();
    if let Some(a) = recorded.filter(|a| !a.nodes.is_empty()) {
        let parts: Vec<String> = a.nodes.iter().map(|(ep, n)| format!("{} {n} nodes", short(ep))).collect();
        return match &a.refused {
            Some(why) => format!("{} (ONNX Runtime; {why})", parts.join(", ")),
            None => format!("{} (ONNX Runtime)", parts.join(", ")),
        };
    }
    if chosen.is_empty() || chosen == [Provider::Cpu] {
        return "cpu (ONNX Runtime)".into();
    }
    let asked: Vec<String> = chosen.iter().map(|p| short(p.ep_name())).collect();
    format!("{} (ONNX Runtime, asked for; not opened yet)", asked.join(", then "))
}

/// The plugins asked for ahead of the CPU provider on `model`'s list, by their short names
/// (e.g. "OpenVINO"), when the list goes on to the CPU provider: a session a plugin cannot build
/// may then run on the CPU provider instead (`open_session`).
pub(crate) fn plugins_before_cpu(model: &Path) -> Option<String> {
    let chosen = chosen_for(model);
    let cpu = chosen.iter().position(|p| *p == Provider::Cpu)?;
    let plugins: Vec<&str> = chosen[..cpu].iter().map(|p| p.ep_name().trim_end_matches("ExecutionProvider")).collect();
    (!plugins.is_empty()).then(|| plugins.join(" and "))
}

/// `builder` asking for `model`'s providers; `cpu_alone`: the CPU provider's device only (after
/// the plugins failed to build the session).
pub(crate) fn builder_with_providers(
    env: &Environment,
    builder: ort::session::builder::SessionBuilder,
    model: &Path,
    cpu_alone: bool,
) -> ort::Result<ort::session::builder::SessionBuilder> {
    let chosen = if cpu_alone { vec![Provider::Cpu] } else { chosen_for(model) };
    let cpu_only = chosen.is_empty() || chosen == [Provider::Cpu];
    // Once a plugin is registered, a session that names no device gets ONNX Runtime's own pick,
    // which may be the plugin's (QNN's then fails, given no backend): the CPU is named instead.
    let plugins = !REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
    if cpu_only && !plugins {
        return Ok(builder);
    }
    let chosen = if chosen.is_empty() { vec![Provider::Cpu] } else { chosen };
    let (mut devices, mut options) = (Vec::new(), Vec::new());
    for p in &chosen {
        devices.extend(env.devices().filter(|d| d.ep().is_ok_and(|ep| ep == p.ep_name())));
        options.extend(p.options());
    }
    let mut builder = builder.with_config_entry("session.record_ep_graph_assignment_info", "1")?.with_devices(devices, Some(&options))?;
    if !chosen.contains(&Provider::Cpu) {
        builder = builder.with_disable_cpu_fallback()?;
    }
    Ok(builder)
}

/// Records which provider took how many of `session`'s nodes (ONNX Runtime's own account,
/// kept when the session was built with a provider list).
pub(crate) fn record(model: &Path, session: &Session, refused: Option<String>) {
    let chosen = chosen_for(model);
    if chosen.is_empty() || chosen == [Provider::Cpu] {
        // An account of an earlier session on other providers no longer says where it runs.
        ASSIGNED.lock().unwrap_or_else(|e| e.into_inner()).retain(|a| a.model != model);
        return;
    }
    let nodes = match graph_assignment(session) {
        Ok(nodes) => nodes,
        Err(e) => vec![(format!("unknown ({e})"), 0)],
    };
    let mut assigned = ASSIGNED.lock().unwrap_or_else(|e| e.into_inner());
    assigned.retain(|a| a.model != model);
    if assigned.len() >= MAX_ASSIGNMENTS {
        assigned.remove(0);
    }
    assigned.push(Assignment { model: model.to_owned(), nodes, refused });
}

/// Provider name → nodes, from `Session_GetEpGraphAssignmentInfo` (ONNX Runtime ≥ 1.24).
fn graph_assignment(session: &Session) -> Result<Vec<(String, usize)>, String> {
    let api = ort::api();
    let check = |status: ort::sys::OrtStatusPtr| -> Result<(), String> {
        if status.0.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status from the API holds a message until it is released.
        let message = unsafe { CStr::from_ptr((api.GetErrorMessage)(status.0)) }.to_string_lossy().into_owned();
        unsafe { (api.ReleaseStatus)(status.0) };
        Err(message)
    };
    let mut subgraphs: *const *const ort::sys::OrtEpAssignedSubgraph = std::ptr::null();
    let mut count = 0usize;
    // SAFETY: the session is alive for the call; ONNX Runtime owns the arrays it returns, which
    // live as long as the session, and each string it hands out likewise.
    unsafe {
        check((api.Session_GetEpGraphAssignmentInfo)(session.ptr(), &mut subgraphs, &mut count))?;
        let mut out: Vec<(String, usize)> = Vec::new();
        for i in 0..count {
            let subgraph = *subgraphs.add(i);
            let mut name = std::ptr::null();
            check((api.EpAssignedSubgraph_GetEpName)(subgraph, &mut name))?;
            let name = CStr::from_ptr(name).to_string_lossy().into_owned();
            let mut nodes = std::ptr::null();
            let mut n = 0usize;
            check((api.EpAssignedSubgraph_GetNodes)(subgraph, &mut nodes, &mut n))?;
            match out.iter_mut().find(|(ep, _)| *ep == name) {
                Some((_, total)) => *total += n,
                None => out.push((name, n)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_says_what_ran_or_else_what_was_asked_for() {
        assert_eq!(describe(&[], None), "cpu (ONNX Runtime)");
        let openvino = Provider::OpenVino(PathBuf::from("libplugin.so"));
        let asked = describe(&[openvino.clone(), Provider::Cpu], None);
        assert_eq!(asked, "OpenVINO, then CPU (ONNX Runtime, asked for; not opened yet)");
        let ran = Assignment {
            model: PathBuf::from("voice.onnx"),
            nodes: vec![("OpenVINOExecutionProvider".into(), 112), ("CPUExecutionProvider".into(), 4)],
            refused: None,
        };
        assert_eq!(describe(&[openvino.clone(), Provider::Cpu], Some(&ran)), "OpenVINO 112 nodes, CPU 4 nodes (ONNX Runtime)");
        let refused = Assignment {
            model: PathBuf::from("vad.onnx"),
            nodes: vec![("CPUExecutionProvider".into(), 224)],
            refused: Some("OpenVINO could not compile it".into()),
        };
        let line = describe(&[openvino, Provider::Cpu], Some(&refused));
        assert_eq!(line, "CPU 224 nodes (ONNX Runtime; OpenVINO could not compile it)");
    }
}
