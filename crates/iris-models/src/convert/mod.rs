//! Conversions from what sources ship to what Iris loads. Each is deterministic, so the result
//! can be pinned by its sha256 in the catalog.

pub mod ct2;
pub mod labels;
pub mod mel;
pub mod whisper_ggml;

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("conversion `{0}` is not available in this build")]
    Unavailable(String),
}

/// Conversions implemented outside this crate (they need a model library), supplied by the binary.
pub trait ExternalConverter {
    /// Converts `inputs` into the model's files `outputs`; `Err(Unavailable)` if unknown.
    fn convert(&self, kind: &str, inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<(), ConvertError>;
}

/// No external conversions.
pub struct NoExternal;

impl ExternalConverter for NoExternal {
    fn convert(&self, kind: &str, _: &[PathBuf], _: &[PathBuf]) -> Result<(), ConvertError> {
        Err(ConvertError::Unavailable(kind.to_owned()))
    }
}

/// Runs conversion `kind` ("copy", "concat", "ct2-whisper-ggml", or an external one).
pub fn run(kind: &str, inputs: &[PathBuf], outputs: &[PathBuf], external: &dyn ExternalConverter) -> Result<(), ConvertError> {
    match kind {
        "copy" => {
            if inputs.len() != outputs.len() {
                return Err(ConvertError::Invalid(format!("copy: {} inputs for {} files", inputs.len(), outputs.len())));
            }
            for (i, o) in inputs.iter().zip(outputs) {
                std::fs::copy(i, o).map_err(|e| ConvertError::Io(o.clone(), e))?;
            }
            Ok(())
        }
        "concat" => concat(inputs, single(outputs)?),
        "ct2-whisper-ggml" => {
            // model.bin (possibly in parts, in order), then tokenizer.json.
            let (tokenizer, parts) = inputs.split_last().ok_or_else(|| ConvertError::Invalid("no inputs".into()))?;
            let mut bytes = Vec::new();
            for p in parts {
                bytes.extend(std::fs::read(p).map_err(|e| ConvertError::Io(p.clone(), e))?);
            }
            whisper_ggml::convert(&bytes, tokenizer, single(outputs)?)
        }
        "imagenet-labels" => labels::imagenet(inputs.first().ok_or_else(|| ConvertError::Invalid("no inputs".into()))?, single(outputs)?),
        other => external.convert(other, inputs, outputs),
    }
}

fn single(outputs: &[PathBuf]) -> Result<&Path, ConvertError> {
    match outputs {
        [one] => Ok(one),
        _ => Err(ConvertError::Invalid(format!("expected one output file, the catalog lists {}", outputs.len()))),
    }
}

/// Joins part files in order.
pub fn concat(parts: &[PathBuf], out: &Path) -> Result<(), ConvertError> {
    let mut f = std::fs::File::create(out).map_err(|e| ConvertError::Io(out.into(), e))?;
    for p in parts {
        let mut src = std::fs::File::open(p).map_err(|e| ConvertError::Io(p.clone(), e))?;
        std::io::copy(&mut src, &mut f).map_err(|e| ConvertError::Io(out.into(), e))?;
    }
    f.flush().map_err(|e| ConvertError::Io(out.into(), e))
}
