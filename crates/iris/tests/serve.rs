//! `iris serve` on the default pack, driven from outside as its users drive it: the `openai`
//! and `wyoming` Python packages (IRIS_CLIENT_PYTHON, a Python that has them), and the panel
//! in a real headless Chromium (IRIS_BROWSER_MODULES, a node_modules with playwright-core and
//! axe-core). `deploy/test.sh` sets both up; without them these tests say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{serve, serve_with, set_up, try_text};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Canonical: Chromium refuses a capture file whose path goes through "..".
fn question() -> PathBuf {
    root().join("tests/data/question.wav").canonicalize().unwrap()
}

fn normalise(s: &str) -> String {
    let s: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sets the panel up over HTTP and creates an API token; returns its secret.
fn set_up_with_token(server: &common::Server) -> String {
    let url = &server.url;
    let (cookie, csrf) = set_up(server);
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
    let token = set_up_with_token(&server);
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

fn browser(server: &common::Server, phase: &str, modules: &std::ffi::OsStr) -> serde_json::Value {
    browser_at(server, &server.url, phase, modules)
}

/// The browser phase at `base`; an https base pins the server's certificate (its public key's
/// SHA-256, as Chromium takes it), so nothing else is trusted.
fn browser_at(server: &common::Server, base: &str, phase: &str, modules: &std::ffi::OsStr) -> serde_json::Value {
    let spki = Command::new("sh")
        .arg("-c")
        .arg("openssl x509 -pubkey -noout -in \"$1\" | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
        .args(["sh", &server.cert_path])
        .output()
        .unwrap();
    let out = Command::new("node")
        .arg(root().join("tests/browser/panel.cjs"))
        .args([base, phase, &question().display().to_string(), &server.setup_code])
        .env("IRIS_BROWSER_MODULES", modules)
        .env("IRIS_SPKI", String::from_utf8_lossy(&spki.stdout).trim())
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
    let report = browser(&first, "setup", &modules);
    assert!(report["status_models"].as_str().unwrap().contains("whisper-tiny.en"), "{report}");
    drop(first);

    // A restart: the password and the settings are read back from disk.
    let saved = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(saved.contains("Ada"), "{saved}");
    assert!(
        saved.contains("[wyoming]\nenabled = true") && saved.contains("\"192.168.1.20\"") && saved.contains("\"10.0.0.0/8\""),
        "{saved}"
    );
    // Over HTTPS from the network, as a phone on the Wi-Fi reaches the box: the recording from
    // the microphone below works only on a secure page.
    let second = common::serve_on(dir.path(), &[], "0.0.0.0:0");
    let port = second.url.rsplit(':').next().unwrap().to_owned();
    let host = common::lan_address().map_or("localhost".to_owned(), |ip| ip.to_string());
    let report = browser_at(&second, &format!("https://{host}:{port}"), "after-restart", &modules);
    assert!(report["secure_context"].as_bool().unwrap(), "{report}");
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

/// The kiosk profile: the page at /kiosk answers the box's own browser with no login, typed and
/// spoken questions, keyboard only, axe-clean, no way into the panel, cleared when left idle; it
/// is shut to the network and while the kiosk is off.
#[test]
fn the_kiosk_in_a_real_browser() {
    let Some(modules) = std::env::var_os("IRIS_BROWSER_MODULES") else {
        eprintln!("IRIS_BROWSER_MODULES is not set (deploy/test.sh sets it): the browser test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::serve_on(dir.path(), &[], "0.0.0.0:0");
    let owner = set_up(&server);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let local = format!("http://127.0.0.1:{port}");
    let status = |method: &str, url: &str, kiosk_header: bool| {
        let a = common::agent();
        let r = if method == "GET" {
            a.get(url).call()
        } else {
            let mut req = a.post(url).header("content-type", "multipart/form-data; boundary=b");
            if kiosk_header {
                req = req.header("x-iris-kiosk", "1");
            }
            req.send("--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nHello\r\n--b--\r\n".as_bytes())
        };
        r.unwrap().status().as_u16()
    };
    // Off until the owner chooses the profile.
    assert_eq!(status("GET", &format!("{local}/api/kiosk"), false), 404);
    let (code, profiles) = server.call(&owner, "GET", "/api/profiles", None);
    assert_eq!(code, 200);
    assert_eq!(profiles["profiles"].as_array().unwrap().len(), 4, "{profiles}");
    let (code, r) = server.call(&owner, "POST", "/api/profile", Some(serde_json::json!({ "name": "kiosk" })));
    assert_eq!(code, 200, "{r}");
    assert_eq!((r["config"]["kiosk"]["enabled"].as_bool(), r["config"]["audio"]["enabled"].as_bool()), (Some(true), Some(false)), "{r}");
    let (code, r) = server.call(&owner, "PUT", "/api/config", Some(serde_json::json!({ "kiosk": { "idle_reset_s": 10 } })));
    assert_eq!(code, 200, "{r}");
    let (code, r) = server.call(&owner, "POST", "/api/profile", Some(serde_json::json!({ "name": "party" })));
    assert_eq!(code, 422, "{r}");
    // The box's own browser may ask; a question needs the kiosk page's header; the network may not.
    assert_eq!(status("POST", &format!("{local}/api/kiosk"), false), 403);
    assert_eq!(status("POST", &format!("{local}/api/kiosk"), true), 200);
    if let Some(ip) = common::lan_address() {
        let secure: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(ureq::tls::TlsConfig::builder().disable_verification(true).build())
            .http_status_as_error(false)
            .build()
            .into();
        assert_eq!(secure.get(&format!("https://{ip}:{port}/kiosk")).call().unwrap().status(), 403);
    }

    let out = Command::new("node")
        .arg(root().join("tests/browser/panel.cjs"))
        .args([&local, "kiosk", &question().display().to_string()])
        .env("IRIS_BROWSER_MODULES", &modules)
        .output()
        .unwrap();
    assert!(out.status.success(), "the kiosk phase failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report:#}");
    assert_eq!(report["links"], 0, "the kiosk links into the panel: {report}");
    assert_eq!(report["typed_heard"], "What is the capital of France?");
    assert!(report["typed_answer"].as_str().unwrap().contains("Paris"), "{report}");
    let heard = normalise(report["spoken_heard"].as_str().unwrap());
    assert!(heard.contains("capital") && heard.contains("france"), "{report}");
    assert!(!report["spoken_answer"].as_str().unwrap().is_empty(), "{report}");
    assert_eq!(report["cleared"], true, "{report}");
    assert!(report["audited"].as_array().unwrap().len() >= 2, "{report}");
}

/// A user who runs Ollama points its `ollama` client at Iris and changes nothing else.
#[test]
fn the_ollama_client_uses_iris() {
    let Some(python) = std::env::var_os("IRIS_CLIENT_PYTHON") else {
        eprintln!("IRIS_CLIENT_PYTHON is not set (deploy/test.sh sets it): the Ollama client test is skipped");
        return;
    };
    let Some(images) = std::env::var_os("IRIS_IMAGES_DIR") else {
        eprintln!("IRIS_IMAGES_DIR is not set (deploy/test.sh sets it): the Ollama client test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let token = set_up_with_token(&server);
    let cat = Path::new(&images).join("chelsea.png");
    let out = Command::new(python)
        .arg(root().join("tests/clients/ollama_client.py"))
        .args([&server.url, &token, &cat.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "the ollama client failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{got:#}");
    assert_eq!(got["models"][0], "smollm2-135m-instruct:latest", "{got}");
    assert_eq!(got["running"][0], "smollm2-135m-instruct:latest", "{got}");
    assert_eq!(got["quantization"], "Q8_0");
    assert!(got["capabilities"].as_array().unwrap().contains(&serde_json::json!("vision")), "{got}");
    assert!(got["chat_chunks"].as_u64().unwrap() > 2, "the answer was not streamed: {got}");
    assert_eq!(got["chat_done"], true);
    assert!(got["chat_eval_count"].as_u64().unwrap() > 0, "{got}");
    for answer in ["chat", "chat_whole", "generate"] {
        assert!(got[answer].as_str().unwrap().contains("Paris"), "{answer}: {got}");
    }
    assert_eq!(got["chat"], got["chat_whole"], "streamed and whole greedy answers differ: {got}");
    assert!(got["photo"].as_str().unwrap().contains("cat"), "{got}");
    assert_eq!((got["unknown_model"].as_u64(), got["bad_token"].as_u64()), (Some(404), Some(401)), "{got}");
    assert!(!got["version"].as_str().unwrap().is_empty());
}

/// A model that knows tools (Qwen2.5's template) calls a client's function through the real
/// `openai` and `ollama` clients, which send the result back.
#[test]
fn clients_give_the_model_tools_and_it_calls_them() {
    let Some(python) = std::env::var_os("IRIS_CLIENT_PYTHON") else {
        eprintln!("IRIS_CLIENT_PYTHON is not set (deploy/test.sh sets it): the tool-call test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[models]\nllm = \"qwen2.5-coder-0.5b-instruct\"\n").unwrap();
    let server = serve(dir.path());
    let token = set_up_with_token(&server);
    let out = Command::new(python).arg(root().join("tests/clients/tool_calls.py")).args([&server.url, &token]).output().unwrap();
    assert!(out.status.success(), "the clients failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{got:#}");
    let paris = serde_json::json!([{ "name": "get_weather", "arguments": { "city": "Paris" } }]);
    assert_eq!(got["openai_calls"], paris, "{got}");
    assert_eq!(got["openai_finish"], "tool_calls");
    assert_eq!(
        (got["openai_stream_calls"][0].as_str(), got["openai_stream_finish"].as_str()),
        (Some("get_weather"), Some("tool_calls")),
        "{got}"
    );
    assert!(got["openai_plain"].as_str().unwrap().contains("Paris"), "{got}");
    assert_eq!(got["ollama_calls"], paris, "{got}");
    // Each client sends the call and its result back in its own shape, and Iris takes both.
    // (What Qwen2.5-Coder-0.5B then says is poor: it repeats the call, as it does on llama.cpp
    // with the same template; the fake-model tests check the result reaches the prompt.)
    for answer in ["openai_answer", "ollama_answer"] {
        assert!(!got[answer].as_str().unwrap_or_default().is_empty(), "{answer}: {got}");
    }
}

/// `iris serve`'s voice loop follows the settings on real ALSA devices (a user-space PulseAudio
/// room): off at start, listening once the panel turns `[audio] enabled` on, answering a spoken
/// question into the status page's turns, and stopped again when turned off.
#[test]
fn the_voice_loop_follows_the_settings() {
    let Some(sessions) = std::env::var_os("IRIS_LOOP_SESSIONS").map(PathBuf::from) else {
        eprintln!("IRIS_LOOP_SESSIONS is not set (deploy/test.sh makes the spoken sessions): skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pulse = tmp.path().join("pulse");
    let script = root().join("deploy/pulse-room.sh");
    let started = Command::new(&script).arg("start").arg(&pulse).output().expect("deploy/pulse-room.sh (needs pulseaudio)");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let sound = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    let server = serve_with(tmp.path(), &[("PULSE_SERVER", &sound)]);
    let owner = set_up(&server);
    let status = || server.call(&owner, "GET", "/api/status", None).1;
    let put = |body: serde_json::Value| assert_eq!(server.call(&owner, "PUT", "/api/config", Some(body)).0, 200, "PUT /api/config");
    let wait = |what: &str, secs: u64, ok: &dyn Fn(&serde_json::Value) -> bool| {
        for _ in 0..secs * 5 {
            let s = status();
            if ok(&s) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("{what} within {secs} s: {}", status());
    };
    assert_eq!(status()["voice_loop"], false, "off by default");
    // Where each ONNX model ran, as ONNX Runtime reported it: here the CPU provider, the OCR's
    // two networks included.
    let models = status()["models"].clone();
    for task in ["tts", "vad", "ocr"] {
        let m = models.as_array().unwrap().iter().find(|m| m["task"] == task).unwrap_or_else(|| panic!("no {task} in {models}"));
        assert_eq!(m["device"], "cpu (ONNX Runtime)", "{models}");
    }
    put(serde_json::json!({ "audio": { "enabled": true } }));
    wait("the voice loop started", 20, &|s| s["voice_loop"] == true);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let played = Command::new("paplay").args(["-d", "room"]).arg(sessions.join("01.wav")).env("PULSE_SERVER", &sound).status().unwrap();
    assert!(played.success());
    let s = wait("a voice turn answered", 30, &|s| {
        s["turns"].as_array().is_some_and(|t| t.iter().any(|t| t["answer"].as_str().is_some_and(|a| a.to_lowercase().contains("paris"))))
    });
    let turn = s["turns"].as_array().unwrap().iter().find(|t| t["answer"].as_str().unwrap().to_lowercase().contains("paris")).unwrap();
    let heard = normalise(turn["transcript"].as_str().unwrap());
    assert!(heard.contains("capital") && heard.contains("france"), "{turn}");
    put(serde_json::json!({ "audio": { "enabled": false } }));
    wait("the voice loop stopped", 10, &|s| s["voice_loop"] == false);
    let _ = Command::new(&script).arg("stop").arg(&pulse).status();
}

fn kept_timers(dir: &Path) -> Vec<(f64, String)> {
    std::fs::read_to_string(dir.join("timers.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Timers are kept beside the settings with their due time: one that came due while the server
/// was down fires when it is back, one still ahead stays set.
#[test]
fn timers_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let s = set_up(&server);
    for (text, said) in [("Set a timer for 3 seconds.", "Timer set for 3 seconds"), ("Set a timer for 1 hour.", "Timer set for 1 hour")] {
        let answer = try_text(&server.url, &s, text);
        assert!(answer.contains(said), "{answer}");
    }
    let kept = kept_timers(dir.path());
    assert_eq!(kept.len(), 2, "{kept:?}");
    drop(server);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let server = serve(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kept_timers(dir.path()).len() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kept = kept_timers(dir.path());
    assert_eq!(kept.len(), 1, "the timer due while the server was down fired at start: {kept:?}");
    assert!(kept[0].1.contains("1 hour") && kept[0].0 > iris_tools::wall_clock() + 3500.0, "{kept:?}");
    drop(server);
}
