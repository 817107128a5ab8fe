//! OpenAI-compatible endpoints, so scripts and tools written for that API use Iris offline:
//! chat completions (streamed as server-sent events; images as data URLs go to the vision
//! backend), transcriptions, speech, and the model list.

use std::convert::Infallible;

use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::chat::{self, Generation, ImageRef, Piece, Said, Sampling};
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::{upload, AppState};
use iris_backend::ToolCall;

const MAX_SPEECH_INPUT: usize = iris_engine::MAX_SPEAK_BYTES;

pub async fn models(State(s): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = s
        .engine
        .loaded()
        .into_iter()
        .filter(|m| ["llm", "asr", "tts"].contains(&m.task.as_str()))
        .map(|m| json!({ "id": m.id, "object": "model", "created": 0, "owned_by": "iris", "task": m.task }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Deserialize)]
struct ImageUrl {
    url: String,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<CallIn>,
    #[serde(default)]
    tool_call_id: String,
}

/// A call of an earlier assistant message, as the client sends it back.
#[derive(Deserialize)]
struct CallIn {
    #[serde(default)]
    id: String,
    function: FunctionIn,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    /// JSON text, as OpenAI's API carries arguments.
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
pub struct ChatRequest {
    model: Option<String>,
    #[serde(deserialize_with = "chat::at_most_max_messages")]
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Stop>,
    seed: Option<u64>,
    #[serde(default, deserialize_with = "chat::at_most_max_tools")]
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
}

impl ChatRequest {
    fn said(&self) -> Vec<Said<'_>> {
        self.messages
            .iter()
            .map(|m| {
                let mut said = match &m.content {
                    None => Said::new(&m.role, String::new(), Vec::new()),
                    Some(Content::Text(t)) => Said::new(&m.role, t.clone(), Vec::new()),
                    Some(Content::Parts(parts)) => {
                        let mut text = Vec::new();
                        let mut images = Vec::new();
                        for p in parts {
                            match p {
                                Part::Text { text: t } => text.push(t.as_str()),
                                Part::ImageUrl { image_url } => images.push(ImageRef::DataUrl(&image_url.url)),
                            }
                        }
                        Said::new(&m.role, text.join("\n"), images)
                    }
                };
                said.tool_calls = m
                    .tool_calls
                    .iter()
                    .map(|c| ToolCall { id: c.id.clone(), name: c.function.name.clone(), arguments: c.function.arguments.clone() })
                    .collect();
                said.tool_call_id = m.tool_call_id.clone();
                said
            })
            .collect()
    }

    /// The tools the model is offered: none with `tool_choice` "none".
    fn tools(&self) -> ApiResult<Vec<iris_backend::ToolSpec>> {
        match &self.tool_choice {
            None => {}
            Some(Value::String(c)) if c == "auto" => {}
            Some(Value::String(c)) if c == "none" => return Ok(Vec::new()),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "tool_choice {other} is not supported; use \"auto\" (the model decides) or \"none\""
                )))
            }
        }
        chat::tool_specs(self.tools.as_deref().unwrap_or_default())
    }

    fn sampling(&self) -> ApiResult<Sampling> {
        Ok(Sampling {
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: None,
            stop: match &self.stop {
                Some(Stop::One(s)) => Some(vec![s.clone()]),
                Some(Stop::Many(v)) => Some(v.clone()),
                None => None,
            },
            seed: self.seed,
            tools: self.tools()?,
        })
    }
}

/// Parses and bounds a chat request body as the route does, without a model: for the fuzzer.
#[doc(hidden)]
pub fn check_chat_body(bytes: &[u8]) -> Result<(), String> {
    let req: ChatRequest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    chat::bounds(&req.said()).map_err(|e| e.to_string())
}

