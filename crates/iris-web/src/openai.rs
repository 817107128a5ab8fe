//! OpenAI-compatible endpoints, so scripts and tools written for that API use Iris offline:
//! chat completions (streamed as server-sent events; images as data URLs go to the vision
//! backend), transcriptions, speech, and the model list.

use std::convert::Infallible;

use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use iris_backend::{ChatMessage, Flow, GenParams, Role};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::error::{ApiError, ApiResult, JsonBody};
use crate::limits::{MAX_IMAGES, MAX_MESSAGES, MAX_PROMPT_BYTES};
use crate::{upload, AppState};

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
    #[serde(deserialize_with = "at_most_max_messages")]
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Stop>,
    seed: Option<u64>,
}

/// The message list, refused while it is read once it passes [`MAX_MESSAGES`]: a million
/// empty messages cost 2.2 GB before anything looked at them.
fn at_most_max_messages<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Message>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<Message>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {MAX_MESSAGES} messages")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element()? {
                if out.len() == MAX_MESSAGES {
                    return Err(serde::de::Error::custom(format!(
                        "messages: more than {MAX_MESSAGES}; send the conversation's latest turns"
                    )));
                }
                out.push(m);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded)
}

/// A chat request's sizes, checked before anything is tokenised or decoded.
fn bounds(req: &ChatRequest) -> ApiResult<()> {
    let (mut text_bytes, mut images) = (0usize, 0usize);
    for m in &req.messages {
        match &m.content {
            Some(Content::Text(t)) => text_bytes += t.len(),
            Some(Content::Parts(parts)) => {
                for p in parts {
                    match p {
                        Part::Text { text } => text_bytes += text.len(),
                        Part::ImageUrl { .. } => images += 1,
                    }
                }
            }
            None => {}
        }
    }
    if text_bytes > MAX_PROMPT_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the messages hold {text_bytes} bytes of text; Iris takes at most {MAX_PROMPT_BYTES} (its models read a few thousand words)"
        )));
    }
    if images > MAX_IMAGES {
        return Err(ApiError::BadRequest(format!("the messages hold {images} images; send at most {MAX_IMAGES}")));
    }
    Ok(())
}

/// Parses and bounds a chat request body as the route does, without a model: for the fuzzer.
#[doc(hidden)]
pub fn check_chat_body(bytes: &[u8]) -> Result<(), String> {
    let req: ChatRequest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    bounds(&req).map_err(|e| e.to_string())
}

/// The conversation for the model, and an answer already known (text read from a photo).
fn prepare(s: &AppState, req: &ChatRequest) -> ApiResult<(Vec<ChatMessage>, Option<String>)> {
    if req.messages.is_empty() {
        return Err(ApiError::BadRequest("messages is empty".into()));
    }
    bounds(req)?;
    let mut out = Vec::new();
    let mut direct = None;
    let last_user = req.messages.iter().rposition(|m| m.role == "user");
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => return Err(ApiError::BadRequest(format!("message {i} has role {other:?}; use system, user or assistant"))),
        };
        let (mut text, images) = match &m.content {
            None => (String::new(), Vec::new()),
            Some(Content::Text(t)) => (t.clone(), Vec::new()),
            Some(Content::Parts(parts)) => {
                let mut text = Vec::new();
                let mut images = Vec::new();
                for p in parts {
                    match p {
                        Part::Text { text: t } => text.push(t.as_str()),
                        Part::ImageUrl { image_url } => images.push(&image_url.url),
                    }
                }
                (text.join("\n"), images)
            }
        };
        // Only the question being asked is looked at; earlier photos were answered already.
        if Some(i) == last_user {
            for (n, url) in images.iter().enumerate() {
                let image = upload::image(&upload::data_url(url)?, &format!("image {}", n + 1))?;
                match s.engine.look(&image, &text)? {
                    Some((seen, true)) => direct = Some(seen),
                    Some((seen, false)) => text.push_str(&format!("\n(The photo shows: {seen})")),
                    None => return Err(ApiError::BadRequest("this Iris has no vision model loaded".into())),
                }
            }
        }
        out.push(ChatMessage::new(role, text));
    }
    if !out.iter().any(|m| m.role == Role::System) {
        let persona = s.engine.config().assistant.system_prompt;
        if !persona.is_empty() {
            out.insert(0, ChatMessage::new(Role::System, persona));
        }
    }
    Ok((out, direct))
}

