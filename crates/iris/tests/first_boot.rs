//! A box with nothing installed: `iris serve` starts anyway, the panel can be set up, every
//! request that needs a model says which one is missing and where to get it, and once the
//! models are in (copied onto the box here, as from a USB stick, then checked on the Models
//! page) the assistant answers without a restart.

mod common;

use std::process::Command;

use serde_json::json;

use common::{agent, serve_with, set_up};

fn chat(url: &str, session: &(String, String)) -> (u16, String) {
    let mut r = agent()
        .post(&format!("{url}/v1/chat/completions"))
        .header("cookie", &session.0)
        .header("x-csrf-token", &session.1)
        .header("content-type", "application/json")
        .send(
            serde_json::json!({ "messages": [{ "role": "user", "content": "What is the capital of France?" }], "temperature": 0 })
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_box_with_nothing_installed_starts_and_takes_its_models_later() {
    let home = tempfile::tempdir().unwrap();
    // The settings' own default language model, not the one the suite pins (IRIS_DEFAULT_LLM).
    let env = [("IRIS_HOME", home.path().to_str().unwrap()), ("IRIS_DEFAULT_LLM", "")];
    let server = serve_with(home.path(), &env);
    assert!(!server.setup_code.is_empty(), "no setup code printed");
    let session = set_up(&server);
    let (status, state) = server.call(&session, "GET", "/api/status", None);
    assert_eq!(status, 200);
    let missing = state["missing"].as_str().unwrap_or_default().to_owned();
    assert!(missing.contains("not installed") && missing.contains("Models page"), "{state}");
    let (status, body) = chat(&server.url, &session);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not installed") && body.contains("Models page"), "{body}");

    // The default pack, as an offline bundle made from this machine's store (tests fetch
    // nothing), installed from the Models page by its path.
    let bundle = tempfile::tempdir().unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_iris")).args(["bundle", "create"]).arg(bundle.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.path().join("iris-bundle.json")).unwrap()).unwrap();
    let ids: Vec<&str> = manifest["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&iris_config::DEFAULT_LLM) && ids.contains(&"ppocr-v6-tiny"), "{manifest}");
    let (status, r) = server.call(&session, "POST", "/api/models/import", Some(json!({ "path": bundle.path() })));
    assert_eq!(status, 200, "{r}");
    for id in &ids {
        assert!(r["imported"][id].is_string(), "{id} was not imported: {r}");
    }
    let (_, state) = server.call(&session, "GET", "/api/status", None);
    assert!(state["missing"].is_null(), "{state}");
    let (status, body) = chat(&server.url, &session);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Paris"), "{body}");
    // The vision aid reads with these: the Models page does not offer to remove them.
    let (_, list) = server.call(&session, "GET", "/api/models", None);
    let ocr = list["models"].as_array().unwrap().iter().find(|m| m["id"] == "ppocr-v6-tiny").unwrap();
    assert_eq!(ocr["in_use"], true, "{ocr}");
    let (status, r) = server.call(&session, "DELETE", "/api/models/ppocr-v6-tiny", None);
    assert_eq!(status, 409, "{r}");
}

/// A bundle copied only in part is named as such, before anything is hashed or installed.
#[test]
fn a_bundle_copied_in_part_names_the_file() {
    let bundle = tempfile::tempdir().unwrap();
    let iris = env!("CARGO_BIN_EXE_iris");
    let made = Command::new(iris).args(["bundle", "create", "--pack", "silero-vad"]).arg(bundle.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let vad = bundle.path().join("models/silero-vad/silero_vad.onnx");
    let len = std::fs::metadata(&vad).unwrap().len();
    std::fs::File::options().write(true).open(&vad).unwrap().set_len(len / 2).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(iris).args(["models", "import"]).arg(bundle.path()).env("IRIS_HOME", home.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("models/silero-vad/silero_vad.onnx") && err.contains("copy the bundle again"), "{err}");
    assert!(!home.path().join("models/silero-vad").exists());
}

/// The first boot's other road: "Fetch the default pack" on the Models page downloads every
/// model of the pack, with progress, from the catalog's sources (here a mirror on this machine
/// serving the store's files), and the assistant starts when the last one is in.
#[test]
fn the_default_pack_is_fetched_from_the_models_page() {
    let home = tempfile::tempdir().unwrap();
    let catalog_file = home.path().join("mirror-catalog.toml");
    let pack = common::mirror_catalog(&catalog_file);
    let env = [("IRIS_HOME", home.path().to_str().unwrap()), ("IRIS_CATALOG", catalog_file.to_str().unwrap()), ("IRIS_DEFAULT_LLM", "")];
    let server = serve_with(home.path(), &env);
    let session = set_up(&server);
    let (status, r) = server.call(&session, "POST", "/api/models/pack/default/pull", None);
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["started"].as_array().unwrap().len(), pack.len(), "{r}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let (_, list) = server.call(&session, "GET", "/api/models", None);
        let models = list["models"].as_array().unwrap();
        let failed: Vec<&serde_json::Value> = models.iter().filter(|m| m["job"]["error"].is_string()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        if models.iter().filter(|m| pack.iter().any(|p| m["id"] == p.as_str())).all(|m| m["state"] == "installed") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pack did not arrive: {list}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (status, body) = chat(&server.url, &session);
        if status == 200 {
            assert!(body.contains("Paris"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the assistant did not start: {status} {body}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// An archive uploaded on the Models page (a bundle packed on another computer) is streamed to
/// the staging folder and installed; one that claims more than the limit or the free disk is
/// refused before a byte is kept, one cut short is refused, and nothing is left behind.
#[test]
fn an_archive_uploaded_on_the_models_page_is_installed() {
    let bundle = tempfile::tempdir().unwrap();
    let iris = env!("CARGO_BIN_EXE_iris");
    let made = Command::new(iris).args(["bundle", "create", "--pack", "silero-vad"]).arg(bundle.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let archive = tempfile::tempdir().unwrap();
    let tgz = archive.path().join("vad-bundle.tar.gz");
    let packed = Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(bundle.path()).arg(".").status().unwrap();
    assert!(packed.success());

    let home = tempfile::tempdir().unwrap();
    let server = serve_with(home.path(), &[("IRIS_HOME", home.path().to_str().unwrap())]);
    let session = set_up(&server);
    let upload = |name: &str, body: &[u8]| {
        let mut r = agent()
            .post(&format!("{}/api/models/upload?name={name}", server.url))
            .header("cookie", &session.0)
            .header("x-csrf-token", &session.1)
            .header("content-type", "application/octet-stream")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, body) = upload("vad-bundle.tar.gz", &std::fs::read(&tgz).unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("silero-vad"), "{body}");
    assert!(home.path().join("models/silero-vad/silero_vad.onnx").is_file());
    let (status, body) = upload("setup.exe", b"MZ");
    assert_eq!(status, 400, "{body}");

    // Raw requests: a length past the limit, and a body cut short.
    let raw = |length: u64, sent: &[u8]| {
        use std::io::{Read, Write};
        let addr = server.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /api/models/upload?name=big.tar HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nx-csrf-token: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n",
            session.0, session.1
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(sent).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    let answer = raw(1 << 40, b"");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let answer = raw(1_000_000, &[0u8; 1000]);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("broke off"), "{answer}");
    let staging = home.path().join("staging");
    let left: Vec<_> = std::fs::read_dir(&staging).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.iter().all(|n| !n.to_string_lossy().starts_with("upload-")), "{left:?}");
}
