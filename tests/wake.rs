//! openWakeWord on ONNX Runtime and on TensorFlow Lite against the reference Python package,
//! and what it hears.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use iris_backend::WakeWord;
use iris_tests::{catalog, root};

/// `name` from the `set` catalog entry (`openwakeword` or `openwakeword-tflite`).
fn wake_file(set: &str, name: &str) -> PathBuf {
    let catalog = catalog();
    let entry = catalog.get(set).unwrap_or_else(|| panic!("{set} in the catalog"));
    iris_models::Store::from_env().and_then(|s| s.verified_file(entry, name)).unwrap_or_else(|e| panic!("{e} (`iris models pull {set}`)"))
}

fn tflite() -> Arc<iris_tflite::Runtime> {
    iris_tflite::Runtime::load(&iris_tests::model("tflite")).expect("TensorFlow Lite loads")
}

/// The networks as (set, file): melspectrogram, embedding, the word's classifier.
fn load(files: [(&str, &str); 3], word: &str) -> iris_wakeword::OpenWakeWord {
    let env = iris_onnx::init(&iris_tests::model("onnxruntime")).expect("ONNX Runtime loads");
    let rt = tflite();
    let [mel, embedding, classifier] = files.map(|(set, name)| wake_file(set, name));
    let runtimes = iris_wakeword::Runtimes { onnx: Some(env), tflite: Some(&rt) };
    iris_wakeword::OpenWakeWord::load(runtimes, &mel, &embedding, &[(word.into(), &classifier)]).expect("openWakeWord loads")
}

const ONNX: &str = "openwakeword";
const TFLITE: &str = "openwakeword-tflite";

fn hey_jarvis() -> iris_wakeword::OpenWakeWord {
    load([(ONNX, "melspectrogram.onnx"), (ONNX, "embedding_model.onnx"), (ONNX, "hey_jarvis_v0.1.onnx")], "hey_jarvis")
}

/// `word` with every network on TensorFlow Lite.
fn on_tflite(word: &str) -> iris_wakeword::OpenWakeWord {
    let classifier = format!("{word}.tflite");
    load([(TFLITE, "melspectrogram.tflite"), (TFLITE, "embedding_model.tflite"), (TFLITE, &classifier)], word)
}

fn scores_of(ww: &mut iris_wakeword::OpenWakeWord, wav: &Path) -> Vec<f32> {
    let pcm = iris_audio::load_speech(wav).unwrap();
    pcm.chunks_exact(iris_wakeword::HOP).map(|hop| ww.scores(hop).unwrap()[0]).collect()
}

fn scores(wav: &Path) -> Vec<f32> {
    scores_of(&mut hey_jarvis(), wav)
}

fn best(scores: &[f32]) -> f32 {
    scores.iter().copied().fold(0f32, f32::max)
}

/// (wav, word) of the sessions in the TFLite set's own words (deploy/loop-sessions.sh).
fn other_words() -> Vec<(PathBuf, String)> {
    let dir = sessions();
    let list = std::fs::read_to_string(dir.join("words.jsonl")).expect("words.jsonl: run deploy/loop-sessions.sh");
    list.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (dir.join(v["file"].as_str().unwrap()), v["wake_word"].as_str().unwrap().to_owned())
        })
        .collect()
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
            .arg(wake_file(ONNX, "hey_jarvis_v0.1.onnx"))
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
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // NN.wav: the "Hey Jarvis" sessions (look-NN and words-NN have other words or none).
        if name.ends_with(".wav") && name.as_bytes()[0].is_ascii_digit() {
            let best = scores(&path).into_iter().fold(0f32, f32::max);
            assert!(best >= 0.5, "{}: best score {best}", path.display());
        }
    }
    let plain = scores(&root().join("tests/data/question.wav")).into_iter().fold(0f32, f32::max);
    assert!(plain < 0.1, "no wake word in \"What is the capital of France?\", yet it scored {plain}");
}

#[test]
fn tflite_scores_equal_the_reference_openwakeword_on_tensorflow_lite() {
    let python = std::env::var_os("IRIS_LIVE_REFERENCE_PYTHON")
        .expect("IRIS_LIVE_REFERENCE_PYTHON is not set: deploy/test.sh installs the reference openwakeword and ai-edge-litert");
    let mut cases = other_words();
    cases.push((sessions().join("01.wav"), "hey_jarvis".into()));
    for (wav, word) in cases {
        let out = Command::new(&python)
            .arg(root().join("tests/reference/openwakeword_tflite_scores.py"))
            .arg(wake_file(TFLITE, "melspectrogram.tflite"))
            .arg(wake_file(TFLITE, "embedding_model.tflite"))
            .arg(wake_file(TFLITE, &format!("{word}.tflite")))
            .arg(&wav)
            .output()
            .expect("the reference runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reference: Vec<f32> = serde_json::from_slice(&out.stdout).expect("scores as JSON");
        let ours = scores_of(&mut on_tflite(&word), &wav);
        assert_eq!(ours.len(), reference.len());
        let worst = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "{word} in {}: scores differ by {worst}", wav.display());
        assert!(best(&reference) > 0.5, "{word} in {}: the reference hears no wake word", wav.display());
    }
}

