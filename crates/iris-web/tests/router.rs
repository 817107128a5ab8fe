//! Every route, in-process (`tower::ServiceExt::oneshot`), on fake backends: the doors, the
//! refusals a hostile or careless client gets, and the answers a real client relies on.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::json;

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn before_setup_only_the_setup_page_answers() {
    let p = panel();
    for page in ["/", "/config", "/try", "/models", "/logs", "/login"] {
        let r = send(&p.app, get(page)).await;
        assert_eq!((r.status, r.header("location").as_str()), (303, "/setup"), "{page}");
    }
    assert_eq!(send(&p.app, get("/setup")).await.status, 200);
    for api in ["/api/status", "/api/config", "/api/models", "/api/logs", "/api/tokens", "/v1/models", "/metrics"] {
        assert_eq!(send(&p.app, get(api)).await.status, 401, "{api}");
    }
    let r = send(&p.app, post_json("/api/login", json!({ "password": "anything at all" }))).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let state = send(&p.app, get("/api/state")).await.json();
    assert_eq!(state["set_up"], false);
}

#[tokio::test]
async fn setup_sets_a_strict_session_once() {
    let p = panel();
    let code = code(&p);
    assert!(std::fs::read_to_string(p.dir.path().join("setup-code")).unwrap().contains(&code));
    let r = send(&p.app, post_json("/api/setup", json!({ "password": "short", "code": code }))).await;
    assert_eq!((r.status, r.json()["error"]["field"].as_str()), (422, Some("password")));
    // Without the code printed where Iris started, nobody claims the box; guesses are throttled.
    let r = send(&p.app, post_json("/api/setup", json!({ "password": PASSWORD }))).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("setup code is wrong") && r.text().contains("setup-code"), "{}", r.text());
    for _ in 1..iris_web::FREE_FAILURES {
        assert_eq!(send(&p.app, post_json("/api/setup", json!({ "password": PASSWORD, "code": "1111-2222-3333" }))).await.status, 403);
    }
    let r = send(&p.app, post_json("/api/setup", json!({ "password": PASSWORD, "code": code }))).await;
    assert_eq!(r.status, 429, "the right code waits out the throttle too: {}", r.text());
    let r =
        send_from(&p.app, post_json("/api/setup", json!({ "password": PASSWORD, "code": format!(" {code} ") })), "192.0.2.7:5000").await;
    assert_eq!(r.status, 200);
    let cookie = r.header("set-cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    // The password is stored as an argon2 hash, never in clear.
    let stored = std::fs::read_to_string(p.dir.path().join("panel.json")).unwrap();
    assert!(stored.contains("$argon2id$") && !stored.contains(PASSWORD), "{stored}");
    let again = send(&p.app, post_json("/api/setup", json!({ "password": "another password", "code": code }))).await;
    assert_eq!(again.status, 409);
    assert!(!p.dir.path().join("setup-code").exists(), "the code is used once");
    assert_eq!(send(&p.app, get("/setup")).await.header("location"), "/login");
    assert_eq!(send(&p.app, get("/config")).await.header("location"), "/login");
}

#[tokio::test]
async fn unauthenticated_and_missing_csrf_are_refused() {
    let p = panel();
    let owner = owner(&p).await;
    assert_eq!(send(&p.app, get("/api/status")).await.status, 401);
    let bad_cookie = Request::get("/api/status").header("cookie", "iris_session=0123456789abcdef").body(Body::empty()).unwrap();
    assert_eq!(send(&p.app, bad_cookie).await.status, 401);

    let mut cfg = send(&p.app, owner.req("GET", "/api/config", None)).await.json();
    cfg["assistant"]["name"] = json!("Ada");
    let no_csrf = Request::put("/api/config")
        .header("cookie", &owner.cookie)
        .header("content-type", "application/json")
        .body(Body::from(cfg.to_string()))
        .unwrap();
    let r = send(&p.app, no_csrf).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let wrong = Browser { csrf: "f".repeat(64), ..owner.clone() };
    assert_eq!(send(&p.app, wrong.req("PUT", "/api/config", Some(cfg.clone()))).await.status, 403);
    assert_eq!(send(&p.app, wrong.req("POST", "/api/tokens", Some(json!({ "name": "x" })))).await.status, 403);
    assert_eq!(send(&p.app, owner.req("PUT", "/api/config", Some(cfg))).await.status, 200);
    // Reading needs no CSRF token; every page answers once logged in, with security headers.
    for page in ["/", "/config", "/try", "/models", "/logs", "/static/app.js", "/static/style.css"] {
        let r = send(&p.app, Request::get(page).header("cookie", &owner.cookie).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, 200, "{page}");
        assert!(r.header("content-security-policy").contains("default-src 'self'"), "{page}");
        assert_eq!(r.header("x-frame-options"), "DENY");
    }
    assert_eq!(send(&p.app, get("/nonsense")).await.status, 303);

    let r = send(&p.app, owner.req("POST", "/api/logout", None)).await;
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(send(&p.app, owner.req("GET", "/api/status", None)).await.status, 401);
}

