//! Tools on the OpenAI and Ollama APIs, on a fake model that calls one: the shapes clients
//! parse, the conversation sent back with the result, and the refusals. The real model calling
//! real tools through the real clients is in `crates/iris/tests/serve.rs`.

mod common;

use common::*;
use serde_json::{json, Value};

const CALL: [&str; 3] = ["<tool_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Paris\"}}", "\n</tool_call>"];

fn weather() -> Value {
    json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather in a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } }])
}

fn ask() -> Value {
    json!([{ "role": "user", "content": "What is the weather in Paris?" }])
}

#[tokio::test]
async fn openai_returns_tool_calls_whole_and_streamed() {
    let p = panel_saying(CALL.to_vec());
    let owner = owner(&p).await;
    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": ask(), "tools": weather() })))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let choice = &r.json()["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!((call["type"].as_str(), call["function"]["name"].as_str()), (Some("function"), Some("get_weather")));
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "city": "Paris" }));
    assert!(call["id"].as_str().unwrap().starts_with("call_"), "{call}");

    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": ask(), "tools": weather(), "stream": true }))))
        .await;
    let events: Vec<Value> = r
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
    assert!(deltas.iter().all(|d| d["content"].as_str().unwrap_or("").is_empty()), "no call text leaks as content: {deltas:?}");
    assert!(
        deltas.iter().any(|d| d["tool_calls"][0]["function"]["name"] == "get_weather" && d["tool_calls"][0]["index"] == 0),
        "{deltas:?}"
    );
    assert_eq!(events.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    // tool_choice "none": the model is offered nothing, so what it says is text.
    let r = send(
        &p.app,
        owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": ask(), "tools": weather(), "tool_choice": "none" }))),
    )
    .await;
    assert_eq!(r.json()["choices"][0]["finish_reason"], "stop");
    let r = send(
        &p.app,
        owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": ask(), "tools": weather(), "tool_choice": "required" }))),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_result_goes_back_into_the_conversation() {
    let p = panel_saying(vec!["It is sunny in Paris."]);
    let owner = owner(&p).await;
    let messages = json!([
        { "role": "user", "content": "What is the weather in Paris?" },
        { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function",
            "function": { "name": "get_weather", "arguments": "{\"city\": \"Paris\"}" } }] },
        { "role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C" },
    ]);
    let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": messages, "tools": weather() })))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "It is sunny in Paris.");
    // Ollama sends the arguments as an object and the result with no id.
    let t =
        send(&p.app, owner.req("POST", "/api/tokens", Some(json!({ "name": "x" })))).await.json()["secret"].as_str().unwrap().to_owned();
    let messages = json!([
        { "role": "user", "content": "What is the weather in Paris?" },
        { "role": "assistant", "content": "", "tool_calls": [{ "function": { "name": "get_weather", "arguments": { "city": "Paris" } } }] },
        { "role": "tool", "content": "sunny, 21 C", "tool_name": "get_weather" },
    ]);
    let body = json!({ "model": "smollm2-135m-instruct", "messages": messages, "tools": weather(), "stream": false });
    let r = send(&p.app, bearer_post("/api/chat", &t, body)).await;
    assert_eq!(r.json()["message"]["content"], "It is sunny in Paris.", "{}", r.text());
}

#[tokio::test]
async fn ollama_returns_tool_calls_with_object_arguments() {
    let p = panel_saying(CALL.to_vec());
    let owner = owner(&p).await;
    let t =
        send(&p.app, owner.req("POST", "/api/tokens", Some(json!({ "name": "x" })))).await.json()["secret"].as_str().unwrap().to_owned();
    let body = json!({ "model": "smollm2-135m-instruct", "messages": ask(), "tools": weather(), "stream": false });
    let r = send(&p.app, bearer_post("/api/chat", &t, body.clone())).await.json();
    assert_eq!(r["message"]["tool_calls"][0]["function"], json!({ "name": "get_weather", "arguments": { "city": "Paris" } }), "{r}");
    assert_eq!(r["message"]["content"], "");
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let text = send(&p.app, bearer_post("/api/chat", &t, streamed)).await.text();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["message"]["tool_calls"][0]["function"]["name"] == "get_weather"), "{text}");
    assert_eq!(lines.last().unwrap()["done"], true);
}

#[tokio::test]
async fn bad_tools_are_refused_naming_the_tool() {
    let p = panel();
    let owner = owner(&p).await;
    for (tools, says) in [
        (json!([{ "type": "function", "function": { "name": "rm -rf" } }]), "tools[0]"),
        (json!([{ "type": "retrieval" }]), "tools[0]"),
        (json!(vec![json!({ "type": "function", "function": { "name": "f" } }); 65]), "tools"),
        (json!([{ "type": "function", "function": { "name": "f", "parameters": "x" } }]), "parameters"),
    ] {
        let r = send(&p.app, owner.req("POST", "/v1/chat/completions", Some(json!({ "messages": ask(), "tools": tools })))).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(says), "{}", r.text());
    }
}

fn bearer_post(uri: &str, token: &str, body: Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}
