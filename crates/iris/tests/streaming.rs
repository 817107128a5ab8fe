//! Streaming recognition on the media clock: a recording is played into `iris transcribe
//! --stream` in real time, as a microphone would deliver it. Its own test binary, so no other
//! test competes for the two cores while the clock runs.
//!
//! Human recordings come from `IRIS_SPEECH_DIR` (deploy/test.sh fills it with Debian's Asterisk
//! prompts, recorded by a person); the synthetic sample question always runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const IRIS: &str = env!("CARGO_BIN_EXE_iris");

fn recordings() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("tests/data/question.wav")];
    if let Some(dir) = std::env::var_os("IRIS_SPEECH_DIR") {
        // A short prompt and a long one with pauses.
        for name in ["vm-undelete.wav", "dir-intro.wav"] {
            let p = Path::new(&dir).join(name);
            assert!(p.is_file(), "{} is missing: run deploy/speech-corpus.sh", p.display());
            files.push(p);
        }
    } else {
        eprintln!("IRIS_SPEECH_DIR is not set: only the synthetic sample runs (deploy/test.sh sets it)");
    }
    files
}

fn transcribe(extra: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(IRIS).arg("transcribe").arg("--json").args(extra).args(files).output().expect("run iris");
    assert!(out.status.success(), "iris failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[test]
fn partials_come_within_a_second_of_speech_and_the_final_equals_offline() {
    let files = recordings();
    let offline = transcribe(&[], &files);
    let streamed = transcribe(&["--stream"], &files);
    for (file, offline) in files.iter().zip(&offline) {
        let name = file.display().to_string();
        let events: Vec<&Value> = streamed.iter().filter(|v| v["file"] == name.as_str()).collect();
        let (last, partials) = events.split_last().expect("a final line");
        let onset = last["speech_started_s"].as_f64().expect("speech was heard");
        let first = partials.first().unwrap_or_else(|| panic!("{name}: no partial transcript"));
        // The media clock when the first partial came out, against the VAD's speech onset.
        let lag = first["heard_at_s"].as_f64().unwrap() - onset;
        assert!(lag <= 1.0, "{name}: first partial {lag:.2} s after speech began: {first}");
        // Partials keep coming while speech goes on.
        let at: Vec<f64> = partials.iter().map(|p| p["at_s"].as_f64().unwrap()).collect();
        let widest = at.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(widest <= 1.5, "{name}: {widest:.2} s between partials: {at:?}");
        assert_eq!(last["text"], offline["text"], "{name}: the streamed final differs from the offline transcript");
        assert!(!last["text"].as_str().unwrap().is_empty());
    }
}
