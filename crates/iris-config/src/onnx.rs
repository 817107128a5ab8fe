//! `[onnx]`: which of ONNX Runtime's execution providers run the ONNX models (voice activity,
//! wake word, Piper, OCR, Smart Turn), in order of preference.

use serde::{Deserialize, Serialize};

/// The providers Iris knows: ONNX Runtime's own CPU provider, OpenVINO's plugin (the
/// `openvino-ep` catalog entry: Intel CPUs, and Intel GPUs and NPUs where present) and
/// Qualcomm's QNN plugin (`qnn-ep`: the Hexagon NPU of Snapdragon boards).
pub const PROVIDERS: [&str; 3] = ["openvino", "qnn", "cpu"];

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Onnx {
    /// In order of preference; a node no provider before "cpu" takes runs on the CPU provider,
    /// and a list without "cpu" is an error for a model one of its nodes would need it for.
    pub providers: Vec<String>,
    /// A model's own list (by catalog id, e.g. "smart-turn" = ["cpu"]), in place of `providers`.
    pub models: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for Onnx {
    fn default() -> Self {
        Self { providers: vec!["cpu".into()], models: Default::default() }
    }
}

impl Onnx {
    /// The field that is wrong and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        check_list(&self.providers).map_err(|m| ("onnx.providers", m))?;
        if self.models.len() > 64 {
            return Err(("onnx.models", format!("names {} models; an appliance has about ten", self.models.len())));
        }
        for (id, list) in &self.models {
            if id.is_empty() || id.len() > 64 {
                return Err(("onnx.models", format!("names a model {id:?}; use a catalog id such as \"silero-vad\"")));
            }
            check_list(list).map_err(|m| ("onnx.models", format!("{id}: {m}")))?;
        }
        Ok(())
    }

    /// Whether any provider but ONNX Runtime's built-in CPU one is asked for.
    pub fn needs_plugins(&self) -> bool {
        self.providers.iter().chain(self.models.values().flatten()).any(|p| p != "cpu")
    }
}

/// One list of providers: known names, each once, not two plugins that cannot share a process.
fn check_list(p: &[String]) -> Result<(), String> {
    if p.is_empty() || p.len() > PROVIDERS.len() {
        return Err(format!("has {} entries; name 1 to {} of {:?}", p.len(), PROVIDERS.len(), PROVIDERS));
    }
    for (i, name) in p.iter().enumerate() {
        if !PROVIDERS.contains(&name.as_str()) {
            return Err(format!("names {name:?}; use {:?}, e.g. [\"openvino\", \"cpu\"]", PROVIDERS));
        }
        if p[..i].contains(name) {
            return Err(format!("names {name:?} twice"));
        }
    }
    if p.iter().any(|n| n == "openvino") && p.iter().any(|n| n == "qnn") {
        // Their plugins bring clashing C++ runtimes into one process.
        return Err("names both \"openvino\" and \"qnn\", whose plugins cannot share a process; choose one".into());
    }
    Ok(())
}
