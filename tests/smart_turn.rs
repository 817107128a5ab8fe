//! Smart Turn v3.2 on ONNX Runtime against pipecat's own features and model run.

use std::process::Command;

use iris_backend::TurnDetector;
use iris_tests::{model, root};

#[test]
fn features_and_probability_equal_pipecats() {
    let Some(python) = std::env::var_os("IRIS_LIVE_REFERENCE_PYTHON") else {
        panic!("IRIS_LIVE_REFERENCE_PYTHON is not set: deploy/test.sh installs the reference pipecat package");
    };
    let env = iris_onnx::init(&model("onnxruntime")).expect("ONNX Runtime loads");
    let mut turn = iris_smartturn::SmartTurn::load(env, &model("smart-turn"), 1).unwrap();
    let features = iris_smartturn::features::Features::default();
    // A finished question, and the same cut off in the middle of a word.
    let dir = tempfile::tempdir().unwrap();
    let whole = iris_audio::load_speech(&root().join("tests/data/question.wav")).unwrap();
    let cut = dir.path().join("cut.wav");
    iris_audio::write_wav_atomic(&cut, &whole[..whole.len() * 55 / 100], 16_000).unwrap();
    let mut probabilities = Vec::new();
    for wav in [root().join("tests/data/question.wav"), cut] {
        let out = Command::new(&python)
            .arg(root().join("tests/reference/smart_turn.py"))
            .arg(model("smart-turn"))
            .arg(&wav)
            .output()
            .expect("the reference runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pcm = iris_audio::load_speech(&wav).unwrap();
        let ours = features.compute(&pcm);
        let stride = reference["stride"].as_u64().unwrap() as usize;
        let worst = reference["features"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_f64().unwrap() as f32 - ours[i * stride]).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{}: features differ by {worst}", wav.display());
        // The model is int8 (dynamically quantised activations): a feature difference of 1e-5
        // (f64 FFTs from two libraries) moves its output by up to ~0.03, so the probability is
        // held to 0.05 and to the same verdict.
        let p = turn.complete_probability(&pcm).unwrap();
        let want = reference["probability"].as_f64().unwrap() as f32;
        assert!((p - want).abs() < 0.05 && (p >= 0.5) == (want >= 0.5), "{}: probability {p}, reference {want}", wav.display());
        probabilities.push(p);
    }
    assert!(probabilities[0] > 0.5, "the whole question is a finished turn: {probabilities:?}");
}
