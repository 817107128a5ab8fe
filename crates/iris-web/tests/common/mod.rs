//! A panel on fake backends, and helpers to call its router in-process.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use http_body_util::BodyExt;
use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts, FakeVlm};
use iris_config::Config;
use iris_engine::{Backends, Engine, LoadedModel, Loader};
use iris_models::{Catalog, Store};
use iris_web::{ModelShelf, Panel};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

/// Fakes, counting loads; `check` refuses models the catalog does not list.
pub struct FakeLoader {
    pub loads: Arc<AtomicUsize>,
    pub known: Vec<String>,
    /// The fake language model waits this long before each token (a busy box).
    pub token_delay: std::time::Duration,
    /// What the fake language model says.
    pub tokens: Vec<&'static str>,
}

impl Loader for FakeLoader {
    fn check(&self, c: &Config) -> Result<(), (String, String)> {
        for (field, id) in [("models.asr", &c.models.asr), ("models.llm", &c.models.llm), ("models.tts", &c.models.tts)] {
            if !self.known.contains(id) {
                return Err((field.into(), format!("is \"{id}\", which is not installed")));
            }
        }
        Ok(())
    }

    fn load(&self, c: &Config) -> Result<Backends, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let loaded = vec![
            LoadedModel { task: "asr".into(), id: c.models.asr.clone(), device: "cpu (fake)".into() },
            LoadedModel { task: "llm".into(), id: c.models.llm.clone(), device: "cpu (fake)".into() },
            LoadedModel { task: "tts".into(), id: c.models.tts.clone(), device: "cpu (fake)".into() },
        ];
        Ok(Backends {
            asr: Arc::new(FakeAsr::new("what time is it")),
            llm: Box::new({
                let mut llm = FakeLlm::new(&self.tokens);
                let delay = self.token_delay;
                llm.before_token = Box::new(move |_| std::thread::sleep(delay));
                llm
            }),
            tts: Box::new(FakeTts::default()),
            vision: Some(Box::new(FakeVlm { direct: false })),
            vad: None,
            skills: None,
            loaded,
        })
    }
}

pub struct TestPanel {
    pub app: Router,
    pub state: iris_web::AppState,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub loads: Arc<AtomicUsize>,
    pub engine: Arc<Engine>,
}

pub fn panel() -> TestPanel {
    panel_with_delay(std::time::Duration::ZERO)
}

pub fn panel_with_delay(token_delay: std::time::Duration) -> TestPanel {
    panel_with(token_delay, vec!["Hello", " there", "."])
}

/// A panel whose language model says `tokens`.
pub fn panel_saying(tokens: Vec<&'static str>) -> TestPanel {
    panel_with(std::time::Duration::ZERO, tokens)
}

fn panel_with(token_delay: std::time::Duration, tokens: Vec<&'static str>) -> TestPanel {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    let catalog = Catalog::parse(include_str!("../../../../models/catalog.toml"), std::path::Path::new("catalog.toml")).unwrap();
    let known = catalog.models.iter().map(|m| m.id.clone()).collect();
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = FakeLoader { loads: loads.clone(), known, token_delay, tokens };
    // The language model named as the tests of the Ollama API expect, whatever the default is.
    let mut config = Config::default();
    config.models.llm = "smollm2-135m-instruct".into();
    let engine = Arc::new(Engine::start(Box::new(loader), config).unwrap());
    let shelf = ModelShelf::new(Store::new(dir.path()), catalog, Arc::new(iris_models::convert::NoExternal));
    let state = Arc::new(Panel::new(engine.clone(), config_path.clone(), shelf).unwrap());
    TestPanel { app: iris_web::router(state.clone()), state, dir, config_path, loads, engine }
}

/// The same panel as after a restart: its state read again from its folder.
pub fn restarted(p: &TestPanel) -> Router {
    let catalog = Catalog::parse(include_str!("../../../../models/catalog.toml"), std::path::Path::new("catalog.toml")).unwrap();
    let shelf = ModelShelf::new(Store::new(p.dir.path()), catalog, Arc::new(iris_models::convert::NoExternal));
    iris_web::router(Arc::new(Panel::new(p.engine.clone(), p.config_path.clone(), shelf).unwrap()))
}

pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    send_from(app, req, "192.0.2.1:5000").await
}

pub async fn send_from(app: &Router, mut req: Request<Body>, from: &str) -> Reply {
    req.extensions_mut().insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
    let res: Response<Body> = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

/// A logged-in browser: its cookie and CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub fn req(&self, method: &str, uri: &str, json: Option<serde_json::Value>) -> Request<Body> {
        let b = Request::builder().method(method).uri(uri).header("cookie", &self.cookie).header("x-csrf-token", &self.csrf);
        match json {
            Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }
}

pub fn post_json(uri: &str, v: serde_json::Value) -> Request<Body> {
    Request::builder().method("POST").uri(uri).header("content-type", "application/json").body(Body::from(v.to_string())).unwrap()
}

pub async fn browser_from(app: &Router, set_cookie: &str) -> Browser {
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let state = send(app, Request::get("/api/state").header("cookie", &cookie).body(Body::empty()).unwrap()).await.json();
    Browser { cookie, csrf: state["csrf"].as_str().expect("a session has a CSRF token").to_owned() }
}

/// Sets the panel up and returns the owner's browser.
/// The setup code the panel made (what its owner reads on the console).
pub fn code(p: &TestPanel) -> String {
    p.state.auth.setup_code().expect("not set up yet").0
}

pub async fn owner(p: &TestPanel) -> Browser {
    let app = &p.app;
    let r = send(app, post_json("/api/setup", serde_json::json!({ "password": PASSWORD, "code": code(p) }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    browser_from(app, &r.header("set-cookie")).await
}

/// A multipart body with `(field, filename, bytes)` parts.
pub fn multipart(uri: &str, parts: &[(&str, Option<&str>, &[u8])], auth: Option<&Browser>, bearer: Option<&str>) -> Request<Body> {
    let boundary = "irisboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut b = Request::post(uri).header("content-type", format!("multipart/form-data; boundary={boundary}"));
    if let Some(br) = auth {
        b = b.header("cookie", &br.cookie).header("x-csrf-token", &br.csrf);
    }
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body)).unwrap()
}

/// A second of a 440 Hz tone as a 16-bit WAV at `rate`.
pub fn wav(rate: u32) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for i in 0..rate {
        w.write_sample(((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    cursor.into_inner()
}
