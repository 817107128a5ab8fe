//! Reads the legacy whisper.cpp ggml file (the one `iris models` writes and pins), so both
//! Whisper backends load the very same bytes: hyper-parameters, the mel filter bank, the byte
//! vocabulary and the f16/f32 tensors, renamed from OpenAI's names to the Hugging Face names
//! candle's Whisper expects.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::CandleWhisperError as Error;

const MAGIC: u32 = 0x6767_6d6c;

pub struct GgmlWhisper {
    /// n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    /// n_text_state, n_text_head, n_text_layer, n_mels, ftype.
    pub hparams: [usize; 11],
    pub filters: Vec<f32>,
    pub vocab: Vec<Vec<u8>>,
    pub tensors: HashMap<String, Tensor>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(Error::Format("the file ends early"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn i32(&mut self) -> Result<i32, Error> {
        let b = self.bytes(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self) -> Result<usize, Error> {
        usize::try_from(self.i32()?).map_err(|_| Error::Format("a negative count"))
    }
}

/// OpenAI's tensor names (as in the ggml file) to the Hugging Face names candle loads.
fn hf_name(name: &str) -> String {
    let mut n = name.replacen("encoder.", "model.encoder.", 1).replacen("decoder.", "model.decoder.", 1);
    for (from, to) in [
        (".blocks.", ".layers."),
        (".cross_attn_ln.", ".encoder_attn_layer_norm."),
        (".cross_attn.", ".encoder_attn."),
        (".attn_ln.", ".self_attn_layer_norm."),
        (".attn.", ".self_attn."),
        (".mlp_ln.", ".final_layer_norm."),
        (".mlp.0.", ".fc1."),
        (".mlp.2.", ".fc2."),
        (".query.", ".q_proj."),
        (".key.", ".k_proj."),
        (".value.", ".v_proj."),
        (".out.", ".out_proj."),
        ("model.encoder.ln_post.", "model.encoder.layer_norm."),
        ("model.decoder.ln.", "model.decoder.layer_norm."),
        ("token_embedding.", "embed_tokens."),
    ] {
        n = n.replace(from, to);
    }
    n.replace("model.decoder.positional_embedding", "model.decoder.embed_positions.weight")
        .replace("model.encoder.positional_embedding", "model.encoder.embed_positions.weight")
}

pub fn parse(data: &[u8], device: &Device) -> Result<GgmlWhisper, Error> {
    let mut r = Reader { data, pos: 0 };
    if r.i32()? as u32 != MAGIC {
        return Err(Error::Format("not a whisper.cpp ggml file (bad magic)"));
    }
    let mut hparams = [0usize; 11];
    for h in &mut hparams {
        *h = r.count()?;
    }
    let (n_mel, n_fft) = (r.count()?, r.count()?);
    if n_mel != hparams[9] || n_fft != 201 {
        return Err(Error::Format("the mel filter bank does not match the model"));
    }
    let filters = r.bytes(n_mel * n_fft * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let n_tokens = r.count()?;
    let mut vocab = Vec::with_capacity(n_tokens);
    for _ in 0..n_tokens {
        let len = r.count()?;
        vocab.push(r.bytes(len)?.to_vec());
    }
    let mut tensors = HashMap::new();
    while r.pos < data.len() {
        let (n_dims, name_len, ftype) = (r.count()?, r.count()?, r.i32()?);
        if n_dims == 0 || n_dims > 4 {
            return Err(Error::Format("a tensor with an impossible rank"));
        }
        let mut shape = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            shape.push(r.count()?);
        }
        shape.reverse();
        let name = String::from_utf8_lossy(r.bytes(name_len)?).into_owned();
        let n: usize = shape.iter().product();
        let tensor = match ftype {
            0 => Tensor::from_raw_buffer(r.bytes(n * 4)?, DType::F32, &shape, device)?,
            1 => Tensor::from_raw_buffer(r.bytes(n * 2)?, DType::F16, &shape, device)?.to_dtype(DType::F32)?,
            _ => return Err(Error::Format("a quantised tensor (only f16/f32 ggml files are supported)")),
        };
        // Conv biases are stored as [n, 1].
        let tensor = if name.ends_with("conv1.bias") || name.ends_with("conv2.bias") { tensor.flatten_all()? } else { tensor };
        tensors.insert(hf_name(&name), tensor);
    }
    Ok(GgmlWhisper { hparams, filters, vocab, tensors })
}

#[cfg(test)]
mod tests {
    use super::hf_name;

    #[test]
    fn names_follow_candle() {
        assert_eq!(hf_name("encoder.blocks.3.attn.query.weight"), "model.encoder.layers.3.self_attn.q_proj.weight");
        assert_eq!(hf_name("decoder.blocks.0.cross_attn.out.bias"), "model.decoder.layers.0.encoder_attn.out_proj.bias");
        assert_eq!(hf_name("decoder.blocks.0.cross_attn_ln.weight"), "model.decoder.layers.0.encoder_attn_layer_norm.weight");
        assert_eq!(hf_name("decoder.blocks.1.mlp.2.weight"), "model.decoder.layers.1.fc2.weight");
        assert_eq!(hf_name("encoder.ln_post.bias"), "model.encoder.layer_norm.bias");
        assert_eq!(hf_name("decoder.token_embedding.weight"), "model.decoder.embed_tokens.weight");
        assert_eq!(hf_name("decoder.positional_embedding"), "model.decoder.embed_positions.weight");
        assert_eq!(hf_name("decoder.ln.weight"), "model.decoder.layer_norm.weight");
    }
}
