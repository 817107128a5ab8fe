//! `[web]`: how the panel and the APIs are served.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Web {
    /// HTTPS on the panel's port (plain HTTP is answered for this machine only and redirected
    /// for everyone else). Off: plain HTTP for all, for a box behind a TLS proxy.
    pub https: bool,
    /// The owner's own certificate and key (PEM files); empty: Iris's self-signed one, made at
    /// first start in `$IRIS_HOME/tls`.
    pub cert: String,
    pub key: String,
}

impl Default for Web {
    fn default() -> Self {
        Self { https: true, cert: String::new(), key: String::new() }
    }
}

impl Web {
    /// The field that is wrong and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.cert.len() > 4096 || self.key.len() > 4096 {
            return Err(("web.cert", "paths are at most 4096 bytes".into()));
        }
        if self.cert.is_empty() != self.key.is_empty() {
            return Err(("web.key", "give both `cert` and `key` (PEM files), or neither for Iris's own certificate".into()));
        }
        Ok(())
    }
}
