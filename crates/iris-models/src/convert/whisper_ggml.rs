//! CTranslate2 Whisper (faster-whisper's format) → the legacy ggml file whisper.cpp loads.
//!
//! Lossless for float16 models: CT2 fuses self-attention Q,K,V into one matrix and the
//! cross-attention K,V into another; they are split back, the zero key biases dropped, and the
//! tensors written under the names and in the order of OpenAI's checkpoints, with the mel filter
//! bank and the byte-level vocabulary. tiny.en converts to exactly the official 77,704,715 bytes.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::ct2::{self, f16_to_f32, f32_to_f16, Ct2Model, DType, Variable};
use super::{mel, ConvertError};

const GGML_MAGIC: u32 = 0x6767_6d6c;
const BPE_RANKS: usize = 50_257;

/// Converts `model.bin` (given as its bytes) and `tokenizer.json` to a ggml file at `out`.
pub fn convert(model_bin: &[u8], tokenizer_json: &Path, out: &Path) -> Result<(), ConvertError> {
    let model = ct2::parse(model_bin)?;
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::Invalid(format!("this CTranslate2 model is a {}, not Whisper", model.spec)));
    }
    let vocab = byte_vocab(tokenizer_json)?;
    let w = Weights(&model.variables);
    let emb = w.get("decoder/embeddings/weight")?;
    let (n_vocab, n_text_state) = (emb.shape[0], emb.shape[1]);
    let enc_pos = w.get("encoder/position_encodings/encodings")?;
    let dec_pos = w.get("decoder/position_encodings/encodings")?;
    let n_mels = w.get("encoder/conv1/weight")?.shape[1];
    let n_audio_layer = count_layers(&model, "encoder");
    let n_text_layer = count_layers(&model, "decoder");
    let heads = |name: &str| w.get(name).ok().and_then(Variable::as_int).ok_or_else(|| ConvertError::Invalid(format!("{name} missing")));
    if vocab.len() > n_vocab {
        return Err(ConvertError::Invalid(format!(
            "tokenizer.json has {} tokens but the model only {n_vocab}: they do not belong together",
            vocab.len()
        )));
    }
    let d = n_text_state;
    check_shapes(&w, d, n_mels, n_audio_layer, n_text_layer)?;
    let hparams = [
        n_vocab,
        enc_pos.shape[0],
        enc_pos.shape[1],
        heads("encoder/num_heads")? as usize,
        n_audio_layer,
        dec_pos.shape[0],
        n_text_state,
        heads("decoder/num_heads")? as usize,
        n_text_layer,
        n_mels,
        1, // f16
    ];

    let file = std::fs::File::create(out).map_err(|e| ConvertError::Io(out.into(), e))?;
    let mut f = std::io::BufWriter::new(file);
    let io = |e| ConvertError::Io(out.into(), e);
    f.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for h in hparams {
        f.write_all(&(h as i32).to_le_bytes()).map_err(io)?;
    }
    let filters = mel::mel_filters(16_000, 400, n_mels);
    f.write_all(&(n_mels as i32).to_le_bytes()).map_err(io)?;
    f.write_all(&(filters[0].len() as i32).to_le_bytes()).map_err(io)?;
    for v in filters.iter().flatten() {
        f.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    f.write_all(&(vocab.len() as i32).to_le_bytes()).map_err(io)?;
    for token in &vocab {
        f.write_all(&(token.len() as i32).to_le_bytes()).map_err(io)?;
        f.write_all(token).map_err(io)?;
    }

    let mut t = TensorWriter { f: &mut f, out };
    t.write("encoder.positional_embedding", &w.rows(enc_pos, 0, enc_pos.shape[0])?, Kind::F32)?;
    for conv in ["conv1", "conv2"] {
        t.write(&format!("encoder.{conv}.weight"), &w.tensor(&format!("encoder/{conv}/weight"))?, Kind::F16)?;
        let bias = w.tensor(&format!("encoder/{conv}/bias"))?;
        t.write(&format!("encoder.{conv}.bias"), &Tensor { shape: vec![bias.shape[0], 1], ..bias }, Kind::F32)?;
    }
    for i in 0..n_audio_layer {
        let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        t.fused_attention(&w, &format!("{src}/self_attention"), &format!("{dst}.attn"), d, true)?;
        t.layer_norm(&w, &format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        t.mlp(&w, &src, &dst)?;
    }
    t.layer_norm(&w, "encoder/layer_norm", "encoder.ln_post")?;
    t.write("decoder.positional_embedding", &w.rows(dec_pos, 0, dec_pos.shape[0])?, Kind::F32)?;
    t.write("decoder.token_embedding.weight", &w.tensor("decoder/embeddings/weight")?, Kind::F16)?;
    for i in 0..n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        t.fused_attention(&w, &format!("{src}/self_attention"), &format!("{dst}.attn"), d, true)?;
        t.layer_norm(&w, &format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        t.fused_attention(&w, &format!("{src}/attention"), &format!("{dst}.cross_attn"), d, false)?;
        t.layer_norm(&w, &format!("{src}/attention/layer_norm"), &format!("{dst}.cross_attn_ln"))?;
        t.mlp(&w, &src, &dst)?;
    }
    t.layer_norm(&w, "decoder/layer_norm", "decoder.ln")?;
    f.flush().map_err(io)?;
    f.into_inner().map_err(|e| ConvertError::Io(out.into(), e.into_error()))?.sync_all().map_err(io)?;
    Ok(())
}

/// Every matrix has the shape Whisper's hyper-parameters imply, so a damaged or foreign file is
/// refused by name here instead of converting into a model that fails later.
fn check_shapes(w: &Weights, d: usize, n_mels: usize, enc_layers: usize, dec_layers: usize) -> Result<(), ConvertError> {
    let expect = |name: &str, want: &[Option<usize>]| -> Result<(), ConvertError> {
        let got = &w.get(name)?.shape;
        let fits = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| w.is_none_or(|w| *g == w));
        if fits {
            return Ok(());
        }
        let want: Vec<String> = want.iter().map(|x| x.map_or("*".to_owned(), |v| v.to_string())).collect();
        Err(ConvertError::Invalid(format!(
            "{name} has shape {got:?} where Whisper needs [{}]: the model file is damaged or not a Whisper model",
            want.join(", ")
        )))
    };
    expect("encoder/conv1/weight", &[Some(d), Some(n_mels), Some(3)])?;
    expect("encoder/conv2/weight", &[Some(d), Some(d), Some(3)])?;
    expect("encoder/position_encodings/encodings", &[None, Some(d)])?;
    expect("decoder/position_encodings/encodings", &[None, Some(d)])?;
    if enc_layers == 0 || dec_layers == 0 {
        return Err(ConvertError::Invalid("the model has no encoder or decoder layers".into()));
    }
    for (side, layers) in [("encoder", enc_layers), ("decoder", dec_layers)] {
        for i in 0..layers {
            let l = format!("{side}/layer_{i}");
            expect(&format!("{l}/self_attention/linear_0/weight"), &[Some(3 * d), Some(d)])?;
            expect(&format!("{l}/self_attention/linear_1/weight"), &[Some(d), Some(d)])?;
            let mlp = w.get(&format!("{l}/ffn/linear_0/weight"))?.shape.first().copied();
            expect(&format!("{l}/ffn/linear_0/weight"), &[mlp, Some(d)])?;
            expect(&format!("{l}/ffn/linear_1/weight"), &[Some(d), mlp])?;
            if side == "decoder" {
                expect(&format!("{l}/attention/linear_0/weight"), &[Some(d), Some(d)])?;
                expect(&format!("{l}/attention/linear_1/weight"), &[Some(2 * d), Some(d)])?;
                expect(&format!("{l}/attention/linear_2/weight"), &[Some(d), Some(d)])?;
            }
        }
    }
    Ok(())
}

