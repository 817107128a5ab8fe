//! HTTPS for the panel and the APIs. A phone's browser opens the microphone only on a secure
//! page, and a password should not cross the Wi-Fi in clear: so Iris makes itself a
//! self-signed certificate at first start (or takes the owner's own), prints its SHA-256
//! fingerprint for the owner to compare with the browser's, and serves TLS and plain HTTP on
//! the same port, told apart by the first byte. Plain HTTP is answered only for this machine
//! (scripts, `curl localhost`); from the network it is redirected to HTTPS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// SHA-256 of the certificate, as browsers show it: `AB:CD:…`.
    pub fingerprint: String,
    /// Where the certificate is, for the owner to install or compare.
    pub cert_path: PathBuf,
}

/// The first byte of a TLS connection (a handshake record).
pub const HANDSHAKE: u8 = 0x16;

impl Tls {
    /// The owner's certificate and key, when both are given; else Iris's own in `dir`,
    /// made the first time (the key readable by its owner only).
    pub fn load_or_make(dir: &Path, own: Option<(&Path, &Path)>) -> Result<Self, String> {
        let (cert_path, key_path) = match own {
            Some((c, k)) => (c.to_owned(), k.to_owned()),
            None => {
                let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
                if !c.is_file() || !k.is_file() {
                    make_self_signed(dir, &c, &k)?;
                }
                (c, k)
            }
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&cert_path).and_then(|i| i.collect::<Result<_, _>>()).map_err(|e| {
                format!("{}: not a PEM certificate ({e}); give the certificate file, or remove it to get a new one", cert_path.display())
            })?;
        let first = certs.first().ok_or_else(|| format!("{}: holds no certificate", cert_path.display()))?;
        let fingerprint = Sha256::digest(first.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| format!("{}: not a PEM private key ({e}); give the key of the certificate", key_path.display()))?;
        let config =
            tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(|e| format!("{} and {}: {e}", cert_path.display(), key_path.display()))?;
        Ok(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), fingerprint, cert_path })
    }
}

/// A certificate for this machine's names, valid for ten years.
fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && host.len() < 64 {
            names.extend([host.to_owned(), format!("{host}.local")]);
        }
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Iris");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let pair = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let made = params.self_signed(&pair).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create it: {e}", dir.display()))?;
    // The key first, owner-only, so a certificate never exists without its key.
    iris_models::store::write_atomic(key, pair.serialize_pem().as_bytes()).map_err(|e| format!("{}: {e}", key.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{}: {e}", key.display()))?;
    }
    iris_models::store::write_atomic(cert, made.pem().as_bytes()).map_err(|e| format!("{}: {e}", cert.display()))
}
