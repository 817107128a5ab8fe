//! `[tflite]`: how TensorFlow Lite runs the `.tflite` models (the wake words with
//! `[audio] wake_runtime = "tflite"`): its XNNPACK delegate with a thread count, or an external
//! delegate, the plugin a board's NPU ships (Coral's Edge TPU `libedgetpu.so.1`, NXP's
//! `libvx_delegate.so`, a vendor's own) with the options its maker documents.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The delegates Iris knows.
pub const DELEGATES: [&str; 3] = ["default", "xnnpack", "external"];
/// Options a delegate may be given (vendors document a handful).
pub const MAX_OPTIONS: usize = 32;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tflite {
    /// "default" (TensorFlow Lite's own choice: its built-in XNNPACK where it applies, as the
    /// reference packages run the models), "xnnpack" (made explicitly, with `threads`) or
    /// "external" (`external_library`).
    pub delegate: String,
    /// XNNPACK's threads with "xnnpack"; 0: one per model, as a wake word's hop is about 2 ms.
    pub threads: usize,
    /// The external delegate's shared library, an absolute path.
    pub external_library: String,
    /// Its options, as its maker documents them (e.g. `device = ":0"` for the Edge TPU).
    pub external_options: BTreeMap<String, String>,
}

impl Default for Tflite {
    fn default() -> Self {
        Self { delegate: "default".into(), threads: 0, external_library: String::new(), external_options: BTreeMap::new() }
    }
}

impl Tflite {
    /// The field that is wrong and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !DELEGATES.contains(&self.delegate.as_str()) {
            return Err(("tflite.delegate", format!("is {:?}; use \"default\", \"xnnpack\" or \"external\"", self.delegate)));
        }
        if self.threads > 64 {
            return Err(("tflite.threads", format!("is {}; use 0 (one per model) to 64", self.threads)));
        }
        if self.delegate == "external" {
            let lib = Path::new(&self.external_library);
            if self.external_library.is_empty() || !lib.is_absolute() || self.external_library.len() > 4096 {
                return Err((
                    "tflite.external_library",
                    "must be the delegate's shared library as an absolute path, e.g. \"/usr/lib/aarch64-linux-gnu/libedgetpu.so.1\"".into(),
                ));
            }
        } else if !self.external_library.is_empty() || !self.external_options.is_empty() {
            return Err((
                "tflite.external_library",
                format!("is set, but `delegate` is {:?}; set delegate = \"external\" to use it", self.delegate),
            ));
        }
        if self.external_options.len() > MAX_OPTIONS {
            return Err(("tflite.external_options", format!("has {} entries; at most {MAX_OPTIONS}", self.external_options.len())));
        }
        for (k, v) in &self.external_options {
            if k.is_empty() || k.len() > 256 || v.len() > 4096 || k.contains('\0') || v.contains('\0') {
                return Err(("tflite.external_options", format!("{k:?}: names of 1 to 256 bytes and values of at most 4096, with no NUL")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_delegate_settings_name_the_field() {
        let field = |t: Tflite| t.check().err().map(|(f, _)| f);
        assert_eq!(field(Tflite::default()), None);
        assert_eq!(field(Tflite { delegate: "gpu".into(), ..Default::default() }), Some("tflite.delegate"));
        assert_eq!(field(Tflite { threads: 65, ..Default::default() }), Some("tflite.threads"));
        let external = |library: &str| Tflite { delegate: "external".into(), external_library: library.into(), ..Default::default() };
        assert_eq!(field(external("")), Some("tflite.external_library"));
        assert_eq!(field(external("libedgetpu.so.1")), Some("tflite.external_library"));
        assert_eq!(field(external("/usr/lib/libedgetpu.so.1")), None);
        // A library named while XNNPACK is chosen would be silently unused.
        assert_eq!(
            field(Tflite { external_library: "/usr/lib/libedgetpu.so.1".into(), ..Default::default() }),
            Some("tflite.external_library")
        );
        let many = (0..=MAX_OPTIONS).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(field(Tflite { external_options: many, ..external("/usr/lib/x.so") }), Some("tflite.external_options"));
    }
}
