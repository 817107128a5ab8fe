//! openWakeWord on ONNX Runtime against the reference Python package, and what it hears.

use std::path::PathBuf;
use std::process::Command;

use iris_backend::WakeWord;
use iris_tests::{catalog, root};

fn wake_file(name: &str) -> PathBuf {
    let catalog = catalog();
    let entry = catalog.get("openwakeword").expect("openwakeword in the catalog");
    iris_models::Store::from_env()
        .and_then(|s| s.verified_file(entry, name))
        .unwrap_or_else(|e| panic!("{e} (`iris models pull openwakeword`)"))
}

fn hey_jarvis() -> iris_wakeword::OpenWakeWord {
    let env = iris_onnx::init(&iris_tests::model("onnxruntime")).expect("ONNX Runtime loads");
    let word = wake_file("hey_jarvis_v0.1.onnx");
    iris_wakeword::OpenWakeWord::load(
        env,
        &wake_file("melspectrogram.onnx"),
        &wake_file("embedding_model.onnx"),
        &[("hey_jarvis".into(), &word)],
    )
    .expect("openWakeWord loads")
}

fn scores(wav: &std::path::Path) -> Vec<f32> {
    let mut ww = hey_jarvis();
    let pcm = iris_audio::load_speech(wav).unwrap();
    pcm.chunks_exact(iris_wakeword::HOP).map(|hop| ww.scores(hop).unwrap()[0]).collect()
}

/// Spoken sessions from deploy/loop-sessions.sh ("Hey Jarvis" then a question, over noise).
fn sessions() -> PathBuf {
    let dir = std::env::var_os("IRIS_LOOP_SESSIONS").map(PathBuf::from).expect("IRIS_LOOP_SESSIONS (deploy/test.sh makes them)");
    assert!(dir.join("sessions.jsonl").is_file(), "{}: run deploy/loop-sessions.sh", dir.display());
    dir
}

#[test]
fn scores_equal_the_reference_openwakeword() {
    let Some(python) = std::env::var_os("IRIS_LIVE_REFERENCE_PYTHON") else {
        panic!("IRIS_LIVE_REFERENCE_PYTHON is not set: deploy/test.sh installs the reference openwakeword package");
    };
    let dir = sessions();
    for name in ["01.wav", "02.wav", "05.wav"] {
        let wav = dir.join(name);
        let out = Command::new(&python)
            .arg(root().join("tests/reference/openwakeword_scores.py"))
            .arg(wake_file("hey_jarvis_v0.1.onnx"))
            .arg(&wav)
            .output()
            .expect("the reference runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reference: Vec<f32> = serde_json::from_slice(&out.stdout).expect("scores as JSON");
        let ours = scores(&wav);
        assert_eq!(ours.len(), reference.len());
        let worst = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "{name}: scores differ by {worst}");
        assert!(reference.iter().any(|s| *s > 0.5), "{name}: the reference hears no wake word");
    }
}

#[test]
fn hears_hey_jarvis_in_other_voices_and_not_in_a_plain_question() {
    let dir = sessions();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wav") {
            let best = scores(&path).into_iter().fold(0f32, f32::max);
            assert!(best >= 0.5, "{}: best score {best}", path.display());
        }
    }
    let plain = scores(&root().join("tests/data/question.wav")).into_iter().fold(0f32, f32::max);
    assert!(plain < 0.1, "no wake word in \"What is the capital of France?\", yet it scored {plain}");
}
