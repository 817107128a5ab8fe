//! What the provider tests compare: Silero VAD's and Smart Turn's outputs on the same speech
//! (shared by `onnx_providers.rs` and `qnn_provider.rs`, each its own process).

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
