//! HTTPS by default: a self-signed certificate made at first start whose fingerprint Iris
//! prints, TLS and plain HTTP on one port, plain HTTP answered for this machine only and
//! redirected to HTTPS for the network.

mod common;

use std::process::Command;

use common::{agent, lan_address, serve_on};

#[test]
fn the_panel_is_served_over_https_with_the_printed_certificate() {
    let home = tempfile::tempdir().unwrap();
    let server = serve_on(home.path(), &[("IRIS_HOME", home.path().to_str().unwrap())], "0.0.0.0:0");
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let cert = home.path().join("tls/cert.pem");
    let key = home.path().join("tls/key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o077, 0, "the key is readable by others");
    }
    // The printed fingerprint is the certificate's, as openssl computes it.
    let out = Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&cert).output().unwrap();
    let openssl = String::from_utf8_lossy(&out.stdout);
    assert_eq!(openssl.trim().rsplit('=').next().unwrap(), server.fingerprint, "{openssl}");

    // HTTPS, trusting exactly that certificate.
    let pem = std::fs::read(&cert).unwrap();
    let roots = vec![ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned()];
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots))).build();
    let secure: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into();
    let mut r = secure.get(&format!("https://localhost:{port}/api/state")).call().expect("an HTTPS request");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("set_up"));
    // An untrusting client refuses it: it is not a certificate from a public authority.
    assert!(ureq::get(&format!("https://localhost:{port}/api/state")).call().is_err());

    // Plain HTTP: this machine is answered; the network is sent to HTTPS.
    assert_eq!(agent().get(&format!("http://127.0.0.1:{port}/api/state")).call().unwrap().status(), 200);
    if let Some(ip) = lan_address() {
        let no_redirects: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into();
        let r = no_redirects.get(&format!("http://{ip}:{port}/setup?x=1")).call().unwrap();
        assert_eq!(r.status(), 308);
        assert_eq!(r.headers()["location"], format!("https://{ip}:{port}/setup?x=1").as_str());
    } else {
        eprintln!("this machine has no network address: the redirect is not checked");
    }
    drop(server);

    // A restart keeps the certificate (a browser that accepted it is not warned again).
    let again = serve_on(home.path(), &[("IRIS_HOME", home.path().to_str().unwrap())], "127.0.0.1:0");
    assert_eq!(again.fingerprint, String::from_utf8_lossy(&out.stdout).trim().rsplit('=').next().unwrap());
}
