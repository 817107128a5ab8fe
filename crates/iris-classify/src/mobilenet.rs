//! torchvision's MobileNetV2 (ImageNet-1k), with each batch norm folded into the convolution
//! before it at load time. Weight names are torchvision's: `features.{i}…`, `classifier.1`.

use std::collections::HashMap;

use candle_core::{Module, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear};

use crate::ClassifyError as Error;

/// (expansion, output channels, repeats, first stride): torchvision's table.
const SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
const EPS: f64 = 1e-5;

struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn get(&self, name: &str) -> Result<&Tensor, Error> {
        self.0.get(name).ok_or_else(|| Error::Format(format!("weight {name} is missing: not a MobileNetV2 state dict")))
    }

    /// `conv` (no bias) followed by batch norm `bn`, as one convolution.
    fn conv_bn(&self, conv: &str, bn: &str, stride: usize, groups: usize) -> Result<Conv2d, Error> {
        let w = self.get(&format!("{conv}.weight"))?;
        let gamma = self.get(&format!("{bn}.weight"))?;
        let beta = self.get(&format!("{bn}.bias"))?;
        let mean = self.get(&format!("{bn}.running_mean"))?;
        let var = self.get(&format!("{bn}.running_var"))?;
        let scale = gamma.div(&(var + EPS)?.sqrt()?)?;
        let w = w.broadcast_mul(&scale.reshape((scale.dim(0)?, 1, 1, 1))?)?;
        let b = beta.sub(&mean.mul(&scale)?)?;
        let k = w.dim(2)?;
        let cfg = Conv2dConfig { padding: (k - 1) / 2, stride, dilation: 1, groups, cudnn_fwd_algo: None };
        Ok(Conv2d::new(w, Some(b), cfg))
    }
}

struct Block {
    expand: Option<Conv2d>,
    depthwise: Conv2d,
    project: Conv2d,
    residual: bool,
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        if let Some(e) = &self.expand {
            y = relu6(&e.forward(&y)?)?;
        }
        y = relu6(&self.depthwise.forward(&y)?)?;
        y = self.project.forward(&y)?;
        if self.residual {
            y = (y + x)?;
        }
        Ok(y)
    }
}

fn relu6(x: &Tensor) -> candle_core::Result<Tensor> {
    x.clamp(0f32, 6f32)
}

pub struct MobileNetV2 {
    stem: Conv2d,
    blocks: Vec<Block>,
    head: Conv2d,
    classifier: Linear,
}

impl MobileNetV2 {
    pub fn load(tensors: HashMap<String, Tensor>) -> Result<Self, Error> {
        let w = Weights(tensors);
        let stem = w.conv_bn("features.0.0", "features.0.1", 2, 1)?;
        let mut blocks = Vec::new();
        let (mut input, mut index) = (32, 1);
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = input * t;
                let p = format!("features.{index}.conv");
                let block = if t == 1 {
                    Block {
                        expand: None,
                        depthwise: w.conv_bn(&format!("{p}.0.0"), &format!("{p}.0.1"), stride, hidden)?,
                        project: w.conv_bn(&format!("{p}.1"), &format!("{p}.2"), 1, 1)?,
                        residual: false,
                    }
                } else {
                    Block {
                        expand: Some(w.conv_bn(&format!("{p}.0.0"), &format!("{p}.0.1"), 1, 1)?),
                        depthwise: w.conv_bn(&format!("{p}.1.0"), &format!("{p}.1.1"), stride, hidden)?,
                        project: w.conv_bn(&format!("{p}.2"), &format!("{p}.3"), 1, 1)?,
                        residual: stride == 1 && input == c,
                    }
                };
                blocks.push(block);
                input = c;
                index += 1;
            }
        }
        let head = w.conv_bn(&format!("features.{index}.0"), &format!("features.{index}.1"), 1, 1)?;
        let classifier = Linear::new(w.get("classifier.1.weight")?.clone(), Some(w.get("classifier.1.bias")?.clone()));
        Ok(Self { stem, blocks, head, classifier })
    }

    /// Class probabilities for a normalised [1, 3, 224, 224] image.
    pub fn probabilities(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = relu6(&self.stem.forward(x)?)?;
        for b in &self.blocks {
            y = b.forward(&y)?;
        }
        y = relu6(&self.head.forward(&y)?)?;
        let pooled = y.mean(D::Minus1)?.mean(D::Minus1)?;
        candle_nn::ops::softmax(&self.classifier.forward(&pooled)?, D::Minus1)
    }
}
