//! `iris serve` on the default pack, driven from outside as its users drive it: the `openai`
//! and `wyoming` Python packages (IRIS_CLIENT_PYTHON, a Python that has them), and the panel
//! in a real headless Chromium (IRIS_BROWSER_MODULES, a node_modules with playwright-core and
//! axe-core). `deploy/test.sh` sets both up; without them these tests say so and pass.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const IRIS: &str = env!("CARGO_BIN_EXE_iris");
const PASSWORD: &str = "correct horse battery";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Canonical: Chromium refuses a capture file whose path goes through "..".
fn question() -> PathBuf {
    root().join("tests/data/question.wav").canonicalize().unwrap()
}

struct Server {
    child: Child,
    url: String,
    /// The server's later lines of output.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// The Wyoming port, once the server says it listens (after set-up, when turned on).
    fn wyoming_port(&self) -> u16 {
        loop {
            let line = self.lines.recv_timeout(std::time::Duration::from_secs(30)).expect("Wyoming never started listening");
            if let Some(port) = line.strip_prefix("wyoming: tcp://").and_then(|a| a.rsplit(':').next()?.parse().ok()) {
                return port;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `iris serve` on free ports with its settings (and panel state) in `dir`.
fn serve(dir: &Path) -> Server {
    let mut child = Command::new(IRIS)
        .args(["--config", &dir.join("config.toml").display().to_string(), "serve", "--listen", "127.0.0.1:0", "--wyoming", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start iris serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("iris serve exited before listening").unwrap();
        if let Some(u) = line.strip_prefix("panel: ") {
            break u.trim_end_matches('/').to_owned();
        }
    };
    // Keep reading stdout so the server never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Server { child, url, lines: rx }
}

fn normalise(s: &str) -> String {
    let s: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sets the panel up over HTTP and creates an API token; returns its secret.
fn set_up_with_token(url: &str) -> String {
    let resp = ureq::post(&format!("{url}/api/setup"))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "password": PASSWORD }).to_string().as_bytes())
        .expect("setup");
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let state: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{url}/api/state")).header("cookie", &cookie).call().unwrap().body_mut().read_to_string().unwrap(),
    )
    .unwrap();
    let csrf = state["csrf"].as_str().unwrap().to_owned();
    let mut resp = ureq::post(&format!("{url}/api/tokens"))
        .header("content-type", "application/json")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send(br#"{"name":"tests"}"#)
        .expect("create a token");
    let token: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    token["secret"].as_str().unwrap().to_owned()
}

#[test]
fn openai_and_wyoming_clients_use_iris() {
    let Some(python) = std::env::var_os("IRIS_CLIENT_PYTHON") else {
        eprintln!("IRIS_CLIENT_PYTHON is not set (deploy/test.sh sets it): the real-client test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[wyoming]\nenabled = true\n").unwrap();
    let server = serve(dir.path());
    let token = set_up_with_token(&server.url);
    // Wyoming opens only once Iris is set up.
    let wyoming_port = server.wyoming_port();
    let out = Command::new(python)
        .arg(root().join("tests/clients/real_clients.py"))
        .args([&server.url, &token, &question().display().to_string(), &wyoming_port.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "clients failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{got:#}");
    assert!(got["models"].as_array().unwrap().iter().any(|m| m == "smollm2-135m-instruct"), "{got}");
    assert!(got["chat_chunks"].as_u64().unwrap() > 2, "the answer was not streamed: {got}");
    assert!(got["chat"].as_str().unwrap().contains("Paris"), "{got}");
    assert_eq!(normalise(got["transcription"].as_str().unwrap()), "what is the capital of france");
    assert!(got["speech_seconds"].as_f64().unwrap() > 0.5, "{got}");
    assert_eq!(got["bad_token"], "AuthenticationError");
    assert_eq!(got["wyoming_asr"][0], "whisper-tiny.en");
    assert_eq!(normalise(got["wyoming_transcript"].as_str().unwrap()), "what is the capital of france");
    assert!(got["wyoming_speech_seconds"].as_f64().unwrap() > 0.8, "{got}");
}

fn browser(url: &str, phase: &str, modules: &std::ffi::OsStr) -> serde_json::Value {
    let out = Command::new("node")
        .arg(root().join("tests/browser/panel.cjs"))
        .args([url, phase, &question().display().to_string()])
        .env("IRIS_BROWSER_MODULES", modules)
        .output()
        .expect("run node");
    assert!(out.status.success(), "browser phase {phase} failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report:#}");
    report
}

#[test]
fn the_panel_in_a_real_browser() {
    let Some(modules) = std::env::var_os("IRIS_BROWSER_MODULES") else {
        eprintln!("IRIS_BROWSER_MODULES is not set (deploy/test.sh sets it): the browser test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path());
    let report = browser(&first.url, "setup", &modules);
    assert!(report["status_models"].as_str().unwrap().contains("whisper-tiny.en"), "{report}");
    drop(first);

    // A restart: the password and the settings are read back from disk.
    let saved = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(saved.contains("Ada"), "{saved}");
    assert!(
        saved.contains("[wyoming]\nenabled = true") && saved.contains("\"192.168.1.20\"") && saved.contains("\"10.0.0.0/8\""),
        "{saved}"
    );
    let second = serve(dir.path());
    let report = browser(&second.url, "after-restart", &modules);
    assert_eq!(report["name_after_restart"], "Ada");
    assert_eq!(report["prompt_after_restart"], "You are a helpful AI assistant named Ada. Give short, correct answers.");
    assert_eq!(normalise(report["transcript"].as_str().unwrap()), "what is the capital of france");
    assert!(report["answer"].as_str().unwrap().contains("Paris"), "{report}");
    assert_eq!(report["error"], "");
    assert_eq!(report["audio_src"], "data:audio/wav;base64,");
    // Spoken into the browser's microphone (Chromium's fake device plays the question).
    // Through the browser's 44.1 kHz capture and back, one small word may slip ("capital on France").
    let spoken = normalise(report["spoken_transcript"].as_str().unwrap());
    assert!(spoken.contains("capital") && spoken.contains("france"), "{report}");
    assert!(!report["spoken_answer"].as_str().unwrap().is_empty(), "{report}");
    assert!(report["turn_bar"].as_str().unwrap().contains("asr"), "{report}");
    assert!(report["audited"].as_array().unwrap().len() >= 4, "{report}");
}