#[tokio::test]
async fn a_bad_config_names_the_field_and_changes_nothing() {
    let p = panel();
    let owner = owner(&p).await;
    let good = send(&p.app, owner.req("GET", "/api/config", None)).await.json();
    let cases = [
        (json!({ "speech": { "rate": 9.0 } }), "speech.rate"),
        (json!({ "speech": { "rate": "fast" } }), "speech.rate"),
        (json!({ "assistant": { "temperature": 7 } }), "assistant.temperature"),
        (json!({ "speech": { "language": "English" } }), "speech.language"),
        (json!({ "models": { "llm": "no-such-model" } }), "models.llm"),
        (json!({ "tools": { "webhook_url": "ftp://x" } }), "tools.webhook_url"),
        (json!({ "speech": { "volume_typo": 1 } }), "speech"),
    ];
    for (change, field) in cases {
        let mut cfg = good.clone();
        for (section, values) in change.as_object().unwrap() {
            for (k, v) in values.as_object().unwrap() {
                cfg[section][k] = v.clone();
            }
        }
        let r = send(&p.app, owner.req("PUT", "/api/config", Some(cfg))).await;
        assert_eq!(r.status, 422, "{change}: {}", r.text());
        let err = r.json();
        assert!(err["error"]["field"].as_str().unwrap().starts_with(field), "{change}: {err}");
        assert_eq!(send(&p.app, owner.req("GET", "/api/config", None)).await.json(), good, "{change} left the old config");
        assert!(!p.config_path.exists(), "{change} wrote the file");
    }
    // A good change is applied and saved; only a model change loads models again.
    let loads = p.loads.load(std::sync::atomic::Ordering::SeqCst);
    let mut cfg = good.clone();
    cfg["assistant"]["system_prompt"] = json!("You are Ada, brief and kind.");
    let r = send(&p.app, owner.req("PUT", "/api/config", Some(cfg.clone()))).await.json();
    assert_eq!(r["applied"], "settings");
    assert_eq!(p.loads.load(std::sync::atomic::Ordering::SeqCst), loads);
    cfg["models"]["asr"] = json!("whisper-base");
    let r = send(&p.app, owner.req("PUT", "/api/config", Some(cfg.clone()))).await.json();
    assert_eq!(r["applied"], "reloaded");
    assert_eq!(p.loads.load(std::sync::atomic::Ordering::SeqCst), loads + 1);
    let saved = iris_config::Config::load(&p.config_path).unwrap();
    assert_eq!((saved.assistant.system_prompt.as_str(), saved.models.asr.as_str()), ("You are Ada, brief and kind.", "whisper-base"));
    let status = send(&p.app, owner.req("GET", "/api/status", None)).await.json();
    assert!(status["models"].as_array().unwrap().iter().any(|m| m["id"] == "whisper-base"), "{status}");
}