fn count_layers(model: &Ct2Model, side: &str) -> usize {
    (0..).take_while(|i| model.variables.keys().any(|k| k.starts_with(&format!("{side}/layer_{i}/")))).count()
}

/// The vocabulary as raw bytes, undoing GPT-2's byte-to-unicode mapping.
fn byte_vocab(path: &Path) -> Result<Vec<Vec<u8>>, ConvertError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConvertError::Io(path.into(), e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| ConvertError::Invalid(format!("{}: {e}", path.display())))?;
    let vocab = json["model"]["vocab"].as_object().ok_or_else(|| ConvertError::Invalid(format!("{}: no model.vocab", path.display())))?;
    let decode = unicode_to_byte();
    let mut tokens: Vec<(u64, Vec<u8>)> = Vec::with_capacity(vocab.len());
    for (token, id) in vocab {
        let id = id.as_u64().ok_or_else(|| ConvertError::Invalid(format!("token {token:?} has no id")))?;
        let bytes = token
            .chars()
            .map(|c| decode.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| ConvertError::Invalid(format!("token {token:?} is not byte-level BPE")))?;
        tokens.push((id, bytes));
    }
    tokens.sort();
    if tokens.iter().enumerate().any(|(i, (id, _))| *id != i as u64) {
        return Err(ConvertError::Invalid(format!("{}: token ids are not contiguous", path.display())));
    }
    // The ggml file holds OpenAI's BPE ranks (gpt2.tiktoken / multilingual.tiktoken: 50,257 of
    // them); whisper.cpp numbers the special tokens itself from the model's vocabulary size.
    // The multilingual tokenizer.json lists <|endoftext|> one id later than gpt2's does.
    tokens.truncate(BPE_RANKS);
    Ok(tokens.into_iter().map(|(_, b)| b).collect())
}

fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut map = HashMap::new();
    let mut n = 0;
    for b in 0..=255u32 {
        let c = if printable(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        map.insert(char::from_u32(c).unwrap_or('\0'), b as u8);
    }
    map
}

struct Weights<'a>(&'a HashMap<String, Variable>);

/// Values as f32, with the shape to write.
struct Tensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<&Variable, ConvertError> {
        self.0.get(name).ok_or_else(|| ConvertError::Invalid(format!("the model has no `{name}`")))
    }

    fn tensor(&self, name: &str) -> Result<Tensor, ConvertError> {
        let v = self.get(name)?;
        self.rows(v, 0, v.shape.first().copied().unwrap_or(1))
    }

    /// Rows `from..to` of a variable (the first axis), as f32.
    fn rows(&self, v: &Variable, from: usize, to: usize) -> Result<Tensor, ConvertError> {
        let row: usize = v.shape.iter().skip(1).product();
        let values: Vec<f32> = match v.dtype {
            DType::F16 => {
                v.data[from * row * 2..to * row * 2].chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
            }
            DType::F32 => {
                v.data[from * row * 4..to * row * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            other => {
                return Err(ConvertError::Invalid(format!(
                    "{other:?} weights (a quantized CTranslate2 model); use a float16 or float32 one"
                )))
            }
        };
        let mut shape = v.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = to - from;
        }
        Ok(Tensor { shape, values })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    F32,
    F16,
}

struct TensorWriter<'a, W: Write> {
    f: &'a mut W,
    out: &'a Path,
}

