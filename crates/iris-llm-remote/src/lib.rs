//! A language model on another machine: any server that speaks OpenAI's chat completions
//! (vLLM, llama.cpp's `llama-server`, Ollama's `/v1`), streamed token by token into the same
//! sentence splitter as the local model. The local model stays loaded as the fallback: when the
//! server does not send its first words within `wait` (off, refused, hung, an error), the
//! local model answers that turn, the log says so once, and later turns go straight to the
//! local model for `retry_after` before the server is tried again.

mod sse;

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iris_backend::{BackendError, ChatMessage, Device, Flow, GenParams, GenStats, Llm, Role, StopFlag};
use serde_json::{json, Value};

/// Where the server is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct Server {
    /// The base URL, e.g. `http://192.168.1.20:8080/v1`.
    pub url: String,
    /// The model name the server knows; empty: the server's default.
    pub model: String,
    pub api_key: String,
    pub wait: Duration,
    pub retry_after: Duration,
}

/// A line of the log: where the server's answers went and why.
pub type LogSink = Arc<dyn Fn(String) + Send + Sync>;

/// How long the answer may stall between two pieces once it has started.
const STALL: Duration = Duration::from_secs(30);
/// How often a wait looks at the turn's stop flag.
const POLL: Duration = Duration::from_millis(20);

pub struct RemoteLlm {
    server: Server,
    local: Box<dyn Llm>,
    agent: ureq::Agent,
    /// Turns go to the local model until then, after the server failed.
    down_until: Option<Instant>,
    log: LogSink,
}

/// What came of asking the server.
enum Failure {
    /// Nothing was said yet: the local model can answer instead.
    BeforeText(String),
    /// The answer broke off after some of it was handed on.
    AfterText(String),
    Cancelled,
}

