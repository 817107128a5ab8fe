//! One streamed chat completion: the request, then OpenAI's server-sent events read line by
//! line, every line and the whole answer bounded, each piece handed on as it comes.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::SyncSender;

use serde_json::Value;

/// The longest event line a server may send (one piece of text is a few bytes).
const MAX_LINE: u64 = 256 << 10;
/// The most an answer may hold in all.
const MAX_ANSWER: u64 = 4 << 20;

pub enum Event {
    Text(String),
    /// A piece of the `index`th tool call: part of its name and of its arguments' JSON text.
    ToolCall {
        index: usize,
        name: String,
        arguments: String,
    },
    Usage {
        prompt: usize,
        completion: usize,
    },
    Done,
    Failed(String),
}

/// Runs the request and sends what comes; returns when the answer ends, fails, or nobody
/// listens any more (the turn ended: dropping the response closes the connection, which
/// tells the server to stop generating).
pub fn stream(agent: &ureq::Agent, url: &str, key: &str, body: &Value, tx: &SyncSender<Event>) {
    let mut req = agent.post(url).header("accept", "text/event-stream").header("content-type", "application/json");
    if !key.is_empty() {
        req = req.header("authorization", &format!("Bearer {key}"));
    }
    let resp = match req.send(body.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return drop(tx.send(Event::Failed(e.to_string()))),
    };
    let status = resp.status();
    let mut reader = BufReader::new(resp.into_body().into_reader().take(MAX_ANSWER));
    if !status.is_success() {
        let mut text = String::new();
        let _ = reader.by_ref().take(2048).read_to_string(&mut text);
        return drop(tx.send(Event::Failed(format!("HTTP {status}: {}", message(&text)))));
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => return drop(tx.send(Event::Failed("the answer ended without [DONE]".into()))),
            Ok(n) if n as u64 == MAX_LINE && line.last() != Some(&b'\n') => {
                return drop(tx.send(Event::Failed(format!("an event line is longer than {MAX_LINE} bytes"))))
            }
            Ok(_) => {}
            Err(e) => return drop(tx.send(Event::Failed(format!("reading the answer: {e}")))),
        }
        let text = String::from_utf8_lossy(&line);
        let Some(data) = text.trim_end().strip_prefix("data:").map(str::trim_start) else { continue };
        let events = parse(data);
        let last = matches!(events.last(), Some(Event::Done | Event::Failed(_)));
        for e in events {
            if tx.send(e).is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// What one `data:` line says.
fn parse(data: &str) -> Vec<Event> {
    if data == "[DONE]" {
        return vec![Event::Done];
    }
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return vec![Event::Failed(format!("an event is not JSON: {}", data.chars().take(120).collect::<String>()))];
    };
    if let Some(e) = v.get("error") {
        return vec![Event::Failed(message(&e.to_string()))];
    }
    let mut out = Vec::new();
    if let Some(t) = v["choices"][0]["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(Event::Text(t.to_owned()));
    }
    for call in v["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
        let f = &call["function"];
        out.push(Event::ToolCall {
            index: call["index"].as_u64().unwrap_or(0) as usize,
            name: f["name"].as_str().unwrap_or("").to_owned(),
            arguments: f["arguments"].as_str().unwrap_or("").to_owned(),
        });
    }
    if let (Some(p), Some(c)) = (v["usage"]["prompt_tokens"].as_u64(), v["usage"]["completion_tokens"].as_u64()) {
        out.push(Event::Usage { prompt: p as usize, completion: c as usize });
    }
    out
}

/// The message of an OpenAI-style error body, else the body's start.
fn message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let m =
        v.as_ref().and_then(|v| v["error"]["message"].as_str().or(v["message"].as_str()).or(v["error"].as_str()).or(v["detail"].as_str()));
    m.unwrap_or(body).chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_usage_errors_and_the_end() {
        let got = parse(r#"{"choices":[{"index":0,"delta":{"content":"Par"}}]}"#);
        assert!(matches!(&got[..], [Event::Text(t)] if t == "Par"));
        assert!(parse(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#).is_empty());
        let got = parse(r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}"#);
        assert!(matches!(&got[..], [Event::Usage { prompt: 12, completion: 7 }]));
        assert!(matches!(&parse("[DONE]")[..], [Event::Done]));
        assert!(matches!(&parse(r#"{"error":{"message":"model not found"}}"#)[..], [Event::Failed(m)] if m == "model not found"));
        assert!(matches!(&parse("<html>")[..], [Event::Failed(m)] if m.contains("not JSON")));
        assert_eq!(message(r#"{"detail":"Not Found"}"#), "Not Found");
    }
}