impl<W: Write> TensorWriter<'_, W> {
    fn write(&mut self, name: &str, t: &Tensor, kind: Kind) -> Result<(), ConvertError> {
        let io = |e| ConvertError::Io(self.out.into(), e);
        let ftype: i32 = match kind {
            Kind::F32 => 0,
            Kind::F16 => 1,
        };
        self.f.write_all(&(t.shape.len() as i32).to_le_bytes()).map_err(io)?;
        self.f.write_all(&(name.len() as i32).to_le_bytes()).map_err(io)?;
        self.f.write_all(&ftype.to_le_bytes()).map_err(io)?;
        for d in t.shape.iter().rev() {
            self.f.write_all(&(*d as i32).to_le_bytes()).map_err(io)?;
        }
        self.f.write_all(name.as_bytes()).map_err(io)?;
        let mut buf = Vec::with_capacity(t.values.len() * 4);
        for &v in &t.values {
            match kind {
                Kind::F32 => buf.extend_from_slice(&v.to_le_bytes()),
                Kind::F16 => buf.extend_from_slice(&f32_to_f16(v).to_le_bytes()),
            }
        }
        self.f.write_all(&buf).map_err(io)
    }

    fn linear(&mut self, w: &Weights, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.write(&format!("{dst}.weight"), &w.tensor(&format!("{src}/weight"))?, Kind::F16)?;
        self.write(&format!("{dst}.bias"), &w.tensor(&format!("{src}/bias"))?, Kind::F32)
    }

    fn layer_norm(&mut self, w: &Weights, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.write(&format!("{dst}.weight"), &w.tensor(&format!("{src}/gamma"))?, Kind::F32)?;
        self.write(&format!("{dst}.bias"), &w.tensor(&format!("{src}/beta"))?, Kind::F32)
    }

    fn mlp(&mut self, w: &Weights, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.linear(w, &format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        self.linear(w, &format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))?;
        self.layer_norm(w, &format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))
    }

    /// Self-attention: `linear_0` is Q|K|V, `linear_1` the output. Cross-attention:
    /// `linear_0` is Q, `linear_1` is K|V, `linear_2` the output. Keys have no bias in Whisper.
    fn fused_attention(&mut self, w: &Weights, src: &str, dst: &str, d: usize, is_self: bool) -> Result<(), ConvertError> {
        let slice = |name: &str, from: usize| -> Result<Tensor, ConvertError> { w.rows(w.get(name)?, from * d, (from + 1) * d) };
        let (qkv_w, qkv_b) = (format!("{src}/linear_0/weight"), format!("{src}/linear_0/bias"));
        let (kv_w, kv_b) = (format!("{src}/linear_1/weight"), format!("{src}/linear_1/bias"));
        let (q_w, q_b, k_w, v_w, v_b) = if is_self {
            (slice(&qkv_w, 0)?, slice(&qkv_b, 0)?, slice(&qkv_w, 1)?, slice(&qkv_w, 2)?, slice(&qkv_b, 2)?)
        } else {
            (slice(&qkv_w, 0)?, slice(&qkv_b, 0)?, slice(&kv_w, 0)?, slice(&kv_w, 1)?, slice(&kv_b, 1)?)
        };
        self.write(&format!("{dst}.query.weight"), &q_w, Kind::F16)?;
        self.write(&format!("{dst}.query.bias"), &q_b, Kind::F32)?;
        self.write(&format!("{dst}.key.weight"), &k_w, Kind::F16)?;
        self.write(&format!("{dst}.value.weight"), &v_w, Kind::F16)?;
        self.write(&format!("{dst}.value.bias"), &v_b, Kind::F32)?;
        let out = if is_self { "linear_1" } else { "linear_2" };
        self.linear(w, &format!("{src}/{out}"), &format!("{dst}.out"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CTranslate2 file for a tiny Whisper: every weight's value encodes its row, so the
    /// split of the fused matrices can be checked in the output.
    pub(crate) fn tiny_ct2(d: usize, vocab: usize) -> Vec<u8> {
        tiny_ct2_broken(d, vocab, "")
    }

    /// As [`tiny_ct2`], with one more row in the tensor named `broken`.
    pub(crate) fn tiny_ct2_broken(d: usize, vocab: usize, broken: &str) -> Vec<u8> {
        let mut vars: Vec<(String, Vec<usize>, u8, Vec<u8>)> = Vec::new();
        let mut f16 = |name: &str, shape: &[usize]| {
            let mut shape = shape.to_vec();
            if name == broken {
                shape[0] += 1;
            }
            let shape = shape.as_slice();
            let row: usize = shape.iter().skip(1).product();
            let n: usize = shape.iter().product();
            let data = (0..n).flat_map(|i| f32_to_f16((i / row.max(1)) as f32).to_le_bytes()).collect();
            vars.push((name.to_owned(), shape.to_vec(), 4, data));
        };
        f16("encoder/conv1/weight", &[d, 2, 3]);
        f16("encoder/conv1/bias", &[d]);
        f16("encoder/conv2/weight", &[d, d, 3]);
        f16("encoder/conv2/bias", &[d]);
        f16("encoder/position_encodings/encodings", &[3, d]);
        f16("decoder/position_encodings/encodings", &[2, d]);
        f16("decoder/embeddings/weight", &[vocab, d]);
        for side in ["encoder", "decoder"] {
            for ln in ["layer_norm", "layer_0/self_attention/layer_norm", "layer_0/ffn/layer_norm"] {
                f16(&format!("{side}/{ln}/gamma"), &[d]);
                f16(&format!("{side}/{ln}/beta"), &[d]);
            }
            f16(&format!("{side}/layer_0/self_attention/linear_0/weight"), &[3 * d, d]);
            f16(&format!("{side}/layer_0/self_attention/linear_0/bias"), &[3 * d]);
            f16(&format!("{side}/layer_0/self_attention/linear_1/weight"), &[d, d]);
            f16(&format!("{side}/layer_0/self_attention/linear_1/bias"), &[d]);
            f16(&format!("{side}/layer_0/ffn/linear_0/weight"), &[4 * d, d]);
            f16(&format!("{side}/layer_0/ffn/linear_0/bias"), &[4 * d]);
            f16(&format!("{side}/layer_0/ffn/linear_1/weight"), &[d, 4 * d]);
            f16(&format!("{side}/layer_0/ffn/linear_1/bias"), &[d]);
        }
        f16("decoder/layer_0/attention/layer_norm/gamma", &[d]);
        f16("decoder/layer_0/attention/layer_norm/beta", &[d]);
        f16("decoder/layer_0/attention/linear_0/weight", &[d, d]);
        f16("decoder/layer_0/attention/linear_0/bias", &[d]);
        f16("decoder/layer_0/attention/linear_1/weight", &[2 * d, d]);
        f16("decoder/layer_0/attention/linear_1/bias", &[2 * d]);
        f16("decoder/layer_0/attention/linear_2/weight", &[d, d]);
        f16("decoder/layer_0/attention/linear_2/bias", &[d]);
        for side in ["encoder", "decoder"] {
            vars.push((format!("{side}/num_heads"), vec![], 2, 2i16.to_le_bytes().to_vec()));
        }
        let string = |s: &str| {
            let mut b = ((s.len() + 1) as u16).to_le_bytes().to_vec();
            b.extend(s.as_bytes());
            b.push(0);
            b
        };
        let mut out = 6u32.to_le_bytes().to_vec();
        out.extend(string("WhisperSpec"));
        out.extend(3u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in &vars {
            out.extend(string(name));
            out.push(shape.len() as u8);
            for d in shape {
                out.extend((*d as u32).to_le_bytes());
            }
            out.push(*dtype);
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(data);
        }
        out.extend(0u32.to_le_bytes());
        out
    }

    struct Reader<'a>(&'a [u8], usize);

    impl Reader<'_> {
        fn i32(&mut self) -> i32 {
            let v = i32::from_le_bytes(self.0[self.1..self.1 + 4].try_into().unwrap());
            self.1 += 4;
            v
        }
        fn bytes(&mut self, n: usize) -> &[u8] {
            self.1 += n;
            &self.0[self.1 - n..self.1]
        }
    }

    #[test]
    fn converts_a_tiny_whisper_and_splits_the_fused_attention() {
        let d = 4;
        let dir = std::env::temp_dir().join(format!("iris-ct2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("tokenizer.json");
        std::fs::write(&tok, r#"{"model": {"vocab": {"!": 0, "Ġa": 1, "<|endoftext|>": 2}}}"#).unwrap();
        let out = dir.join("ggml.bin");
        convert(&tiny_ct2(d, 5), &tok, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let mut r = Reader(&bytes, 0);
        assert_eq!(r.i32() as u32, GGML_MAGIC);
        let hp: Vec<i32> = (0..11).map(|_| r.i32()).collect();
        assert_eq!(hp, [5, 3, 4, 2, 1, 2, 4, 2, 1, 2, 1]);
        let (n_mel, n_fft) = (r.i32(), r.i32());
        assert_eq!((n_mel, n_fft), (2, 201));
        r.bytes(2 * 201 * 4);
        assert_eq!(r.i32(), 3);
        let vocab: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let n = r.i32() as usize;
                r.bytes(n).to_vec()
            })
            .collect();
        assert_eq!(vocab, [b"!".to_vec(), b" a".to_vec(), b"<|endoftext|>".to_vec()]);
        let mut tensors = Vec::new();
        while r.1 < bytes.len() {
            let (dims, name_len, ftype) = (r.i32() as usize, r.i32() as usize, r.i32());
            let shape: Vec<usize> = (0..dims).map(|_| r.i32() as usize).collect();
            let name = String::from_utf8(r.bytes(name_len).to_vec()).unwrap();
            let n: usize = shape.iter().product();
            let data = r.bytes(n * if ftype == 1 { 2 } else { 4 }).to_vec();
            let first = if ftype == 1 {
                f16_to_f32(u16::from_le_bytes([data[0], data[1]]))
            } else {
                f32::from_le_bytes(data[..4].try_into().unwrap())
            };
            tensors.push((name, shape, ftype, first));
        }
        let get = |n: &str| tensors.iter().find(|t| t.0 == n).unwrap_or_else(|| panic!("{n} missing"));
        // Rows 0..d of the fused QKV are Q, d..2d K, 2d..3d V (row index encoded as the value).
        assert_eq!(get("encoder.blocks.0.attn.query.weight").3, 0.0);
        assert_eq!(get("encoder.blocks.0.attn.key.weight").3, d as f32);
        assert_eq!(get("encoder.blocks.0.attn.value.weight").3, 2.0 * d as f32);
        assert_eq!(get("encoder.blocks.0.attn.value.bias").3, 2.0 * d as f32);
        assert_eq!(get("decoder.blocks.0.cross_attn.key.weight").3, 0.0);
        assert_eq!(get("decoder.blocks.0.cross_attn.value.weight").3, d as f32);
        // Biases and positions are f32; conv biases become [n, 1]; keys have no bias.
        assert_eq!(get("encoder.conv1.bias").1, [1, d]);
        assert_eq!(get("encoder.positional_embedding").2, 0);
        assert_eq!(get("decoder.token_embedding.weight").1, [d, 5]);
        assert!(tensors.iter().all(|t| !t.0.ends_with("key.bias")));
        assert_eq!(tensors.first().unwrap().0, "encoder.positional_embedding");
        assert_eq!(tensors.last().unwrap().0, "decoder.ln.bias");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_matrix_of_the_wrong_shape_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("iris-ct2c-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("tokenizer.json");
        std::fs::write(&tok, r#"{"model": {"vocab": {"!": 0, "a": 1}}}"#).unwrap();
        let name = "decoder/layer_0/attention/linear_1/weight";
        let err = convert(&tiny_ct2_broken(4, 5, name), &tok, &dir.join("x.bin")).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("[9, 4]") && err.contains("[8, 4]"), "{err}");
        assert!(!dir.join("x.bin").exists() || std::fs::metadata(dir.join("x.bin")).unwrap().len() == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tokenizer_from_another_model_is_refused() {
        let dir = std::env::temp_dir().join(format!("iris-ct2b-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("tokenizer.json");
        std::fs::write(&tok, r#"{"model": {"vocab": {"!": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}}}"#).unwrap();
        let err = convert(&tiny_ct2(4, 5), &tok, &dir.join("x.bin")).unwrap_err().to_string();
        assert!(err.contains("do not belong together"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
