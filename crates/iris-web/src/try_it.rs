//! "Try it": a question as an uploaded or recorded WAV, a photo and/or typed text; the
//! transcript, the answer and the spoken reply stream back as server-sent events.

use std::convert::Infallible;

use axum::extract::{Multipart, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine as _;
use iris_engine::{TurnEvent, TurnInput};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use crate::error::{ApiError, ApiResult};
use crate::{upload, AppState};

/// The parts of a multipart form Iris takes: `audio`, `image`, `text`.
pub struct Question {
    pub audio: Option<Vec<f32>>,
    pub image: Option<iris_frames::ImageFrame>,
    pub text: Option<String>,
}

pub async fn read_question(mut form: Multipart) -> ApiResult<Question> {
    let mut q = Question { audio: None, image: None, text: None };
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        let file = field.file_name().unwrap_or(&name).to_owned();
        match name.as_str() {
            "audio" | "file" => {
                let bytes = field.bytes().await?;
                if !bytes.is_empty() {
                    q.audio = Some(tokio::task::spawn_blocking(move || upload::speech(&bytes, &file)).await??);
                }
            }
            "image" => {
                let bytes = field.bytes().await?;
                if !bytes.is_empty() {
                    q.image = Some(tokio::task::spawn_blocking(move || upload::image(&bytes, &file)).await??);
                }
            }
            "text" => q.text = Some(field.text().await?).filter(|t| !t.trim().is_empty()),
            // Other fields (an OpenAI client's `model`, `language`, …) are read by the caller.
            _ => {}
        }
    }
    Ok(q)
}

/// A multipart body read as `/api/try` reads its form (the fuzz target's way in): the same
/// parser and the same decoders, from bytes and a `Content-Type`.
pub async fn read_form_bytes(content_type: &str, body: Vec<u8>) -> ApiResult<Question> {
    use axum::extract::FromRequest;
    let request = axum::http::Request::builder()
        .method("POST")
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    read_question(form).await
}

fn event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

pub async fn try_it(State(s): State<AppState>, form: Multipart) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let q = read_question(form).await?;
    if q.audio.is_none() && q.text.is_none() && q.image.is_none() {
        return Err(ApiError::BadRequest("nothing to ask: record or upload a WAV, add a photo, or type a question".into()));
    }
    Ok(answer(&s, q, "panel", false))
}

/// What the kiosk page shows before the first question.
pub async fn kiosk_info(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    let c = s.engine.config();
    axum::Json(json!({ "name": c.assistant.name, "idle_reset_s": c.kiosk.idle_reset_s }))
}

/// A visitor's question at the kiosk: spoken or typed, no photo, and no tools (a visitor sets
/// no timers and runs no home actions). Each question stands alone.
pub async fn kiosk(State(s): State<AppState>, form: Multipart) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let mut q = read_question(form).await?;
    q.image = None;
    if q.audio.is_none() && q.text.is_none() {
        return Err(ApiError::BadRequest("nothing to ask: speak or type a question".into()));
    }
    Ok(answer(&s, q, "kiosk", true))
}

/// One turn, its transcript, answer and speech streamed as server-sent events.
fn answer(s: &AppState, q: Question, source: &str, without_tools: bool) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    let engine = s.engine.clone();
    let source = source.to_owned();
    tokio::task::spawn_blocking(move || {
        let input = TurnInput { source, audio: q.audio, text: q.text, image: q.image, without_tools };
        // The browser going away cancels the turn.
        let gone = || tx.is_closed();
        let send = |e: Event| {
            let _ = tx.blocking_send(e);
        };
        let result = engine.turn(input, &gone, &mut |e| match e {
            TurnEvent::Transcript { text, is_final } => send(event("transcript", json!({ "text": text, "final": is_final }))),
            TurnEvent::Delta(d) => send(event("delta", json!({ "text": d }))),
            TurnEvent::Audio { samples, sample_rate } => {
                let wav = base64::engine::general_purpose::STANDARD.encode(iris_audio::wav_bytes(&samples, sample_rate));
                send(event("audio", json!({ "wav": wav })));
            }
        });
        match result {
            Ok(record) => send(event("done", json!(record))),
            Err(e) => send(event("error", json!({ "message": e.to_string() }))),
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::default())
}
