//! PaliGemma: a SigLIP vision tower, a linear projector and Gemma, composed as transformers'
//! `PaliGemmaForConditionalGeneration` does (checked against it by `tests/parity.rs`):
//! - the image becomes `(size/patch)²` soft tokens, projected, divided by √hidden (Gemma then
//!   multiplies every embedding by √hidden, so image features enter unscaled);
//! - the prompt is `<image>`×N, BOS, the question, "\n"; the whole prefix attends to itself in
//!   both directions (PaliGemma is a prefix-LM), the answer causally.
//!
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
    #[serde(deserialize_with = "text_config")]
    pub text_config: gemma::Config,
    pub projection_dim: usize,
    pub image_token_index: u32,
}

/// The published checkpoints' `config.json` leave most of Gemma's settings at transformers'
/// defaults (head size, RoPE base, norm epsilon, activation); fill them in as transformers does.
#[derive(Deserialize)]
struct TextConfigFile {
    hidden_size: usize,
    intermediate_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    num_key_value_heads: usize,
    vocab_size: usize,
    #[serde(default = "default_head_dim")]
    head_dim: usize,
    #[serde(default = "default_rope_theta")]
    rope_theta: f64,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    hidden_act: Option<candle_nn::Activation>,
    #[serde(default)]
    hidden_activation: Option<candle_nn::Activation>,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
}

fn default_head_dim() -> usize {
    256
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    8192
}

fn text_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<gemma::Config, D::Error> {
    let t = TextConfigFile::deserialize(d)?;
    // Gemma's activation is tanh-approximated GELU unless the file names another.
    let act = t.hidden_activation.or(t.hidden_act).unwrap_or(candle_nn::Activation::GeluPytorchTanh);
    Ok(gemma::Config {
        attention_bias: t.attention_bias,
        head_dim: t.head_dim,
        hidden_act: None,
        hidden_activation: Some(act),
        hidden_size: t.hidden_size,
        intermediate_size: t.intermediate_size,
        num_attention_heads: t.num_attention_heads,
        num_hidden_layers: t.num_hidden_layers,
        num_key_value_heads: t.num_key_value_heads,
        rms_norm_eps: t.rms_norm_eps,
        rope_theta: t.rope_theta,
        vocab_size: t.vocab_size,
        max_position_embeddings: t.max_position_embeddings,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.json` of google/paligemma-3b-mix-224 as transformers 4.x wrote it: Gemma's and
    /// SigLIP's other settings are left at their defaults.
    #[test]
    fn the_published_config_reads_with_transformers_defaults() {
        let text = r#"{"architectures": ["PaliGemmaForConditionalGeneration"], "bos_token_id": 2, "eos_token_id": 1,
          "hidden_size": 2048, "ignore_index": -100, "image_token_index": 257152, "model_type": "paligemma",
          "pad_token_id": 0, "projection_dim": 2048,
          "text_config": {"hidden_size": 2048, "intermediate_size": 16384, "model_type": "gemma", "num_attention_heads": 8,
            "num_hidden_layers": 18, "num_image_tokens": 256, "num_key_value_heads": 1, "torch_dtype": "float32", "vocab_size": 257216},
          "torch_dtype": "float32", "transformers_version": "4.41.0.dev0",
          "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "model_type": "siglip_vision_model",
            "num_attention_heads": 16, "num_hidden_layers": 27, "num_image_tokens": 256, "patch_size": 14,
            "projection_dim": 2048, "projector_hidden_act": "gelu_fast", "vision_use_head": false}}"#;
        let c: Config = serde_json::from_str(text).unwrap();
        assert_eq!((c.text_config.head_dim, c.text_config.rope_theta, c.text_config.num_key_value_heads), (256, 10_000.0, 1));
        assert_eq!((c.vision_config.image_size, c.vision_config.patch_size, c.image_tokens()), (224, 14, 256));
        assert_eq!(c.image_token_index, 257_152);
    }
}