impl RemoteLlm {
    pub fn new(server: Server, local: Box<dyn Llm>, log: LogSink) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(server.wait))
            // A server that accepted but never answers must not hold the reader thread forever.
            .timeout_recv_response(Some(server.wait.max(Duration::from_secs(10)) * 2))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .build()
            .into();
        Self { server, local, agent, down_until: None, log }
    }

    fn body(&self, messages: &[ChatMessage], params: &GenParams) -> Value {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut v = json!({ "role": m.role.as_str(), "content": m.content });
                if !m.tool_calls.is_empty() {
                    let calls: Vec<Value> = m
                        .tool_calls
                        .iter()
                        .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
                        .collect();
                    v["tool_calls"] = json!(calls);
                }
                if m.role == Role::Tool {
                    v["tool_call_id"] = json!(m.tool_call_id);
                }
                v
            })
            .collect();
        let mut body = json!({ "messages": messages, "stream": true, "max_tokens": params.max_tokens, "temperature": params.temperature });
        if !self.server.model.is_empty() {
            body["model"] = json!(self.server.model);
        }
        if let Some(p) = params.top_p {
            body["top_p"] = json!(p);
        }
        if !params.stop.is_empty() {
            // OpenAI's API takes at most four.
            body["stop"] = json!(params.stop.iter().take(4).collect::<Vec<_>>());
        }
        if params.temperature > 0.0 {
            body["seed"] = json!(params.seed);
        }
        if !params.tools.is_empty() {
            body["tools"] = json!(params.tools.iter().map(iris_backend::ToolSpec::to_openai).collect::<Vec<_>>());
        }
        body
    }

    /// Starts the request on a thread of its own, so the wait for the first words is a deadline
    /// this side keeps whatever the socket does.
    fn start(&self, body: Value) -> Receiver<sse::Event> {
        let (tx, rx) = sync_channel(64);
        let agent = self.agent.clone();
        let url = format!("{}/chat/completions", self.server.url.trim_end_matches('/'));
        let key = self.server.api_key.clone();
        // A thread that cannot start drops `tx`: the wait below sees the channel closed and the
        // local model answers.
        let _ = std::thread::Builder::new().name("iris-llm-server".into()).spawn(move || sse::stream(&agent, &url, &key, &body, &tx));
        rx
    }

    fn ask(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, Failure> {
        let rx = self.start(self.body(messages, params));
        let first_by = Instant::now() + self.server.wait;
        let mut stats = GenStats::default();
        let mut said = false;
        // Calls come as pieces of name and arguments; they are handed on whole, in the
        // `<tool_call>` form the local models use, when the answer ends.
        let mut calls: Vec<(String, String)> = Vec::new();
        loop {
            let deadline = if said { Instant::now() + STALL } else { first_by };
            let event = loop {
                if stop.should_stop() {
                    return Err(Failure::Cancelled);
                }
                let now = Instant::now();
                if now >= deadline {
                    let why = if said {
                        format!("the answer stalled for {} s", STALL.as_secs())
                    } else {
                        format!("no answer within {} ms", self.server.wait.as_millis())
                    };
                    return Err(if said { Failure::AfterText(why) } else { Failure::BeforeText(why) });
                }
                match rx.recv_timeout(POLL.min(deadline - now)) {
                    Ok(e) => break e,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        let why = "the connection closed before the answer ended".to_owned();
                        return Err(if said { Failure::AfterText(why) } else { Failure::BeforeText(why) });
                    }
                }
            };
            match event {
                sse::Event::Text(t) => {
                    said = true;
                    stats.generated_tokens += 1;
                    if stats.generated_tokens > params.max_tokens.saturating_mul(4) {
                        return Err(Failure::AfterText(format!(
                            "it sent more than {} pieces for {} tokens",
                            stats.generated_tokens, params.max_tokens
                        )));
                    }
                    if on_text(&t) == Flow::Stop {
                        return Ok(stats);
                    }
                }
                sse::Event::Usage { prompt, completion } => {
                    stats.prompt_tokens = prompt;
                    stats.prefill_tokens = prompt;
                    stats.generated_tokens = completion.max(stats.generated_tokens);
                }
                sse::Event::ToolCall { index, name, arguments } => {
                    said = true;
                    if index >= 64 {
                        return Err(Failure::AfterText(format!("it sent a tool call with index {index}")));
                    }
                    if calls.len() <= index {
                        calls.resize(index + 1, (String::new(), String::new()));
                    }
                    calls[index].0.push_str(&name);
                    calls[index].1.push_str(&arguments);
                }
                sse::Event::Done => {
                    for (name, arguments) in calls.iter().filter(|(n, _)| !n.is_empty()) {
                        let arguments = if arguments.trim().is_empty() { "{}" } else { arguments.as_str() };
                        on_text(&format!("<tool_call>\n{{\"name\": {}, \"arguments\": {arguments}}}\n</tool_call>", json!(name)));
                    }
                    return Ok(stats);
                }
                sse::Event::Failed(why) => return Err(if said { Failure::AfterText(why) } else { Failure::BeforeText(why) }),
            }
        }
    }
}

impl Llm for RemoteLlm {
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        let url = self.server.url.clone();
        if let Some(until) = self.down_until {
            if Instant::now() < until {
                return self.local.generate(messages, params, stop, on_text);
            }
        }
        match self.ask(messages, params, stop, on_text) {
            Ok(stats) => {
                if self.down_until.take().is_some() {
                    (self.log)(format!("llm: the server at {url} answers again"));
                }
                Ok(stats)
            }
            Err(Failure::Cancelled) => Err(BackendError::Cancelled),
            Err(Failure::BeforeText(why)) => {
                self.down_until = Some(Instant::now() + self.server.retry_after);
                (self.log)(format!(
                    "llm: the server at {url} failed ({why}); the local model answers this turn and the next ones for {} s",
                    self.server.retry_after.as_secs()
                ));
                self.local.generate(messages, params, stop, on_text)
            }
            Err(Failure::AfterText(why)) => {
                self.down_until = Some(Instant::now() + self.server.retry_after);
                (self.log)(format!("llm: the server at {url} broke off an answer ({why})"));
                Err(BackendError::Inference(format!("the language model server at {url} broke off the answer: {why}")))
            }
        }
    }

    fn device(&self) -> Device {
        Device::Other(format!("server {} (local fallback on {})", self.server.url, self.local.device()))
    }
}
