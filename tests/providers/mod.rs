//! What the provider tests compare: Silero VAD's and Smart Turn's outputs on the same speech,
//! and openWakeWord's scores and the OCR's reading (shared by `onnx_providers.rs` and
//! `qnn_provider.rs`, each its own process).

use iris_backend::{TurnDetector, Vad};

use iris_tests::model;

/// Silero VAD's speech probability for each frame of `pcm`.
pub fn vad_probabilities(env: &iris_onnx::Environment, pcm: &[f32]) -> Vec<f32> {
    let mut vad = iris_silero::SileroVad::load(env, &model("silero-vad")).expect("Silero loads");
    pcm.chunks_exact(vad.frame_len()).map(|f| vad.speech_probability(f).expect("a probability")).collect()
}

/// Smart Turn's end-of-turn probability part-way through `pcm` and at its end.
pub fn turn_probabilities(env: &iris_onnx::Environment, pcm: &[f32]) -> Vec<f32> {
    let mut turn = iris_smartturn::SmartTurn::load(env, &model("smart-turn"), 1).expect("Smart Turn loads");
    [pcm.len() * 55 / 100, pcm.len()].iter().map(|&n| turn.complete_probability(&pcm[..n]).expect("a probability")).collect()
}

/// The largest difference between two equally long lists.
pub fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// openWakeWord's Hey Jarvis score for each hop of `pcm`, every network on ONNX Runtime.
pub fn wake_scores(env: &iris_onnx::Environment, pcm: &[f32]) -> Vec<f32> {
    use iris_backend::WakeWord;
    let catalog = iris_tests::catalog();
    let entry = catalog.get("openwakeword").expect("openwakeword in the catalog");
    let store = iris_models::Store::from_env().expect("the model store");
    let file = |name: &str| store.verified_file(entry, name).expect("the openwakeword models (`iris models pull openwakeword`)");
    let (mel, embedding, word) = (file("melspectrogram.onnx"), file("embedding_model.onnx"), file("hey_jarvis_v0.1.onnx"));
    let runtimes = iris_wakeword::Runtimes { onnx: Some(env), tflite: None };
    let mut ww =
        iris_wakeword::OpenWakeWord::load(runtimes, &mel, &embedding, &[("hey_jarvis".into(), &word)]).expect("openWakeWord loads");
    pcm.chunks_exact(iris_wakeword::HOP).map(|hop| ww.scores(hop).expect("scores")[0]).collect()
}

/// The OCR's reading of `image`: its lines' text, and their confidences.
pub fn ocr_reading(env: &iris_onnx::Environment, image: &iris_frames::ImageFrame) -> (Vec<String>, Vec<f32>) {
    let dir = model("ppocr-v6-tiny").parent().expect("a folder").to_owned();
    let mut ocr =
        iris_ocr::Ocr::load(env, &dir.join("PP-OCRv6_det_tiny.onnx"), &dir.join("PP-OCRv6_rec_tiny.onnx"), 2).expect("the OCR loads");
    let lines = ocr.read(image).expect("it reads");
    (lines.iter().map(|l| l.text.clone()).collect(), lines.iter().map(|l| l.confidence).collect())
}

/// A spoken "Hey Jarvis" session and a photographed page (deploy/test.sh makes both).
pub fn spoken_session_and_page() -> (Vec<f32>, iris_frames::ImageFrame) {
    let sessions = std::env::var_os("IRIS_LOOP_SESSIONS").map(std::path::PathBuf::from).expect("IRIS_LOOP_SESSIONS (deploy/test.sh)");
    let session = iris_audio::load_speech(&sessions.join("01.wav")).expect("a spoken session");
    let images = std::env::var_os("IRIS_IMAGES_DIR").map(std::path::PathBuf::from).expect("IRIS_IMAGES_DIR (deploy/test.sh)");
    (session, iris_vision::load_image(&images.join("page.png")).expect("the page photo"))
}
