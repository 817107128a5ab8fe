//! Ollama's API beside the OpenAI one, so the tools people already point at an Ollama box
//! (Open WebUI, editor plug-ins, the `ollama` Python and JavaScript libraries) talk to Iris
//! unchanged: `/api/chat` and `/api/generate` streamed as Ollama streams them (one JSON object
//! per line, the last with `done` and the counts), `/api/tags`, `/api/ps`, `/api/show` and
//! `/api/version`. Errors are Ollama's shape, `{"error": "..."}`. The gate treats these paths
//! as API routes: a session or an API token (`OLLAMA_API_KEY` in Ollama's clients).

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iris_backend::GenStats;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::chat::{self, Generation, ImageRef, Piece, Said, Sampling};
use crate::error::{ApiError, JsonBody};
use crate::AppState;
use iris_backend::ToolCall;

/// The Ollama API level these routes follow; clients compare it to decide what to send.
pub const API_VERSION: &str = "0.12.0";

/// Ollama's paths, served or refused here, which the gate opens to API tokens.
pub const PATHS: &[&str] = &[
    "/api/version",
    "/api/tags",
    "/api/ps",
    "/api/show",
    "/api/chat",
    "/api/generate",
    "/api/pull",
    "/api/push",
    "/api/create",
    "/api/copy",
    "/api/delete",
    "/api/embed",
    "/api/embeddings",
];

/// Ollama routes that manage or embed models: Iris's models come from its own catalog with
/// pinned digests (the Models page, `iris models`), and it has no embedding model.
pub async fn unsupported(uri: axum::http::Uri) -> OllamaError {
    let what = match uri.path() {
        "/api/embed" | "/api/embeddings" => "Iris has no embedding model",
        _ => "Iris's models are installed from its catalog on the Models page or with `iris models pull`",
    };
    OllamaError(ApiError::NotImplemented(format!("{} is not supported: {what}", uri.path())))
}

/// An [`ApiError`] in Ollama's shape.
pub struct OllamaError(ApiError);

impl<E: Into<ApiError>> From<E> for OllamaError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        (self.0.status(), Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

type OllamaResult<T> = Result<T, OllamaError>;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The language model in force, by the name Ollama's clients use (`id:latest`), and its
/// catalog entry when it has one.
fn llm_name(s: &AppState) -> String {
    format!("{}:latest", s.engine.config().models.llm)
}

/// The model a request names must be the one loaded: Ollama answers 404 for a name it does not
/// have, and a client relies on that to tell a typo from an answer.
fn check_model(s: &AppState, asked: &str) -> OllamaResult<String> {
    let loaded = s.engine.config().models.llm;
    let asked = asked.trim();
    if asked == loaded || asked.strip_suffix(":latest") == Some(loaded.as_str()) {
        return Ok(llm_name(s));
    }
    Err(ApiError::NotFound(format!("model {asked:?} not found; this Iris answers with {:?} (GET /api/tags lists it)", llm_name(s))).into())
}

fn details(s: &AppState, id: &str) -> Value {
    let entry = s.models.catalog.get(id);
    let quant = entry.and_then(|e| e.format.split_whitespace().nth(1)).unwrap_or("");
    json!({ "parent_model": "", "format": "gguf", "family": "", "families": null, "parameter_size": "", "quantization_level": quant })
}

/// The loaded language model as Ollama lists a model.
fn listed(s: &AppState) -> Value {
    let id = s.engine.config().models.llm;
    let entry = s.models.catalog.get(&id);
    let size: u64 = entry.map_or(0, |e| e.files.iter().map(|f| f.size).sum());
    let digest = entry.and_then(|e| e.files.first()).map_or(String::new(), |f| f.sha256.clone());
    json!({
        "name": llm_name(s), "model": llm_name(s), "modified_at": now(), "size": size, "digest": digest,
        "details": details(s, &id),
    })
}

pub async fn version() -> Json<Value> {
    Json(json!({ "version": API_VERSION }))
}

pub async fn tags(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "models": [listed(&s)] }))
}

pub async fn ps(State(s): State<AppState>) -> Json<Value> {
    let mut m = listed(&s);
    m["expires_at"] = json!("2999-01-01T00:00:00Z");
    m["size_vram"] = json!(0);
    Json(json!({ "models": [m] }))
}

#[derive(Deserialize)]
pub struct ShowRequest {
    #[serde(alias = "name")]
    model: String,
}

