//! "What is this?": an ImageNet-1k classifier (torchvision's MobileNetV2) on candle, with the
//! preprocessing torchvision's weights expect: the shorter side scaled to 256, a 224×224 centre
//! crop, ImageNet mean and deviation on RGB. Gives the top guesses with their probabilities;
//! deciding what is sure enough to say is the caller's.

mod mobilenet;
mod pth;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{ImageBuffer, Rgb};
use iris_frames::ImageFrame;

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("cannot read classifier file {path}: {message}. Check it with `iris models verify`")]
    Load { path: PathBuf, message: String },
    #[error("{0}")]
    Format(String),
    #[error("classifier: {0}")]
    Candle(#[from] candle_core::Error),
}

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Clone, Debug, PartialEq)]
pub struct Guess {
    pub label: String,
    pub probability: f32,
}

pub struct Classifier {
    model: mobilenet::MobileNetV2,
    labels: Vec<String>,
    device: Device,
}

impl Classifier {
    /// `weights`: torchvision's `mobilenet_v2-b0353104.pth`; `labels`: the 1000 class names.
    pub fn load(weights: &Path, labels: &Path) -> Result<Self, ClassifyError> {
        let fail = |path: &Path, message: String| ClassifyError::Load { path: path.into(), message };
        let device = Device::Cpu;
        let bytes = std::fs::read(weights).map_err(|e| fail(weights, e.to_string()))?;
        let tensors = pth::load(&bytes, &device).map_err(|e| fail(weights, e.to_string()))?;
        let model = mobilenet::MobileNetV2::load(tensors).map_err(|e| fail(weights, e.to_string()))?;
        let text = std::fs::read_to_string(labels).map_err(|e| fail(labels, e.to_string()))?;
        let labels: Vec<String> = text.lines().map(str::to_owned).collect();
        if labels.len() != 1000 {
            return Err(fail(Path::new("labels"), format!("{} class names, the model has 1000", labels.len())));
        }
        Ok(Self { model, labels, device })
    }

    /// The `k` most likely classes, most likely first.
    pub fn classify(&self, image: &ImageFrame, k: usize) -> Result<Vec<Guess>, ClassifyError> {
        let x = self.preprocess(image)?;
        let probs: Vec<f32> = self.model.probabilities(&x)?.flatten_all()?.to_vec1()?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        Ok(order.into_iter().take(k).map(|i| Guess { label: self.labels[i].clone(), probability: probs[i] }).collect())
    }

    fn preprocess(&self, image: &ImageFrame) -> Result<Tensor, ClassifyError> {
        let src: ImageBuffer<Rgb<u8>, &[u8]> = ImageBuffer::from_raw(image.width, image.height, &image.rgb[..])
            .ok_or_else(|| ClassifyError::Format("the image buffer is short".into()))?;
        let (w, h) = (image.width.max(1) as f32, image.height.max(1) as f32);
        let scale = 256.0 / w.min(h);
        let (rw, rh) = (((w * scale).round() as u32).max(224), ((h * scale).round() as u32).max(224));
        let resized = image::imageops::resize(&src, rw, rh, FilterType::Triangle);
        let (x0, y0) = ((rw - 224) / 2, (rh - 224) / 2);
        let plane = 224 * 224;
        let mut data = vec![0f32; 3 * plane];
        for y in 0..224 {
            for x in 0..224 {
                let px = resized.get_pixel(x0 + x, y0 + y);
                for c in 0..3 {
                    data[c * plane + (y * 224 + x) as usize] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
                }
            }
        }
        Ok(Tensor::from_vec(data, (1, 3, 224, 224), &self.device)?)
    }
}