#[test]
fn the_tflite_words_are_heard_beside_the_onnx_features_and_not_in_a_plain_question() {
    // The default runtime is ONNX: the shared networks run there and a word only the TFLite set
    // has (okay_nabu, hey_rhasspy) runs its classifier on TensorFlow Lite.
    let plain = root().join("tests/data/question.wav");
    for (wav, word) in other_words() {
        let classifier = format!("{word}.tflite");
        let mut mixed = load([(ONNX, "melspectrogram.onnx"), (ONNX, "embedding_model.onnx"), (TFLITE, &classifier)], &word);
        let heard = best(&scores_of(&mut mixed, &wav));
        assert!(heard >= 0.5, "{word} in {}: best score {heard}", wav.display());
        let mut mixed = load([(ONNX, "melspectrogram.onnx"), (ONNX, "embedding_model.onnx"), (TFLITE, &classifier)], &word);
        let not = best(&scores_of(&mut mixed, &plain));
        assert!(not < 0.1, "no {word} in \"What is the capital of France?\", yet it scored {not}");
    }
}

#[test]
fn hey_jarvis_on_tflite_wakes_where_it_does_on_onnx() {
    let dir = sessions();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".wav") && name.as_bytes()[0].is_ascii_digit()) {
            continue;
        }
        let onnx = scores(&path);
        let tflite = scores_of(&mut on_tflite("hey_jarvis"), &path);
        let first = |s: &[f32]| s.iter().position(|x| *x >= 0.5);
        assert!(first(&onnx).is_some(), "{name}: ONNX hears no hey_jarvis");
        let (a, b) = (first(&onnx).unwrap() as i64, first(&tflite).map(|i| i as i64));
        // The two sets are separate conversions of the word (on a rising edge their scores differ
        // by up to 0.7 on a hop), so the first hop over the threshold may move a little; the
        // detection may not.
        assert!(b.is_some_and(|b| (a - b).abs() <= 4), "{name}: ONNX wakes at hop {a}, TFLite at {b:?}");
    }
}

#[test]
fn a_damaged_tflite_model_is_refused_with_its_name() {
    let dir = std::env::temp_dir().join(format!("iris-tflite-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("okay_nabu.tflite");
    let mut bytes = std::fs::read(wake_file(TFLITE, "okay_nabu.tflite")).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&bad, &bytes).unwrap();
    let Err(e) = tflite().interpreter(&bad, 1) else { panic!("a truncated model loaded") };
    let message = e.to_string();
    assert!(message.contains("okay_nabu.tflite") && message.contains("iris models verify"), "{message}");
    let missing = tflite().interpreter(&dir.join("none.tflite"), 1).err().expect("a missing model is an error").to_string();
    assert!(missing.contains("none.tflite"), "{missing}");
    let Err(lib) = iris_tflite::Runtime::load(&bad) else { panic!("a model loaded as the library") };
    assert!(lib.to_string().contains("iris models pull tflite"), "{lib}");
    std::fs::remove_dir_all(&dir).ok();
}

/// microWakeWord on TensorFlow Lite against the reference pymicro-wakeword 2.5.0, on every spoken
/// session and each of its four words: each model call's score equal (the frontend's features,
/// the quantisation and the sliding mean), and the words heard where the reference hears them.
#[test]
fn microwakeword_scores_equal_the_reference_pymicro_wakeword() {
    let Some(python) = std::env::var_os("IRIS_LIVE_REFERENCE_PYTHON") else {
        panic!("IRIS_LIVE_REFERENCE_PYTHON is not set: deploy/test.sh installs the reference pymicro-wakeword package");
    };
    let dir = sessions();
    let rt = tflite();
    let mut wavs: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "wav")).collect();
    wavs.sort();
    let (mut heard, mut reference_heard) = (Vec::new(), Vec::new());
    for word in ["okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"] {
        let json = wake_file("microwakeword", &format!("{word}.json"));
        wake_file("microwakeword", &format!("{word}.tflite"));
        let cutoff = iris_wakeword::MicroConfig::read(&json).unwrap().cutoff;
        for wav in &wavs {
            let out = Command::new(&python)
                .arg(root().join("tests/reference/microwakeword_probs.py"))
                .args([&json, &iris_tests::model("tflite"), wav])
                .output()
                .expect("the reference runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let reference: Vec<f32> = serde_json::from_slice(&out.stdout).expect("scores as JSON");
            let mut micro = iris_wakeword::MicroWakeWord::load(&rt, &[(word.into(), &json)]).expect("microWakeWord loads");
            let pcm = iris_audio::load_speech(wav).unwrap();
            // The first hop fills the frontend's window; each later one makes one model call.
            let ours: Vec<f32> = pcm.chunks_exact(iris_wakeword::MICRO_HOP).map(|hop| micro.scores(hop).unwrap()[0]).skip(1).collect();
            let name = format!("{word} in {}", wav.file_name().unwrap().to_string_lossy());
            assert!(
                ours.len().abs_diff(reference.len()) <= 1 && !ours.is_empty(),
                "{name}: {} calls against {}",
                ours.len(),
                reference.len()
            );
            let worst = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-6, "{name}: scores differ by up to {worst}");
            if ours.iter().any(|s| *s >= cutoff) {
                heard.push(name.clone());
            }
            if reference.iter().any(|s| *s >= cutoff) {
                reference_heard.push(name);
            }
        }
    }
    assert_eq!(heard, reference_heard);
    assert!(heard.iter().any(|h| h.starts_with("okay_nabu")) && heard.iter().any(|h| h.starts_with("hey_jarvis")), "heard only {heard:?}");
}