#[tokio::test]
async fn model_names_are_checked_before_any_path_is_built() {
    let p = panel();
    let owner = owner(&p).await;
    for evil in ["..%2F..%2Fetc%2Fpasswd", "..", "a%00b", "%2Fetc"] {
        for (method, suffix) in [("POST", "/verify"), ("POST", "/pull"), ("DELETE", "")] {
            let r = send(&p.app, owner.req(method, &format!("/api/models/{evil}{suffix}"), None)).await;
            assert_eq!(r.status, 400, "{method} {evil}{suffix}: {}", r.text());
        }
    }
    assert_eq!(send(&p.app, owner.req("POST", "/api/models/no-such-model/verify", None)).await.status, 404);
    let r = send(&p.app, owner.req("DELETE", "/api/models/whisper-tiny.en", None)).await;
    assert_eq!(r.status, 409, "a model in use is not removed: {}", r.text());
    let list = send(&p.app, owner.req("GET", "/api/models", None)).await.json();
    let tiny = list["models"].as_array().unwrap().iter().find(|m| m["id"] == "whisper-tiny.en").unwrap().clone();
    assert_eq!((tiny["state"].as_str(), tiny["in_use"].as_bool()), (Some("missing"), Some(true)));
    let r = send(&p.app, owner.req("POST", "/api/models/whisper-tiny.en/verify", None)).await.json();
    assert_eq!(r["ok"], false);
    assert!(r["problem"].as_str().unwrap().contains("not installed"), "{r}");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let p = panel();
    let owner = owner(&p).await;
    let big = vec![b'a'; iris_web::UPLOAD_LIMIT + 1024];
    let r = send(&p.app, multipart("/api/try", &[("audio", Some("huge.wav"), &big)], Some(&owner), None)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let huge_prompt = json!({ "assistant": { "system_prompt": "x".repeat(iris_web::JSON_LIMIT) } });
    assert_eq!(send(&p.app, owner.req("PUT", "/api/config", Some(huge_prompt))).await.status, 413);
}

#[tokio::test]
async fn failed_logins_slow_one_address_without_locking_the_owner_out() {
    let p = panel();
    owner(&p).await;
    let attacker = "198.51.100.7:4000";
    for _ in 0..5 {
        let r = send_from(&p.app, post_json("/api/login", json!({ "password": "guess guess" })), attacker).await;
        assert_eq!(r.status, 403);
    }
    let r = send_from(&p.app, post_json("/api/login", json!({ "password": PASSWORD })), attacker).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=300).contains(&wait), "the wait is bounded: {wait}");
    // The owner, elsewhere, is not affected.
    let r = send_from(&p.app, post_json("/api/login", json!({ "password": PASSWORD })), "192.0.2.50:1234").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn api_tokens_open_v1_and_metrics_only_until_revoked() {
    let p = panel();
    let owner = owner(&p).await;
    let r = send(&p.app, owner.req("POST", "/api/tokens", Some(json!({ "name": "home assistant" })))).await.json();
    let secret = r["secret"].as_str().unwrap().to_owned();
    let id = r["token"]["id"].as_str().unwrap().to_owned();
    let listed = send(&p.app, owner.req("GET", "/api/tokens", None)).await.json();
    assert!(!listed.to_string().contains(&secret) && !listed.to_string().contains("sha256"), "{listed}");
    let bearer = |uri: &str, t: &str| Request::get(uri).header("authorization", format!("Bearer {t}")).body(Body::empty()).unwrap();
    let models = send(&p.app, bearer("/v1/models", &secret)).await;
    assert_eq!(models.status, 200);
    let ids: Vec<_> = models.json()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&"smollm2-135m-instruct".to_owned()), "{ids:?}");
    let metrics = send(&p.app, bearer("/metrics", &secret)).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("iris_up 1") && text.contains("iris_model_loaded{task=\"llm\""), "{text}");
    assert!(text.contains("iris_http_requests_total{route=\"/v1/models\",status=\"200\"} 1"), "{text}");
    // A token is for other tools, not for the panel's own API.
    assert_eq!(send(&p.app, bearer("/api/status", &secret)).await.status, 401);
    assert_eq!(send(&p.app, bearer("/v1/models", "iris_wrong")).await.status, 401);
    assert_eq!(send(&p.app, owner.req("DELETE", &format!("/api/tokens/{id}"), None)).await.status, 200);
    assert_eq!(send(&p.app, bearer("/v1/models", &secret)).await.status, 401);
}

fn sse_data(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:"))).map(str::to_owned).collect()
}

