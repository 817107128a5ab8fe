//! PaliGemma: a SigLIP vision tower, a linear projector and Gemma, composed as transformers'
//! `PaliGemmaForConditionalGeneration` does (checked against it by `tests/parity.rs`):
//! - the image becomes `(size/patch)²` soft tokens, projected, divided by √hidden (Gemma then
//!   multiplies every embedding by √hidden, so image features enter unscaled);
//! - the prompt is `<image>`×N, BOS, the question, "\n"; the whole prefix attends to itself in
//!   both directions (PaliGemma is a prefix-LM), the answer causally.
//! candle's own `paligemma::Model` L2-normalises the image features instead, which does not
//! match the reference; only its SigLIP and Gemma parts are used here.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};
use candle_transformers::models::{gemma, siglip};
use serde::Deserialize;

use crate::VlmError;

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub vision_config: siglip::VisionConfig,
    pub text_config: gemma::Config,
    pub projection_dim: usize,
    pub image_token_index: u32,
}

impl Config {
    pub fn image_tokens(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side
    }
}

/// transformers 5 saves `model.vision_tower.*`, `model.language_model.*`; the published
/// checkpoints use `vision_tower.vision_model.*`, `language_model.model.*`. Both load.
fn canonical(name: &str) -> Option<String> {
    if name == "lm_head.weight" || name.contains(".head.") {
        // Tied to the embeddings; the SigLIP pooling head is unused by PaliGemma.
        return None;
    }
    let n = name.strip_prefix("model.").unwrap_or(name);
    Some(if let Some(rest) = n.strip_prefix("vision_tower.") {
        if rest.starts_with("vision_model.") {
            n.to_owned()
        } else {
            format!("vision_tower.vision_model.{rest}")
        }
    } else if let Some(rest) = n.strip_prefix("language_model.") {
        if rest.starts_with("model.") {
            n.to_owned()
        } else {
            format!("language_model.model.{rest}")
        }
    } else {
        n.to_owned()
    })
}

pub struct PaliGemma {
    pub config: Config,
    vision: siglip::VisionModel,
    projector: Linear,
    text: gemma::Model,
    device: Device,
    /// Tokens in the KV cache.
    pos: usize,
}

impl PaliGemma {
    /// Loads `config.json` and the `.safetensors` files of `dir` (f32 on `device`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, VlmError> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| VlmError::io(&cfg_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| VlmError::Format(format!("{}: {e}", cfg_path.display())))?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| VlmError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.file_name().is_some_and(|n| n != "reference.safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(VlmError::Format(format!("{}: no .safetensors weights", dir.display())));
        }
        let mut tensors = HashMap::new();
        for f in &files {
            for (name, t) in candle_core::safetensors::load(f, device).map_err(|e| VlmError::Format(format!("{}: {e}", f.display())))? {
                if let Some(n) = canonical(&name) {
                    tensors.insert(n, t.to_dtype(DType::F32)?);
                }
            }
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let vision = siglip::VisionModel::new(&config.vision_config, false, vb.pp("vision_tower.vision_model"))?;
        let projector = linear(config.vision_config.hidden_size, config.projection_dim, vb.pp("multi_modal_projector.linear"))?;
        let text = gemma::Model::new(false, &config.text_config, vb.pp("language_model"))?;
        Ok(Self { config, vision, projector, text, device: device.clone(), pos: 0 })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the prefix (image + prompt ids, without the image tokens) and returns the logits
    /// of its last position.
    pub fn prefix(&mut self, pixel_values: &Tensor, prompt_ids: &[u32]) -> Result<Tensor, VlmError> {
        self.text.clear_kv_cache();
        let hidden = self.config.text_config.hidden_size as f64;
        let image = self.vision.forward(pixel_values)?.apply(&self.projector)?;
        let image = (image / hidden.sqrt())?;
        let ids = Tensor::new(prompt_ids, &self.device)?.unsqueeze(0)?;
        let words = self.text.embed_tokens().forward(&ids)?;
        let embeds = Tensor::cat(&[image, words], 1)?;
        self.pos = embeds.dim(1)?;
        // No mask: the prefix attends both ways.
        let logits = self.text.forward_embeds(&embeds, None, 0)?;
        Ok(logits.squeeze(0)?.squeeze(0)?)
    }

    /// The logits after one more (answer) token.
    pub fn step(&mut self, token: u32) -> Result<Tensor, VlmError> {
        let ids = Tensor::new(&[token], &self.device)?.unsqueeze(0)?;
        let logits = self.text.forward(&ids, self.pos)?;
        self.pos += 1;
        Ok(logits.squeeze(0)?.squeeze(0)?)
    }

    /// Greedy answer tokens, stopping at `eos` or after `max` tokens.
    pub fn greedy(&mut self, pixel_values: &Tensor, prompt_ids: &[u32], max: usize, eos: &[u32]) -> Result<Vec<u32>, VlmError> {
        let mut logits = self.prefix(pixel_values, prompt_ids)?;
        let mut out = Vec::new();
        for _ in 0..max {
            let next = logits.argmax(D::Minus1)?.to_scalar::<u32>()?;
            if eos.contains(&next) {
                break;
            }
            out.push(next);
            logits = self.step(next)?;
        }
        Ok(out)
    }
}
