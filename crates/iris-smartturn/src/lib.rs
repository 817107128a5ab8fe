//! Smart Turn v3 (pipecat's semantic end-of-turn model) on ONNX Runtime: given the last 8 s of
//! what the user said, the probability that they have finished their turn. Asked once per
//! pause, it lets a finished sentence end the turn at once and an unfinished one wait.

pub mod features;

use std::path::Path;

use iris_backend::{BackendError, TurnDetector};
use ort::session::Session;
use ort::value::Tensor;

pub struct SmartTurn {
    session: Session,
    features: features::Features,
}

impl SmartTurn {
    pub fn load(env: &ort::environment::Environment, model: &Path, threads: usize) -> Result<Self, iris_onnx::OnnxError> {
        Ok(Self { session: iris_onnx::open_session(env, model, threads)?, features: features::Features::default() })
    }
}

impl TurnDetector for SmartTurn {
    fn complete_probability(&mut self, pcm_16k: &[f32]) -> Result<f32, BackendError> {
        let fail = |e: ort::Error| BackendError::Inference(format!("smart turn: {e}"));
        let x = self.features.compute(pcm_16k);
        let input = Tensor::from_array(([1usize, features::MELS, features::FRAMES], x)).map_err(fail)?;
        let out = self.session.run(ort::inputs!["input_features" => input]).map_err(fail)?;
        let (_, p) = out[0].try_extract_tensor::<f32>().map_err(fail)?;
        // The exported model ends in a sigmoid: its "logits" output is already a probability.
        Ok(p.first().copied().unwrap_or(0.0).clamp(0.0, 1.0))
    }
}
