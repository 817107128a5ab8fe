//! ONNX Runtime's execution providers: OpenVINO's plugin (the `openvino-ep` catalog entry,
//! `test.sh` pulls it) runs the wake word's networks and the OCR's two as the CPU provider does,
//! and ONNX Runtime's own account of which provider took which nodes says OpenVINO ran them;
//! the VAD it cannot compile runs on the CPU provider next on its list, and says so.
//! On a CPU that is not Intel's, OpenVINO's plugin offers no device, and asking for it is one
//! clear error. One test, in its own binary: the providers asked for are process-wide (QNN's
//! plugin has its own binary, `tests/qnn_provider.rs`: the two plugins cannot share a process).

use iris_onnx::Provider;
mod providers;

use iris_tests::{model, root};
use providers::{ocr_reading, spoken_session_and_page, turn_probabilities, vad_probabilities, wake_scores, worst};

#[test]
fn openvino_runs_the_onnx_models_as_the_cpu_provider_does() {
    let env = iris_onnx::init(&model("onnxruntime")).expect("ONNX Runtime loads");
    let pcm = iris_audio::load_speech(&root().join("tests/data/question.wav")).expect("the sample question");
    iris_onnx::use_providers(env, &[Provider::Cpu]).expect("the CPU provider");
    let (vad_cpu, turn_cpu) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
    let (session, page) = spoken_session_and_page();
    let (wake_cpu, ocr_cpu) = (wake_scores(env, &session), ocr_reading(env, &page));
    assert!(wake_cpu.iter().any(|s| *s >= 0.5) && !ocr_cpu.0.is_empty(), "the CPU provider hears the word and reads the page");
    // The status line of a model on the CPU provider (the panel's Status page shows it).
    assert_eq!(iris_onnx::placement(&model("silero-vad")), "cpu (ONNX Runtime)");

    // A plugin that is not there is an error naming it and the fix, not a quiet fallback.
    let missing = iris_onnx::use_providers(env, &[Provider::OpenVino("/nonexistent/libopenvino_plugin.so".into()), Provider::Cpu]);
    let message = missing.expect_err("a missing plugin").to_string();
    assert!(message.contains("iris models pull openvino-ep"), "{message}");
    assert_eq!(iris_onnx::chosen(), [Provider::Cpu], "a failed choice leaves the last one in force");

    let plugin = model("openvino-ep");
    let asked = iris_onnx::use_providers(env, &[Provider::OpenVino(plugin), Provider::Cpu]);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if !cpuinfo.contains("GenuineIntel") {
        // OpenVINO's plugin offers only Intel hardware (its factories skip every device whose
        // vendor is not Intel's): here that is one clear error, and the CPU provider stays.
        let message = asked.expect_err("no OpenVINO device on a CPU that is not Intel's").to_string();
        assert!(message.contains("OpenVINOExecutionProvider offers no device") && message.contains("CPUExecutionProvider"), "{message}");
        assert_eq!(iris_onnx::chosen(), [Provider::Cpu]);
        eprintln!("not an Intel CPU: OpenVINO's provider registered and offered no device, as its plugin does off Intel hardware");
        return;
    }
    asked.expect("OpenVINO's provider registers and offers the CPU");
    let offered = iris_onnx::offered(env);
    assert!(offered.iter().any(|(ep, device)| ep == "OpenVINOExecutionProvider" && device == "CPU"), "{offered:?}");
    // Smart Turn on its own list, as Iris keeps it beside OpenVINO (`Models::onnx`): OpenVINO
    // 2026.4 computes it otherwise, even in f32.
    iris_onnx::use_providers_for(env, &model("smart-turn"), &[Provider::Cpu]).expect("a model's own list");
    let (vad_ov, turn_ov) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
    // Silero VAD's `If` branches have tensors of no static rank, which OpenVINO cannot convert:
    // the CPU provider, next on the list, runs it, and its status line says why.
    let line = iris_onnx::placement(&model("silero-vad"));
    assert!(line.starts_with("CPU ") && line.contains("OpenVINO could not compile this model"), "{line}");
    assert!(worst(&vad_cpu, &vad_ov) < 1e-6 && worst(&turn_cpu, &turn_ov) < 1e-6, "on the CPU provider, the CPU provider's outputs");
    assert_eq!(iris_onnx::placement(&model("smart-turn")), "cpu (ONNX Runtime)");
    // The wake word's networks and the OCR's on OpenVINO (asked for f32, as the models are):
    // the same word heard at the same hops, the same text read.
    let (wake_ov, ocr_ov) = (wake_scores(env, &session), ocr_reading(env, &page));
    let dw = worst(&wake_cpu, &wake_ov);
    assert!(dw < 0.01, "OpenVINO changes Hey Jarvis's scores by {dw}");
    let heard = |s: &[f32]| s.iter().map(|s| *s >= 0.5).collect::<Vec<_>>();
    assert_eq!(heard(&wake_cpu), heard(&wake_ov), "the word is heard at the same hops");
    assert_eq!(ocr_ov.0, ocr_cpu.0, "OpenVINO reads the page otherwise");
    let dc = worst(&ocr_cpu.1, &ocr_ov.1);
    assert!(dc < 0.01, "the OCR's confidences move by {dc}");

    // ONNX Runtime's account: OpenVINO took the OCR's detector and the wake word's networks.
    let assigned = iris_onnx::assignments();
    let store = iris_models::Store::from_env().expect("the model store");
    let embedding =
        store.verified_file(iris_tests::catalog().get("openwakeword").expect("in the catalog"), "embedding_model.onnx").expect("installed");
    for (name, file) in [("the OCR", model("ppocr-v6-tiny")), ("the wake word's embedding", embedding)] {
        let a = assigned.iter().find(|a| a.model == file).unwrap_or_else(|| panic!("no assignment for {name}: {assigned:?}"));
        let ov = a.nodes.iter().find(|(ep, _)| ep == "OpenVINOExecutionProvider").map_or(0, |(_, n)| *n);
        assert!(ov > 0, "{name}: {:?}", a.nodes);
        let line = iris_onnx::placement(&file);
        assert!(line.starts_with("OpenVINO ") && line.contains(" nodes"), "{name}: {line}");
    }
    iris_onnx::clear_model_providers();
}