pub async fn show(State(s): State<AppState>, JsonBody(req): JsonBody<ShowRequest>) -> OllamaResult<Json<Value>> {
    check_model(&s, &req.model)?;
    let id = s.engine.config().models.llm;
    let mut capabilities = vec!["completion"];
    if s.engine.sees() {
        capabilities.push("vision");
    }
    Ok(Json(json!({
        "modelfile": "", "parameters": "", "template": "", "license": s.models.catalog.get(&id).map_or("", |e| e.licence.as_str()),
        "details": details(&s, &id), "model_info": {}, "capabilities": capabilities, "modified_at": now(),
    })))
}

/// Ollama's `options`, the sampling ones Iris honours; the rest (context size, threads, GPU
/// layers) are the box's to decide and are ignored, as Ollama ignores ones a runner lacks.
#[derive(Deserialize, Default)]
pub struct Options {
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    seed: Option<u64>,
    /// -1 (unbounded) and -2 (fill the context) mean the configured limit here.
    num_predict: Option<i64>,
    stop: Option<Vec<String>>,
}

impl Options {
    fn sampling(self) -> Sampling {
        Sampling {
            max_tokens: self.num_predict.filter(|n| *n > 0).map(|n| n.min(1 << 20) as usize),
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            stop: self.stop,
            seed: self.seed,
            tools: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    tool_calls: Vec<CallIn>,
}

/// An earlier call, as Ollama's clients send it back: the arguments as a JSON object.
#[derive(Deserialize)]
struct CallIn {
    function: FunctionIn,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    model: String,
    #[serde(default, deserialize_with = "chat::at_most_max_messages")]
    messages: Vec<Message>,
    /// Ollama streams unless told not to.
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default, deserialize_with = "chat::at_most_max_tools")]
    tools: Option<Vec<Value>>,
}

#[derive(Deserialize)]
pub struct GenerateRequest {
    model: String,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    #[serde(default)]
    images: Vec<String>,
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    raw: bool,
}

/// Structured output needs a grammar sampler Iris does not have: say so rather than hand a
/// client that asked for JSON a sentence it cannot parse.
fn check_format(format: &Option<Value>) -> OllamaResult<()> {
    match format {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(f)) if f.is_empty() => Ok(()),
        Some(_) => {
            Err(ApiError::BadRequest("`format` (JSON output) is not supported by Iris; ask for JSON in the prompt instead".into()).into())
        }
    }
}

pub async fn chat(State(s): State<AppState>, JsonBody(req): JsonBody<ChatRequest>) -> OllamaResult<Response> {
    let model = check_model(&s, &req.model)?;
    check_format(&req.format)?;
    if req.messages.is_empty() {
        // Ollama's way to load a model ahead: it is loaded already.
        return Ok(Json(json!({ "model": model, "created_at": now(), "message": { "role": "assistant", "content": "" }, "done_reason": "load", "done": true })).into_response());
    }
    let mut sampling = req.options.unwrap_or_default().sampling();
    sampling.tools = chat::tool_specs(req.tools.as_deref().unwrap_or_default())?;
    let params = chat::params(&s, sampling)?;
    let stream = req.stream.unwrap_or(true);
    let messages = req.messages;
    let st = s.clone();
    let client_tools = !params.tools.is_empty();
    let (conversation, direct) = tokio::task::spawn_blocking(move || {
        let said: Vec<Said> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut said = Said::new(&m.role, m.content.clone(), m.images.iter().map(|i| ImageRef::Base64(i)).collect());
                // Ollama's calls carry no ids: a call and its result are matched by order.
                said.tool_calls = m
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(n, c)| ToolCall {
                        id: format!("call_{i}_{n}"),
                        name: c.function.name.clone(),
                        arguments: arguments_text(&c.function.arguments),
                    })
                    .collect();
                said
            })
            .collect();
        chat::conversation(&st, &said, client_tools)
    })
    .await??;
    let started = Instant::now();
    let max_tokens = params.max_tokens;
    let generation = chat::generate(&s, conversation, params, direct);
    let shape = |piece: &str| json!({ "role": "assistant", "content": piece });
    Ok(answer(generation, started, max_tokens, stream, model, "message", shape).await)
}

