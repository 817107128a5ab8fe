//! Ollama's API on fake backends: the shapes a client parses, the doors, and the refusals.
//! `crates/iris/tests/serve.rs` drives the same routes with the real `ollama` client.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::{json, Value};

const LLM: &str = "smollm2-135m-instruct";

async fn token(p: &TestPanel) -> String {
    let owner = owner(&p).await;
    let r = send(&p.app, owner.req("POST", "/api/tokens", Some(json!({ "name": "open webui" })))).await.json();
    r["secret"].as_str().unwrap().to_owned()
}

fn with_token(method: &str, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    match body {
        Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
}

#[tokio::test]
async fn ollama_routes_need_a_token_or_a_session() {
    let p = panel();
    for (method, path) in [("GET", "/api/tags"), ("GET", "/api/version"), ("POST", "/api/chat"), ("POST", "/api/generate")] {
        let r = send(&p.app, Request::builder().method(method).uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let t = token(&p).await;
    let r = send(&p.app, with_token("GET", "/api/version", &t, None)).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["version"].as_str().unwrap().split('.').count() == 3, "{}", r.text());
    // The token opens Ollama's routes, not the panel's own.
    assert_eq!(send(&p.app, with_token("GET", "/api/status", &t, None)).await.status, 401);
    assert_eq!(send(&p.app, with_token("GET", "/api/tags", "iris_wrong", None)).await.status, 401);
}

#[tokio::test]
async fn tags_show_and_ps_list_the_loaded_model() {
    let p = panel();
    let t = token(&p).await;
    let tags = send(&p.app, with_token("GET", "/api/tags", &t, None)).await.json();
    let m = &tags["models"][0];
    assert_eq!(m["name"], format!("{LLM}:latest"));
    assert_eq!(m["details"]["quantization_level"], "Q8_0");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64, "{m}");
    assert!(m["size"].as_u64().unwrap() > 100_000_000, "{m}");
    let ps = send(&p.app, with_token("GET", "/api/ps", &t, None)).await.json();
    assert_eq!(ps["models"][0]["model"], format!("{LLM}:latest"));
    let show = send(&p.app, with_token("POST", "/api/show", &t, Some(json!({ "model": LLM })))).await;
    assert_eq!(show.status, 200, "{}", show.text());
    assert!(show.json()["capabilities"].as_array().unwrap().contains(&json!("vision")), "{}", show.text());
    let r = send(&p.app, with_token("POST", "/api/show", &t, Some(json!({ "model": "llama3.2" })))).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains(LLM), "the error names the model there is: {}", r.text());
}

#[tokio::test]
async fn chat_streams_json_lines_and_ends_with_the_counts() {
    let p = panel();
    let t = token(&p).await;
    let ask = json!({ "model": format!("{LLM}:latest"), "messages": [{ "role": "user", "content": "Say hello" }] });
    // Ollama streams unless told not to.
    let r = send(&p.app, with_token("POST", "/api/chat", &t, Some(ask.clone()))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let got = lines(&r.text());
    assert!(got.len() >= 3, "{got:?}");
    let (last, pieces) = got.split_last().unwrap();
    let text: String = pieces.iter().map(|l| l["message"]["content"].as_str().unwrap().to_owned()).collect();
    assert_eq!(text, "Hello there.");
    assert!(pieces.iter().all(|l| l["done"] == false && l["message"]["role"] == "assistant"));
    assert_eq!((last["done"].as_bool(), last["done_reason"].as_str()), (Some(true), Some("stop")));
    assert_eq!(last["eval_count"], 3);
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0 && last["total_duration"].as_u64().unwrap() > 0, "{last}");
    assert!(last["created_at"].as_str().unwrap().ends_with('Z'));

    let mut whole = ask.clone();
    whole["stream"] = json!(false);
    whole["options"] = json!({ "temperature": 0, "num_predict": 2, "num_ctx": 4096 });
    let r = send(&p.app, with_token("POST", "/api/chat", &t, Some(whole))).await.json();
    assert_eq!((r["message"]["content"].as_str(), r["done_reason"].as_str()), (Some("Hello there"), Some("length")));

    // An empty conversation loads the model, as in Ollama.
    let r = send(&p.app, with_token("POST", "/api/chat", &t, Some(json!({ "model": LLM, "messages": [] })))).await.json();
    assert_eq!(r["done_reason"], "load");
}

#[tokio::test]
async fn generate_takes_a_prompt_a_system_text_and_images() {
    let p = panel();
    let t = token(&p).await;
    let ask = json!({ "model": LLM, "prompt": "Say hello", "system": "Be brief.", "stream": false });
    let r = send(&p.app, with_token("POST", "/api/generate", &t, Some(ask))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["response"], "Hello there.");
    let streamed = send(&p.app, with_token("POST", "/api/generate", &t, Some(json!({ "model": LLM, "prompt": "Hi" })))).await;
    let got = lines(&streamed.text());
    let text: String = got.iter().map(|l| l["response"].as_str().unwrap().to_owned()).collect();
    assert_eq!(text, "Hello there.");
    // Ollama sends images as bare base64; a broken one is a 400 naming it, in Ollama's shape.
    let broken = json!({ "model": LLM, "prompt": "What is this?", "images": ["iVBORw0KGgo="], "stream": false });
    let r = send(&p.app, with_token("POST", "/api/generate", &t, Some(broken))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("image 1"), "{}", r.text());
}

#[tokio::test]
async fn what_iris_cannot_do_is_refused_clearly() {
    let p = panel();
    let t = token(&p).await;
    let json_format = json!({ "model": LLM, "messages": [{ "role": "user", "content": "hi" }], "format": "json" });
    let r = send(&p.app, with_token("POST", "/api/chat", &t, Some(json_format))).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("format"), "{}", r.text());
    let r = send(&p.app, with_token("POST", "/api/pull", &t, Some(json!({ "model": "llama3.2" })))).await;
    assert_eq!(r.status, 501);
    assert!(r.json()["error"].as_str().unwrap().contains("Models page"), "{}", r.text());
    let r = send(&p.app, with_token("POST", "/api/embed", &t, Some(json!({ "model": LLM, "input": "x" })))).await;
    assert_eq!(r.status, 501);
    let huge = json!({ "model": LLM, "messages": vec![json!({ "role": "user", "content": "" }); 300] });
    let r = send(&p.app, with_token("POST", "/api/chat", &t, Some(huge))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r =
        send(&p.app, with_token("POST", "/api/chat", &t, Some(json!({ "model": LLM, "messages": [{ "role": "robot", "content": "x" }] }))))
            .await;
    assert!(r.json()["error"].as_str().unwrap().contains("robot"), "{}", r.text());
}
