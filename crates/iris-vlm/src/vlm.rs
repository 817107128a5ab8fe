//! PaliGemma behind the `Vlm` trait: the question picks the task prefix the mix checkpoints
//! were trained on ("ocr", "caption en", "answer en …"), and the answer is decoded greedily.

use std::path::Path;

use candle_core::Device;
use iris_backend::{BackendError, Vlm};
use iris_frames::ImageFrame;

use crate::{pixel_values, Kernel, PaliGemma, VlmError};

const MAX_ANSWER_TOKENS: usize = 64;

pub struct PaliGemmaVlm {
    model: PaliGemma,
    tokenizer: tokenizers::Tokenizer,
    bos: u32,
    eos: Vec<u32>,
}

impl PaliGemmaVlm {
    /// `dir` holds `config.json`, the weights and `tokenizer.json`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, VlmError> {
        let model = PaliGemma::load(dir, device)?;
        let path = dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&path).map_err(|e| VlmError::io(&path, e))?;
        let id = |t: &str| tokenizer.token_to_id(t);
        let bos = id("<bos>").ok_or_else(|| VlmError::Tokenizer("no <bos> token".into()))?;
        let eos = ["<eos>", "\n"].iter().filter_map(|t| id(t)).collect();
        Ok(Self { model, tokenizer, bos, eos })
    }

    /// The task prefix for a user's question.
    pub fn task(question: &str) -> String {
        let q = question.to_lowercase();
        if ["read", "say", "written", "text"].iter().any(|w| q.contains(w)) {
            "ocr".to_owned()
        } else if q.trim().is_empty() || ["describe", "in front", "what is this", "what's this", "around"].iter().any(|w| q.contains(w)) {
            "caption en".to_owned()
        } else {
            format!("answer en {}", question.trim())
        }
    }
}

impl Vlm for PaliGemmaVlm {
    fn describe(&mut self, image: &ImageFrame, question: &str) -> Result<String, BackendError> {
        let size = self.model.config.vision_config.image_size;
        let pixels = pixel_values(image, size, [0.5; 3], [0.5; 3], Kernel::Torch, self.model.device())?;
        let task = format!("{}\n", Self::task(question));
        let enc = self.tokenizer.encode(task, false).map_err(|e| VlmError::Tokenizer(e.to_string()))?;
        let mut ids = vec![self.bos];
        ids.extend(enc.get_ids());
        let out = self.model.greedy(&pixels, &ids, MAX_ANSWER_TOKENS, &self.eos)?;
        let text = self.tokenizer.decode(&out, true).map_err(|e| VlmError::Tokenizer(e.to_string()))?;
        Ok(text.trim().to_owned())
    }
}
