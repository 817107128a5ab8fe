//! Qualcomm's QNN execution provider (the `qnn-ep` catalog entry, `test.sh` pulls it): its
//! plugin registers with the stock ONNX Runtime and offers a device on this machine (its HTP
//! backend is the interface to a Snapdragon's Hexagon NPU). Iris's models are float and this
//! machine has no NPU: ONNX Runtime's own account says what QNN took, the CPU provider runs the
//! rest, and the outputs are the CPU provider's. Asked for alone, a model QNN cannot take whole is
//! refused. Its own binary: providers are process-wide, and QNN's plugin (its own C++ runtime)
//! and OpenVINO's cannot share a process.

use iris_onnx::Provider;
mod providers;

use iris_tests::{model, root};
use providers::{ocr_reading, spoken_session_and_page, turn_probabilities, vad_probabilities, wake_scores, worst};

#[test]
fn qnn_takes_what_it_can_and_the_cpu_provider_the_rest() {
    let env = iris_onnx::init(&model("onnxruntime")).expect("ONNX Runtime loads");
    let pcm = iris_audio::load_speech(&root().join("tests/data/question.wav")).expect("the sample question");
    iris_onnx::use_providers(env, &[Provider::Cpu]).expect("the CPU provider");
    let (vad_cpu, turn_cpu) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
    let (session, page) = spoken_session_and_page();
    let (wake_cpu, ocr_cpu) = (wake_scores(env, &session), ocr_reading(env, &page));
    assert!(wake_cpu.iter().any(|s| *s >= 0.5) && !ocr_cpu.0.is_empty(), "the CPU provider hears the word and reads the page");

    let missing = iris_onnx::use_providers(env, &[Provider::Qnn("/nonexistent/libonnxruntime_providers_qnn.so".into()), Provider::Cpu]);
    assert!(missing.expect_err("a missing plugin").to_string().contains("iris models pull qnn-ep"));

    let qnn = model("qnn-ep");
    iris_onnx::use_providers(env, &[Provider::Qnn(qnn.clone()), Provider::Cpu]).expect("QNN's provider registers and offers a device");
    let offered = iris_onnx::offered(env);
    assert!(offered.iter().any(|(ep, _)| ep == "QNNExecutionProvider"), "{offered:?}");
    let (vad_q, turn_q) = (vad_probabilities(env, &pcm), turn_probabilities(env, &pcm));
    let (dv, dt) = (worst(&vad_cpu, &vad_q), worst(&turn_cpu, &turn_q));
    assert!(dv < 0.01 && dt < 0.01, "QNN beside the CPU provider differs by {dv} (VAD) and {dt} (turn)");
    // The wake word's three networks and the OCR's two, on the same list: the same outputs.
    let (wake_q, ocr_q) = (wake_scores(env, &session), ocr_reading(env, &page));
    let dw = worst(&wake_cpu, &wake_q);
    assert!(dw < 0.01, "QNN beside the CPU provider changes Hey Jarvis's scores by {dw}");
    assert_eq!(ocr_q.0, ocr_cpu.0, "QNN beside the CPU provider reads the page otherwise");
    let dc = worst(&ocr_cpu.1, &ocr_q.1);
    assert!(dc < 0.01, "the OCR's confidences move by {dc}");
    let assigned = iris_onnx::assignments();
    let vad = assigned.iter().find(|a| a.model == model("silero-vad")).expect("an account for the VAD");
    let total: usize = vad.nodes.iter().map(|(_, n)| n).sum();
    assert!(total > 0 && vad.nodes.iter().any(|(ep, _)| ep == "CPUExecutionProvider"), "{:?}", vad.nodes);
    let line = iris_onnx::placement(&model("silero-vad"));
    assert!(line.contains(" nodes") && line.ends_with("(ONNX Runtime)"), "{line}");
    eprintln!("QNN beside the CPU provider, Silero VAD: {line}");
    // A model's own list in place of the process-wide one ([onnx.models]): Smart Turn on the CPU
    // provider alone while the VAD keeps QNN's list, each reported as it runs.
    iris_onnx::use_providers_for(env, &model("smart-turn"), &[Provider::Cpu]).expect("a model's own list");
    let turn_own = turn_probabilities(env, &pcm);
    assert_eq!(iris_onnx::placement(&model("smart-turn")), "cpu (ONNX Runtime)");
    assert!(iris_onnx::placement(&model("silero-vad")).starts_with("QNN "), "{}", iris_onnx::placement(&model("silero-vad")));
    assert!(worst(&turn_cpu, &turn_own) < 1e-6, "the CPU provider alone gives the CPU provider's outputs");
    iris_onnx::clear_model_providers();

    // Asked for alone, a model QNN cannot take whole is refused, not run elsewhere.
    iris_onnx::use_providers(env, &[Provider::Qnn(qnn)]).expect("QNN alone is a valid choice");
    let alone = iris_silero::SileroVad::load(env, &model("silero-vad")).map(|_| ()).expect_err("Silero's If node has no QNN kernel");
    assert!(alone.to_string().contains("fallback to CPU EP has been explicitly disabled"), "{alone}");
    iris_onnx::use_providers(env, &[Provider::Cpu]).expect("the CPU provider");

    // OpenVINO's plugin after QNN's: refused with the reason, not a crash inside ONNX Runtime.
    let both = iris_onnx::use_providers(env, &[Provider::OpenVino(model("openvino-ep")), Provider::Cpu]);
    let message = both.expect_err("OpenVINO beside QNN").to_string();
    assert!(message.contains("restart"), "{message}");
}