pub async fn generate(State(s): State<AppState>, JsonBody(req): JsonBody<GenerateRequest>) -> OllamaResult<Response> {
    let model = check_model(&s, &req.model)?;
    check_format(&req.format)?;
    if req.raw {
        return Err(ApiError::BadRequest("`raw` prompts are not supported; Iris always applies the model's chat template".into()).into());
    }
    if req.prompt.is_empty() && req.images.is_empty() {
        return Ok(
            Json(json!({ "model": model, "created_at": now(), "response": "", "done_reason": "load", "done": true })).into_response()
        );
    }
    let params = chat::params(&s, req.options.unwrap_or_default().sampling())?;
    let stream = req.stream.unwrap_or(true);
    let st = s.clone();
    let (conversation, direct) = tokio::task::spawn_blocking(move || {
        let mut said = Vec::new();
        if let Some(system) = &req.system {
            said.push(Said::new("system", system.clone(), Vec::new()));
        }
        said.push(Said::new("user", req.prompt.clone(), req.images.iter().map(|i| ImageRef::Base64(i)).collect()));
        chat::conversation(&st, &said, false)
    })
    .await??;
    let started = Instant::now();
    let max_tokens = params.max_tokens;
    let generation = chat::generate(&s, conversation, params, direct);
    Ok(answer(generation, started, max_tokens, stream, model, "response", |piece: &str| json!(piece)).await)
}

/// The final object's counts and timings (nanoseconds, as Ollama gives them).
fn done(line: &mut Value, stats: &GenStats, started: Instant, first: Option<Instant>, max_tokens: usize) {
    let end = Instant::now();
    let first = first.unwrap_or(end);
    line["done"] = json!(true);
    line["done_reason"] = json!(if stats.generated_tokens >= max_tokens { "length" } else { "stop" });
    line["total_duration"] = json!((end - started).as_nanos() as u64);
    line["load_duration"] = json!(0);
    line["prompt_eval_count"] = json!(stats.prompt_tokens);
    line["prompt_eval_duration"] = json!((first - started).as_nanos() as u64);
    line["eval_count"] = json!(stats.generated_tokens);
    line["eval_duration"] = json!((end - first).as_nanos() as u64);
}

/// The answer as Ollama sends it: streamed as JSON lines, or one object; `field` holds the
/// text (`message` for chat, `response` for generate), shaped by `shape`.
async fn answer(
    g: Generation,
    started: Instant,
    max_tokens: usize,
    stream: bool,
    model: String,
    field: &'static str,
    shape: fn(&str) -> Value,
) -> Response {
    let Generation { pieces: mut rx, worker } = g;
    let line = move |text: &str| {
        let mut v = json!({ "model": model, "created_at": now(), "done": false });
        v[field] = shape(text);
        v
    };
    // Objects to send, an error as the last; when not streaming, only the last one.
    let (tx, mut out) = tokio::sync::mpsc::channel::<Result<Value, ApiError>>(256);
    tokio::spawn(async move {
        let mut first = None;
        let mut text = String::new();
        let mut called = Value::Null;
        while let Some(piece) = rx.recv().await {
            let piece = match piece {
                Piece::Text(p) => p,
                Piece::Calls(calls) => {
                    called = calls_out(&calls);
                    if stream {
                        let mut l = line("");
                        l[field]["tool_calls"] = called.clone();
                        if tx.send(Ok(l)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Piece::Failed(e) => return drop(tx.send(Err(e)).await),
            };
            first.get_or_insert_with(Instant::now);
            if !stream {
                text.push_str(&piece);
            } else if tx.send(Ok(line(&piece))).await.is_err() {
                return;
            }
        }
        let stats = match worker.await {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => return drop(tx.send(Err(ApiError::from(e))).await),
            Err(e) => return drop(tx.send(Err(ApiError::from(e))).await),
        };
        let mut last = line(if stream { "" } else { text.trim() });
        if !stream && !called.is_null() {
            last[field]["tool_calls"] = called;
        }
        done(&mut last, &stats, started, first, max_tokens);
        let _ = tx.send(Ok(last)).await;
    });
    if !stream {
        return match out.recv().await {
            Some(Ok(whole)) => Json(whole).into_response(),
            Some(Err(e)) => OllamaError(e).into_response(),
            None => OllamaError(ApiError::Internal("the answer ended without a result".into())).into_response(),
        };
    }
    let (lines_tx, lines) = tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(256);
    tokio::spawn(async move {
        while let Some(item) = out.recv().await {
            let text = match item {
                Ok(v) => v.to_string(),
                Err(e) => json!({ "error": e.to_string() }).to_string(),
            };
            if lines_tx.send(Ok(text + "\n")).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(lines));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Calls in Ollama's shape: the arguments as a JSON object.
fn calls_out(calls: &[ToolCall]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            let arguments: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({ "function": { "name": c.name, "arguments": arguments } })
        })
        .collect();
    json!(calls)
}

/// A client's arguments as JSON text: an object as it is, a string as the JSON it holds.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}