fn chunk(id: &str, model: &str, delta: Value, finish: Option<&str>) -> Event {
    let body = json!({
        "id": id, "object": "chat.completion.chunk", "created": iris_engine::now_unix(), "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    Event::default().data(body.to_string())
}

pub async fn chat_completions(State(s): State<AppState>, JsonBody(req): JsonBody<ChatRequest>) -> ApiResult<Response> {
    let params = chat::params(&s, req.sampling()?)?;
    let st = s.clone();
    let client_tools = !params.tools.is_empty();
    let (req, (messages, direct)) = tokio::task::spawn_blocking(move || {
        let prepared = chat::conversation(&st, &req.said(), client_tools);
        prepared.map(|p| (req, p))
    })
    .await??;
    let model = req.model.clone().unwrap_or_else(|| s.engine.config().models.llm);
    let id = format!("chatcmpl-{}", crate::auth::random_hex(12));
    let max_tokens = params.max_tokens;
    let Generation { pieces: mut rx, worker } = chat::generate(&s, messages, params, direct);

    if !req.stream {
        let (mut text, mut calls) = (String::new(), Vec::new());
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Text(t) => text.push_str(&t),
                Piece::Calls(c) => calls = c,
                Piece::Failed(e) => return Err(e),
            }
        }
        let stats = worker.await?.map_err(ApiError::from)?;
        let mut message = json!({ "role": "assistant", "content": text.trim() });
        let finish = if !calls.is_empty() {
            message["tool_calls"] = calls_out(&calls);
            if text.trim().is_empty() {
                message["content"] = Value::Null;
            }
            "tool_calls"
        } else if stats.generated_tokens >= max_tokens {
            "length"
        } else {
            "stop"
        };
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": iris_engine::now_unix(), "model": model,
            "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
            "usage": { "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.generated_tokens,
                       "total_tokens": stats.prompt_tokens + stats.generated_tokens },
        }))
        .into_response());
    }

    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let _ = out_tx.send(chunk(&id, &model, json!({ "role": "assistant", "content": "" }), None)).await;
        let mut called = false;
        while let Some(piece) = rx.recv().await {
            let event = match piece {
                Piece::Text(text) => chunk(&id, &model, json!({ "content": text }), None),
                Piece::Calls(calls) => {
                    called = true;
                    let mut calls = calls_out(&calls);
                    for (i, c) in calls.as_array_mut().into_iter().flatten().enumerate() {
                        c["index"] = json!(i);
                    }
                    chunk(&id, &model, json!({ "tool_calls": calls }), None)
                }
                Piece::Failed(e) => Event::default().data(json!({ "error": { "message": e.to_string() } }).to_string()),
            };
            if out_tx.send(event).await.is_err() {
                return;
            }
        }
        let finish = match worker.await {
            _ if called => "tool_calls",
            Ok(Ok(stats)) if stats.generated_tokens >= max_tokens => "length",
            _ => "stop",
        };
        let _ = out_tx.send(chunk(&id, &model, json!({}), Some(finish))).await;
        let _ = out_tx.send(Event::default().data("[DONE]")).await;
    });
    Ok(Sse::new(ReceiverStream::new(out_rx).map(Ok::<_, Infallible>)).into_response())
}

/// Calls in OpenAI's shape: the arguments as JSON text.
fn calls_out(calls: &[ToolCall]) -> Value {
    let id = crate::auth::random_hex(6);
    json!(calls
        .iter()
        .map(|c| json!({ "id": format!("{}_{id}", c.id), "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
        .collect::<Vec<_>>())
}

pub async fn transcriptions(State(s): State<AppState>, mut form: Multipart) -> ApiResult<Response> {
    let (mut audio, mut language, mut format) = (None, None, "json".to_owned());
    while let Some(field) = form.next_field().await? {
        match field.name().unwrap_or_default() {
            "file" => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let bytes = field.bytes().await?;
                audio = Some(tokio::task::spawn_blocking(move || upload::speech(&bytes, &name)).await??);
            }
            "language" => language = Some(field.text().await?).filter(|l| !l.is_empty()),
            "response_format" => format = field.text().await?,
            _ => {}
        }
    }
    let audio = audio.ok_or_else(|| ApiError::BadRequest("no `file` field: send the audio as a WAV in `file`".into()))?;
    if !["json", "text", "verbose_json"].contains(&format.as_str()) {
        return Err(ApiError::BadRequest(format!("response_format {format:?} is not supported; use json, text or verbose_json")));
    }
    let seconds = audio.len() as f64 / 16_000.0;
    let engine = s.engine.clone();
    let out = tokio::task::spawn_blocking(move || engine.transcribe(&audio, language, &iris_backend::NeverStop)).await??;
    Ok(match format.as_str() {
        "text" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out.text).into_response(),
        "verbose_json" => {
            Json(json!({ "task": "transcribe", "text": out.text, "language": out.language, "duration": seconds })).into_response()
        }
        _ => Json(json!({ "text": out.text })).into_response(),
    })
}

#[derive(Deserialize)]
pub struct SpeechRequest {
    input: String,
    #[serde(default)]
    response_format: Option<String>,
    #[allow(dead_code)]
    model: Option<String>,
    #[allow(dead_code)]
    voice: Option<String>,
}

pub async fn speech(State(s): State<AppState>, JsonBody(req): JsonBody<SpeechRequest>) -> ApiResult<Response> {
    let format = req.response_format.unwrap_or_else(|| "wav".into());
    if format != "wav" && format != "pcm" {
        return Err(ApiError::BadRequest(format!("response_format {format:?} is not supported; use wav or pcm")));
    }
    if req.input.trim().is_empty() || req.input.len() > MAX_SPEECH_INPUT {
        return Err(ApiError::BadRequest(format!("input must be 1 to {MAX_SPEECH_INPUT} bytes of text")));
    }
    let engine = s.engine.clone();
    let (samples, rate) = tokio::task::spawn_blocking(move || engine.speak(&req.input, &iris_backend::NeverStop)).await??;
    Ok(if format == "pcm" {
        (
            [(header::CONTENT_TYPE, "audio/pcm".to_owned()), (header::HeaderName::from_static("x-sample-rate"), rate.to_string())],
            iris_audio::pcm16_le(&samples),
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "audio/wav")], iris_audio::wav_bytes(&samples, rate)).into_response()
    })
}
