//! Vision-language models on candle. PaliGemma (`paligemma`) is the one implemented: candle has
//! its SigLIP and Gemma parts and transformers has the reference, so it can be proven equal
//! (`tests/parity.rs`); SmolVLM (Idefics3), better per byte, has no candle model to build on.
//! Preprocessing (`resize` + `pixel_values`) reproduces the reference processor's numbers.

pub mod paligemma;
pub mod resize;
mod vlm;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use iris_frames::ImageFrame;

pub use paligemma::PaliGemma;
pub use resize::Kernel;
pub use vlm::PaliGemmaVlm;

#[derive(Debug, thiserror::Error)]
pub enum VlmError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("the vision-language model is not usable: {0}")]
    Format(String),
    #[error("vision-language model: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl VlmError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        VlmError::Io { path: path.to_owned(), message: e.to_string() }
    }
}

impl From<VlmError> for iris_backend::BackendError {
    fn from(e: VlmError) -> Self {
        iris_backend::BackendError::Inference(e.to_string())
    }
}

/// The model's input as the reference processor makes it: resized to `size`x`size` with
/// Pillow's bicubic filter, scaled to 0..1, normalised per channel; shape (1, 3, size, size).
/// `kernel` picks whose resize to reproduce: [`Kernel::Torch`] is transformers 5's.
pub fn pixel_values(
    image: &ImageFrame,
    size: usize,
    mean: [f32; 3],
    std: [f32; 3],
    kernel: Kernel,
    device: &Device,
) -> Result<Tensor, VlmError> {
    let rgb = resize::resize_bicubic(&image.rgb, image.width as usize, image.height as usize, size, size, kernel);
    let plane = size * size;
    let mut chw = vec![0f32; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = (f32::from(px[c]) * (1.0 / 255.0) - mean[c]) / std[c];
        }
    }
    Ok(Tensor::from_vec(chw, (1, 3, size, size), device)?)
}