#[tokio::test]
async fn openai_chat_transcription_and_speech() {
    let p = panel();
    let owner = owner(&p).await;
    let chat = json!({ "model": "smollm2-135m-instruct", "messages": [{ "role": "user", "content": "Say hello" }] });
    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(chat.clone()))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["choices"][0]["message"]["content"], "Hello there.");
    assert_eq!(j["usage"]["completion_tokens"], 3);

    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(streamed))).await;
    assert!(r.header("content-type").starts_with("text/event-stream"));
    let data = sse_data(&r.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let text: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["choices"][0]["delta"]["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(text, "Hello there.");

    // An image as a data URL goes to the vision backend; a broken one is a clear 400.
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image_png(&mut out);
        out.into_inner()
    };
    use base64::Engine as _;
    let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
    let with_image = json!({ "messages": [{ "role": "user", "content": [
        { "type": "text", "text": "What is this?" }, { "type": "image_url", "image_url": { "url": url } } ] }] });
    assert_eq!(send(&p.app, owner.req("POST", "/v1/chat/completions", Some(with_image))).await.status, 200);
    let broken = json!({ "messages": [{ "role": "user", "content": [
        { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } } ] }] });
    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(broken))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("image 1"), "the error names the image: {}", r.text());

    let r = send(
        &p.app,
        multipart("/v1/audio/transcriptions", &[("file", Some("q.wav"), &wav(44_100)), ("model", None, b"whisper-1")], Some(&owner), None),
    )
    .await;
    assert_eq!((r.status, r.json()["text"].as_str()), (200, Some("what time is it")));
    let r =
        send(&p.app, multipart("/v1/audio/transcriptions", &[("file", Some("broken.wav"), b"RIFF\x10\0\0\0WAVEfmt ")], Some(&owner), None))
            .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("broken.wav") && !r.text().contains("/tmp"), "{}", r.text());

    let r = send(
        &p.app,
        owner.req(
            "POST",
            "/v1/audio/speech",
            Some(json!({ "model": "tts-1", "voice": "alloy", "input": "Hi there.", "response_format": "wav" })),
        ),
    )
    .await;
    assert_eq!((r.status, r.header("content-type").as_str()), (200, "audio/wav"));
    assert_eq!(&r.body[..4], b"RIFF");
    let r = send(&p.app, owner.req("POST", "/v1/audio/speech", Some(json!({ "input": "Hi", "response_format": "mp3" })))).await;
    assert_eq!(r.status, 400);
}

fn image_png(out: &mut std::io::Cursor<Vec<u8>>) {
    // A 2x2 PNG written by hand with the `image` crate's encoder would need a dependency;
    // this is the smallest valid one, from the PNG specification's layout.
    let bytes = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49, 0x44, 0x41, 0x54, 0x08, 0xD7, 0x63,
        0xF8, 0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
        0x42, 0x60, 0x82,
    ];
    std::io::Write::write_all(out, &bytes).unwrap();
}

#[tokio::test]
async fn try_it_streams_transcript_answer_and_audio() {
    let p = panel();
    let owner = owner(&p).await;
    let r = send(&p.app, multipart("/api/try", &[("audio", Some("q.wav"), &wav(16_000)), ("text", None, b"")], Some(&owner), None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ").or_else(|| l.strip_prefix("event:"))).collect();
    assert!(events.contains(&"transcript") && events.contains(&"delta") && events.contains(&"audio"), "{events:?}");
    assert_eq!(events.last(), Some(&"done"), "{body}");
    let done: serde_json::Value = serde_json::from_str(sse_data(&body).last().unwrap()).unwrap();
    assert_eq!((done["transcript"].as_str(), done["answer"].as_str()), (Some("what time is it"), Some("Hello there.")));
    let status = send(&p.app, owner.req("GET", "/api/status", None)).await.json();
    assert_eq!(status["turns"][0]["answer"], "Hello there.");
    let r = send(&p.app, multipart("/api/try", &[("image", Some("cat.jpg"), b"not an image")], Some(&owner), None)).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("cat.jpg"), "{}", r.text());
    assert_eq!(send(&p.app, multipart("/api/try", &[], Some(&owner), None)).await.status, 400);
}

#[tokio::test]
async fn password_change_logs_everyone_out() {
    let p = panel();
    let owner = owner(&p).await;
    let r = send(&p.app, owner.req("POST", "/api/password", Some(json!({ "current": "wrong one!", "password": "a new password" })))).await;
    assert_eq!(r.status, 403);
    let r = send(&p.app, owner.req("POST", "/api/password", Some(json!({ "current": PASSWORD, "password": "a new password" })))).await;
    assert_eq!(r.status, 200);
    assert_eq!(send(&p.app, owner.req("GET", "/api/status", None)).await.status, 401);
    let fresh = browser_from(&p.app, &r.header("set-cookie")).await;
    assert_eq!(send(&p.app, fresh.req("GET", "/api/status", None)).await.status, 200);
    assert_eq!(send(&p.app, post_json("/api/login", json!({ "password": "a new password" }))).await.status, 200);
}

#[tokio::test]
async fn push_to_talk_needs_the_voice_loop_and_a_login() {
    let p = panel();
    let owner = owner(&p).await;
    assert_eq!(send(&p.app, post_json("/api/talk", json!({}))).await.status, 401);
    let r = send(&p.app, owner.req("POST", "/api/talk", None)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("[audio] enabled"));
    p.engine.set_voice_loop(true);
    assert_eq!(send(&p.app, owner.req("POST", "/api/talk", None)).await.status, 200);
    assert!(p.engine.take_talk_request() && !p.engine.take_talk_request());
    assert_eq!(send(&p.app, owner.req("GET", "/api/status", None)).await.json()["voice_loop"], true);
}
