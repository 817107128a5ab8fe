//! ONNX Runtime's execution providers: OpenVINO's plugin (the `openvino-ep` catalog entry,
//! `test.sh` pulls it) runs the voice-activity and turn models as the CPU provider does, and
//! ONNX Runtime's own account of which provider took which nodes says OpenVINO ran them.
//! On a CPU that is not Intel's, OpenVINO's plugin offers no device, and asking for it is one
//! clear error. One test, in its own binary: the providers asked for are process-wide (QNN's
//! plugin has its own binary, `tests/qnn_provider.rs`: the two plugins cannot share a process).

use iris_onnx::Provider;
mod providers;

use iris_tests::{model, root};
use providers::{turn_probabilities, vad_probabilities, worst};

#[test]
fn openvino_runs_the_onnx_models_as_the_cpu_provider_does() {
    let env = iris_onnx::init(&model("onnxruntime")).expect("ONNX Runtime loads");
    let pcm = iris_audio::load_speech(&root().join("tests/data/question.wav")).expect("the sample question");
    iris_onnx::use_providers(env, &[Provider::Cpu]).expect("the CPU provider");
    let (vad_cpu, turn_cpu) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
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
    let (vad_ov, turn_ov) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
    // OpenVINO's CPU plugin computes in its own order (and may fuse operators): equal within a
    // few thousandths of a probability, and the same decisions.
    let (dv, dt) = (worst(&vad_cpu, &vad_ov), worst(&turn_cpu, &turn_ov));
    assert!(dv < 0.01, "voice activity differs by {dv}");
    assert!(dt < 0.01, "turn probability differs by {dt}");
    let speech = |p: &[f32]| p.iter().map(|p| *p > 0.5).collect::<Vec<_>>();
    assert_eq!(speech(&vad_cpu), speech(&vad_ov), "the same frames are speech");

    // ONNX Runtime's account: OpenVINO took nodes of both models.
    let assigned = iris_onnx::assignments();
    for id in ["silero-vad", "smart-turn"] {
        let a = assigned.iter().find(|a| a.model == model(id)).unwrap_or_else(|| panic!("no assignment for {id}: {assigned:?}"));
        let ov = a.nodes.iter().find(|(ep, _)| ep == "OpenVINOExecutionProvider").map_or(0, |(_, n)| *n);
        assert!(ov > 0, "{id}: {:?}", a.nodes);
        let line = iris_onnx::placement(&model(id));
        assert!(line.starts_with("OpenVINO ") && line.contains(" nodes"), "{id}: {line}");
    }
}
