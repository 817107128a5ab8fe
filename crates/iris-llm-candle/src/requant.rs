//! Re-quantisation of GGUF files at import.
//!
//! candle has AVX2 kernels for Q8_0 and the K-quants but not for Q4_0/Q4_1/Q5_0/Q5_1, which it
//! runs through scalar code: SmolLM2-135M as Q4_1 decodes at ~1.5 tok/s on 2 cores, the same
//! weights as Q8_0 at ~8 tok/s. So those tensors are widened to Q8_0 (Q8_0 holds any 4/5-bit
//! block exactly up to its own rounding). Keys and tensors are written sorted, so the result is
//! byte-for-byte reproducible and can be pinned by its sha256.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

use crate::LlmError;

/// `general.file_type` for "mostly Q8_0" (llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0).
const FTYPE_Q8_0: u32 = 7;

pub fn requantize_q8_0(input: &Path, output: &Path) -> Result<(), LlmError> {
    let fail = |path: &Path, e: &dyn std::fmt::Display| LlmError::Load { path: path.into(), message: e.to_string() };
    let mut f = File::open(input).map_err(|e| fail(input, &e))?;
    let content = iris_llm_cpu::read_gguf(&mut f).map_err(|e| fail(input, &e))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let t = content.tensor(&mut f, name, &Device::Cpu).map_err(|e| fail(input, &e))?;
        let slow = matches!(t.dtype(), GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
        let t = if slow && t.shape().dims().last().is_some_and(|d| d % 32 == 0) {
            let full = t.dequantize(&Device::Cpu).map_err(|e| fail(input, &e))?;
            QTensor::quantize(&full, GgmlDType::Q8_0).map_err(|e| fail(input, &e))?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let mut metadata: Vec<(String, gguf_file::Value)> = content.metadata.into_iter().collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in metadata.iter_mut() {
        if k == "general.file_type" {
            *v = gguf_file::Value::U32(FTYPE_Q8_0);
        }
    }
    let md: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut w = BufWriter::new(File::create(output).map_err(|e| fail(output, &e))?);
    gguf_file::write(&mut w, &md, &ts).map_err(|e| fail(output, &e))?;
    w.into_inner().map_err(|e| fail(output, &e.into_error()))?.sync_all().map_err(|e| fail(output, &e))
}