fn params(s: &AppState, req: &ChatRequest) -> ApiResult<GenParams> {
    let mut p = s.engine.gen_params();
    if let Some(n) = req.max_completion_tokens.or(req.max_tokens) {
        if !(1..=4096).contains(&n) {
            return Err(ApiError::BadRequest(format!("max_tokens is {n}; use 1 to 4096")));
        }
        p.max_tokens = n;
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::BadRequest(format!("temperature is {t}; use 0 to 2")));
        }
        p.temperature = t;
    }
    if let Some(top_p) = req.top_p {
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::BadRequest(format!("top_p is {top_p}; use more than 0, up to 1")));
        }
        p.top_p = (top_p < 1.0).then_some(top_p);
    }
    match &req.stop {
        Some(Stop::One(s)) => p.stop = vec![s.clone()],
        Some(Stop::Many(v)) => p.stop = v.clone(),
        None => {}
    }
    if p.stop.len() > 4 || p.stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::BadRequest("stop holds at most 4 texts of 1 to 256 bytes".into()));
    }
    if let Some(seed) = req.seed {
        p.seed = seed;
    }
    Ok(p)
}

fn chunk(id: &str, model: &str, delta: Value, finish: Option<&str>) -> Event {
    let body = json!({
        "id": id, "object": "chat.completion.chunk", "created": iris_engine::now_unix(), "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    Event::default().data(body.to_string())
}

pub async fn chat_completions(State(s): State<AppState>, JsonBody(req): JsonBody<ChatRequest>) -> ApiResult<Response> {
    let params = params(&s, &req)?;
    let st = s.clone();
    let (req, (messages, direct)) = tokio::task::spawn_blocking(move || {
        let prepared = prepare(&st, &req);
        prepared.map(|p| (req, p))
    })
    .await??;
    let model = req.model.clone().unwrap_or_else(|| s.engine.config().models.llm);
    let id = format!("chatcmpl-{}", crate::auth::random_hex(12));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, String>>(256);
    let engine = s.engine.clone();
    let max_tokens = params.max_tokens;
    let worker = tokio::task::spawn_blocking(move || {
        if let Some(answer) = direct {
            let _ = tx.blocking_send(Ok(answer));
            return Ok(iris_backend::GenStats::default());
        }
        let gone = || tx.is_closed();
        let result = engine.chat(&messages, &params, &gone, &mut |t| {
            if tx.blocking_send(Ok(t.to_owned())).is_err() {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(e.to_string()));
        }
        result
    });

    if !req.stream {
        let mut text = String::new();
        while let Some(piece) = rx.recv().await {
            text.push_str(&piece.map_err(ApiError::Internal)?);
        }
        let stats = worker.await?.map_err(ApiError::from)?;
        let finish = if stats.generated_tokens >= max_tokens { "length" } else { "stop" };
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": iris_engine::now_unix(), "model": model,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text.trim() }, "finish_reason": finish }],
            "usage": { "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.generated_tokens,
                       "total_tokens": stats.prompt_tokens + stats.generated_tokens },
        }))
        .into_response());
    }

    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let _ = out_tx.send(chunk(&id, &model, json!({ "role": "assistant", "content": "" }), None)).await;
        while let Some(piece) = rx.recv().await {
            let event = match piece {
                Ok(text) => chunk(&id, &model, json!({ "content": text }), None),
                Err(e) => Event::default().data(json!({ "error": { "message": e } }).to_string()),
            };
            if out_tx.send(event).await.is_err() {
                return;
            }
        }
        let finish = match worker.await {
            Ok(Ok(stats)) if stats.generated_tokens >= max_tokens => "length",
            _ => "stop",
        };
        let _ = out_tx.send(chunk(&id, &model, json!({}), Some(finish))).await;
        let _ = out_tx.send(Event::default().data("[DONE]")).await;
    });
    Ok(Sse::new(ReceiverStream::new(out_rx).map(Ok::<_, Infallible>)).into_response())
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
