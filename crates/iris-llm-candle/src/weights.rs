//! The model families this backend runs, behind one forward call. Files Iris's own CPU engine
//! takes (`iris-llm-cpu`: llama, qwen2 and gemma3 with the matrix types it has kernels for) run
//! there on the CPU, and on Iris's own CUDA engine (`iris-llm-cuda`, in a CUDA build) on an
//! NVIDIA GPU; the rest run on candle's quantized implementations: `llama` (SmolLM2, Llama 3.x), `qwen2` (Qwen2 / Qwen2.5)
//! and `gemma3` (Iris's corrected copy, `crate::gemma3`). Each keeps its own KV cache and takes
//! the position of the first new token.

use std::fs::File;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

pub const FAMILIES: [&str; 3] = ["llama", "qwen2", "gemma3"];

/// Which engine runs a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// Iris's CPU engine where it takes the file, candle otherwise.
    #[default]
    Auto,
    Candle,
    /// Iris's CPU engine, or an error saying why it does not take the file.
    Cpu,
    /// Iris's CUDA engine (a CUDA build, on a CUDA device), or an error saying why not.
    Cuda,
}

pub enum Weights {
    Cpu(Box<iris_llm_cpu::Model>),
    #[cfg(feature = "cuda")]
    Cuda(Box<iris_llm_cuda::Model>),
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Gemma3(crate::gemma3::ModelWeights),
}

impl Weights {
    pub fn load(
        arch: &str,
        content: gguf_file::Content,
        f: &mut File,
        device: &Device,
        engine: Engine,
        context: usize,
    ) -> candle_core::Result<Self> {
        if let Some(ordinal) = cuda_engine(&content, device, engine)? {
            #[cfg(feature = "cuda")]
            {
                let model = iris_llm_cuda::Model::load(&content, f, context, ordinal).map_err(candle_core::Error::wrap)?;
                return Ok(Self::Cuda(Box::new(model)));
            }
            #[cfg(not(feature = "cuda"))]
            let _ = ordinal;
        }
        let cpu_takes = iris_llm_cpu::Model::check(&content);
        let use_cpu = match (engine, &cpu_takes) {
            (Engine::Cpu, Err(why)) => candle_core::bail!("Iris's CPU engine does not run this file: {why}"),
            (Engine::Candle | Engine::Cuda, _) => false,
            (_, ok) => ok.is_ok() && device.is_cpu(),
        };
        if use_cpu {
            let threads = candle_core::utils::get_num_threads();
            let model = iris_llm_cpu::Model::load(&content, f, context, threads).map_err(candle_core::Error::wrap)?;
            return Ok(Self::Cpu(Box::new(model)));
        }
        match arch {
            "qwen2" => Ok(Self::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, f, device)?)),
            "gemma3" => Ok(Self::Gemma3(crate::gemma3::ModelWeights::from_gguf(content, f, device, context)?)),
            _ => Ok(Self::Llama(quantized_llama::ModelWeights::from_gguf(content, f, device)?)),
        }
    }

    /// Logits of the token after `x` ([1, n] ids at positions `pos..`).
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            // Iris's engines take the ids and give the logits on the host.
            Self::Cpu(m) => host_logits(m.forward(&x.flatten_all()?.to_vec1::<u32>()?, pos)),
            #[cfg(feature = "cuda")]
            Self::Cuda(m) => host_logits(m.forward(&x.flatten_all()?.to_vec1::<u32>()?, pos)),
            Self::Llama(m) => m.forward(x, pos),
            Self::Qwen2(m) => m.forward(x, pos),
            Self::Gemma3(m) => m.forward(x, pos),
        }
    }

    /// Iris's engines' logits of the token after `tokens` (at `pos..`) as they come, without the
    /// round trip through a tensor (a copy of the vocabulary's floats: 1 MB a step on Gemma 3);
    /// `None` for candle's models.
    pub fn logits_on_host(&mut self, tokens: &[u32], pos: usize) -> Option<candle_core::Result<Vec<f32>>> {
        match self {
            Self::Cpu(m) => Some(m.forward(tokens, pos).map_err(candle_core::Error::wrap)),
            #[cfg(feature = "cuda")]
            Self::Cuda(m) => Some(m.forward(tokens, pos).map_err(candle_core::Error::wrap)),
            _ => None,
        }
    }

    /// Whether the KV cache can be cut back to an earlier position (Iris's CPU engine); candle's
    /// can only grow or restart at position 0.
    pub fn rewinds(&self) -> bool {
        match self {
            Self::Cpu(_) => true,
            #[cfg(feature = "cuda")]
            Self::Cuda(_) => true,
            _ => false,
        }
    }

    /// Whether the ids go in as a host tensor (Iris's engines), not one on the model's device.
    pub fn takes_host_input(&self) -> bool {
        self.rewinds()
    }

    /// The engine and, for Iris's own, its kernel and threads (for benchmarks and the panel).
    pub fn engine(&self) -> String {
        match self {
            Self::Cpu(m) => format!("iris-cpu ({}, {} threads)", m.kernel().name(), m.threads()),
            #[cfg(feature = "cuda")]
            Self::Cuda(m) => format!("iris-cuda ({})", m.launches()),
            _ => "candle".to_owned(),
        }
    }
}

/// An engine's logits as a [1, vocab] tensor on the host.
fn host_logits<E: std::error::Error + Send + Sync + 'static>(logits: Result<Vec<f32>, E>) -> candle_core::Result<Tensor> {
    let logits = logits.map_err(candle_core::Error::wrap)?;
    let n = logits.len();
    Tensor::from_vec(logits, (1, n), &Device::Cpu)
}

/// The engine that runs the file on an NVIDIA GPU in this build: "iris-cuda", or candle and
/// why not Iris's (for `iris doctor`).
pub fn gpu_engine(content: &gguf_file::Content) -> String {
    match cuda_check(content) {
        Ok(()) => "iris-cuda".into(),
        Err(why) => format!("candle ({why})"),
    }
}

/// The GPU ordinal Iris's CUDA engine runs the file on, if it does: on a CUDA device, unless
/// candle is asked for; asked for by name, a device or build it cannot use is an error.
fn cuda_engine(content: &gguf_file::Content, device: &Device, engine: Engine) -> candle_core::Result<Option<usize>> {
    let ordinal = match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => Some(gpu_id),
        _ => None,
    };
    match (engine, ordinal) {
        (Engine::Candle | Engine::Cpu, _) => Ok(None),
        (Engine::Cuda, None) => candle_core::bail!("Iris's CUDA engine runs on an NVIDIA GPU; set [models] device = \"cuda\""),
        (_, None) => Ok(None),
        (_, Some(_)) if !cfg!(feature = "cuda") => Ok(None),
        (Engine::Cuda, Some(ordinal)) => match cuda_check(content) {
            Ok(()) => Ok(Some(ordinal)),
            Err(why) => candle_core::bail!("Iris's CUDA engine does not run this file: {why}"),
        },
        (Engine::Auto, Some(ordinal)) => Ok(cuda_check(content).ok().map(|_| ordinal)),
    }
}

#[cfg(feature = "cuda")]
fn cuda_check(content: &gguf_file::Content) -> Result<(), String> {
    iris_llm_cuda::Model::check(content).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_check(_: &gguf_file::Content) -> Result<(), String> {
    Err("this build has no CUDA".into())
}
