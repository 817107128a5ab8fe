//! A box with nothing installed: `iris serve` starts anyway, the panel can be set up, every
//! request that needs a model says which one is missing and where to get it, and once the
//! models are in (copied onto the box here, as from a USB stick, then checked on the Models
//! page) the assistant answers without a restart.

mod common;

use std::path::Path;

use common::{agent, serve_with, set_up};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

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
    let env = [("IRIS_HOME", home.path().to_str().unwrap())];
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

    // The default pack, copied in from this machine's store (tests fetch nothing), then checked.
    let store = iris_models::Store::from_env().unwrap();
    let catalog_text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/catalog.toml")).unwrap();
    let catalog = iris_models::Catalog::parse(&catalog_text, Path::new("catalog.toml")).unwrap();
    for id in &catalog.packs["default"] {
        copy_dir(&store.model_dir(id), &home.path().join("models").join(id));
    }
    let (status, checked) = server.call(&session, "POST", "/api/models/smollm2-135m-instruct/verify", None);
    assert_eq!((status, checked["ok"].as_bool()), (200, Some(true)), "{checked}");
    let (_, state) = server.call(&session, "GET", "/api/status", None);
    assert!(state["missing"].is_null(), "{state}");
    let (status, body) = chat(&server.url, &session);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Paris"), "{body}");
}
