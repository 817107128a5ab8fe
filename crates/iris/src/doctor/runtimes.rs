//! The doctor's checks of where models run: ONNX Runtime's providers, TensorFlow Lite and its
//! delegate, the GPU.

use iris_config::Config;

use super::Report;
use crate::backends::Models;

/// The execution providers ONNX Runtime offers here (with the plugins `[onnx] providers` asks
/// for registered), and whether those asked for can be had.
pub(super) fn onnx_providers(r: &mut Report, m: &Models) {
    if m.file(&m.config.models.runtime, "runtime").is_err() {
        return; // the models check names the missing runtime
    }
    match m.onnx() {
        Ok(env) => {
            let offered: Vec<String> = iris_onnx::offered(env).into_iter().map(|(ep, device)| format!("{ep} ({device})")).collect();
            r.ok("onnx", format!("providers asked for: {}; offered here: {}", m.config.onnx.providers.join(", "), offered.join(", ")));
        }
        Err(e) => r.problem(
            "onnx",
            format!("{e:#}"),
            "OpenVINO's provider offers Intel CPUs, GPUs and NPUs only, and needs `iris models pull openvino-ep`; QNN's needs `iris models pull qnn-ep`; elsewhere set [onnx] providers = [\"cpu\"]",
        ),
    }
}

/// The NVIDIA driver's version line, if one is loaded.
pub(super) fn nvidia_driver() -> Option<String> {
    std::fs::read_to_string("/proc/driver/nvidia/version").ok().and_then(|v| v.lines().next().map(str::to_owned))
}

pub(super) fn gpu(r: &mut Report, c: &Config) {
    let driver = nvidia_driver();
    let built = cfg!(feature = "cuda");
    let what = format!(
        "{}; this build {} CUDA",
        driver.as_deref().map_or("no NVIDIA driver".to_owned(), |d| format!(
            "NVIDIA driver: {}",
            d.split("  ").find(|s| s.contains('.')).unwrap_or(d).trim()
        )),
        if built { "has" } else { "has no" }
    );
    match (c.models.device.as_str(), built, driver.is_some()) {
        ("metal", _, _) if !cfg!(feature = "metal") => {
            r.problem("gpu", what, "set `[models] device = \"cpu\"`, or use a Metal build on a Mac (README: On a GPU)")
        }
        ("cuda", false, _) => r.problem("gpu", what, "set `[models] device = \"cpu\"`, or use the CUDA build (README: On a GPU)"),
        ("cuda", true, false) => r.problem("gpu", what, "install the NVIDIA driver, or set `[models] device = \"cpu\"`"),
        (_, false, true) => r.note("gpu", what, "the CUDA build runs the language model and Whisper on this GPU (README: On a GPU)"),
        ("cuda" | "auto", true, true) => r.ok("gpu", format!("{what}; the language model, Whisper on candle and the VLM run on the GPU")),
        _ => r.ok("gpu", format!("{what}; `[models] device = {:?}` runs them on the CPU", c.models.device)),
    }
}

/// TensorFlow Lite and its delegate, where the settings use them: the library loads, and the
/// delegate (an external one's plugin included) is there.
pub(super) fn tflite(r: &mut Report, m: &Models) {
    let c = &m.config;
    if c.audio.wake_runtime != "tflite" && c.audio.wake_engine != "microwakeword" && c.tflite.delegate != "external" {
        return;
    }
    match crate::wake::tflite_runtime(m) {
        Ok(rt) => r.ok("tflite", format!("TensorFlow Lite {} on {}", rt.version(), rt.delegate(1))),
        Err(e) => r.problem(
            "tflite",
            format!("{e:#}"),
            "`iris models pull tflite`; for an NPU, its maker's delegate plugin as [tflite] external_library, or delegate = \"xnnpack\"",
        ),
    }
}
