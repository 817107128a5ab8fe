//! One of openWakeWord's three networks on the runtime its file is for: `.onnx` on ONNX Runtime,
//! `.tflite` on TensorFlow Lite. The streaming around them does not care which.

use std::path::Path;
use std::sync::Arc;

use ort::session::Session;
use ort::value::Tensor;

use crate::WakeError;

/// The runtimes a wake-word model may be loaded on; each is optional so a board with only one
/// of them still runs the words made for it.
#[derive(Clone, Copy, Default)]
pub struct Runtimes<'a> {
    pub onnx: Option<&'a ort::environment::Environment>,
    pub tflite: Option<&'a Arc<iris_tflite::Runtime>>,
}

pub(crate) enum Net {
    Onnx { session: Session, input: String },
    Tflite(iris_tflite::Interpreter),
}

fn run_err(e: ort::Error) -> WakeError {
    WakeError::Run(e.to_string())
}

impl Net {
    /// Opens `path` on the runtime its extension names, one thread (a hop is ~2 ms of work).
    pub(crate) fn open(runtimes: Runtimes, path: &Path) -> Result<Self, WakeError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("tflite") => {
                let rt = runtimes.tflite.ok_or_else(|| WakeError::NoRuntime(path.display().to_string(), "TensorFlow Lite", "tflite"))?;
                Ok(Net::Tflite(rt.interpreter(path, 1)?))
            }
            _ => {
                let env = runtimes.onnx.ok_or_else(|| WakeError::NoRuntime(path.display().to_string(), "ONNX Runtime", "onnxruntime"))?;
                let session = iris_onnx::open_session(env, path, 1)?;
                let input = session.inputs().first().map(|i| i.name().to_owned()).unwrap_or_default();
                Ok(Net::Onnx { session, input })
            }
        }
    }

    /// The first input's shape as the model declares it (dynamic dimensions read as -1 or 1).
    pub(crate) fn input_shape(&self) -> Vec<i64> {
        match self {
            Net::Onnx { session, .. } => {
                session.inputs().first().and_then(|i| i.dtype().tensor_shape()).map(|s| s.iter().copied().collect()).unwrap_or_default()
            }
            Net::Tflite(interp) => interp.input_shape().into_iter().map(|d| d as i64).collect(),
        }
    }

    /// Runs on `data` shaped `shape`; the first output, flattened.
    pub(crate) fn run(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Vec<f32>, WakeError> {
        match self {
            Net::Onnx { session, input } => {
                let tensor = Tensor::from_array((shape.to_vec(), data)).map_err(run_err)?;
                let out = session.run(ort::inputs![input.as_str() => tensor]).map_err(run_err)?;
                let (_, values) = out[0].try_extract_tensor::<f32>().map_err(run_err)?;
                Ok(values.to_vec())
            }
            Net::Tflite(interp) => Ok(interp.run(shape, &data)?.1),
        }
    }
}
