//! Silero VAD (v5/v6 ONNX) on ONNX Runtime: 32 ms frames (512 samples) at 16 kHz.
//!
//! Each call feeds the last 64 samples of the previous frame before the new 512 (the model was
//! trained with that context, as the reference `OnnxWrapper` does) and carries the recurrent
//! state to the next call.

use std::path::Path;

use iris_backend::{BackendError, Vad};
use ort::session::Session;
use ort::value::Tensor;

const FRAME: usize = 512;
const CONTEXT: usize = 64;
const STATE: usize = 2 * 128;

pub struct SileroVad {
    session: Session,
    state: Vec<f32>,
    context: Vec<f32>,
}

impl SileroVad {
    pub fn load(runtime: &ort::environment::Environment, model: &Path) -> Result<Self, iris_onnx::OnnxError> {
        // One thread: a frame is tiny, and the VAD runs beside ASR and TTS.
        let session = iris_onnx::open_session(runtime, model, 1)?;
        Ok(Self { session, state: vec![0.0; STATE], context: vec![0.0; CONTEXT] })
    }
}

impl Vad for SileroVad {
    fn frame_len(&self) -> usize {
        FRAME
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, BackendError> {
        if frame.len() != FRAME {
            return Err(BackendError::Inference(format!("silero takes {FRAME} samples, got {}", frame.len())));
        }
        let fail = |e: ort::Error| BackendError::Inference(format!("silero vad: {e}"));
        let mut input = Vec::with_capacity(CONTEXT + FRAME);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(frame);
        let input = Tensor::from_array(([1usize, CONTEXT + FRAME], input)).map_err(fail)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(fail)?;
        let sr = Tensor::from_array((Vec::<usize>::new(), vec![16_000i64])).map_err(fail)?;
        let outputs = self.session.run(ort::inputs!["input" => input, "state" => state, "sr" => sr]).map_err(fail)?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(fail)?;
        let p = prob.first().copied().unwrap_or(0.0);
        let (_, next) = outputs["stateN"].try_extract_tensor::<f32>().map_err(fail)?;
        self.state.copy_from_slice(&next[..STATE]);
        self.context.copy_from_slice(&frame[FRAME - CONTEXT..]);
        Ok(p)
    }

    fn reset(&mut self) {
        self.state.iter_mut().for_each(|s| *s = 0.0);
        self.context.iter_mut().for_each(|s| *s = 0.0);
    }
}
