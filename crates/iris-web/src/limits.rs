//! What one client may cost the box, in one place: connections, time to send a request,
//! requests waiting for the models, and sizes (the README's "Limits" lists them all). The
//! HTTP server is served here, on hyper directly, because these need the accept loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::error::ApiError;
use crate::AppState;

/// Open connections at once; one more is answered 503 and closed, so idle sockets cannot use
/// up the descriptors the panel needs.
pub const MAX_CONNECTIONS: usize = 256;
/// A request's headers must arrive within this (also how long an idle keep-alive connection
/// is kept): slow-header connections were held open for 76 s and more.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body must arrive within this (32 MiB at ~5 Mbit/s).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests for the models (chat, speech, transcription, Try it) running or waiting at once;
/// more get 503 with Retry-After at once rather than a long wait in line.
pub const MAX_MODEL_REQUESTS: usize = 4;
/// Chat requests: messages, text in all of them, and images.
pub const MAX_MESSAGES: usize = 256;
pub const MAX_PROMPT_BYTES: usize = 64 << 10;
pub const MAX_IMAGES: usize = 4;

/// Serves `app` until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let shutdown = crate::shutdown();
    tokio::pin!(shutdown);
    let mut pause = Duration::from_millis(50);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return Ok(()),
        };
        let (mut stream, peer) = match accepted {
            Ok(c) => {
                pause = Duration::from_millis(50);
                c
            }
            // Out of descriptors, a client gone mid-handshake: transient; say so, back off.
            Err(e) => {
                if pause <= Duration::from_millis(50) {
                    state.engine.stats.log("error", format!("http: cannot accept a connection ({e}); retrying"));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let body = r#"{"error":{"message":"too many connections; try again in 1 s"}}"#;
                let busy = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\n\
                     connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(busy.as_bytes())).await;
            });
            continue;
        };
        let app = app.clone();
        let tls = state.tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(req.map(Body::new))
            });
            match tls {
                None => connection(stream, service).await,
                Some(tls) => {
                    // TLS and plain HTTP share the port: a TLS client speaks first, a handshake.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
                        Ok(Ok(1)) if first[0] == crate::tls::HANDSHAKE => {
                            if let Ok(Ok(secure)) = tokio::time::timeout(HEADER_TIMEOUT, tls.acceptor.accept(stream)).await {
                                connection(secure, service).await;
                            }
                        }
                        Ok(Ok(1)) if peer.ip().is_loopback() => connection(stream, service).await,
                        Ok(Ok(1)) => connection(stream, hyper::service::service_fn(to_https)).await,
                        _ => {}
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves one connection within the header deadline.
async fn connection<I, S>(io: I, service: S)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    <S::ResBody as http_body::Body>::Data: Send,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// Plain HTTP from the network: the same address over HTTPS (308 keeps the method and body).
async fn to_https(req: Request<hyper::body::Incoming>) -> Result<Response, std::convert::Infallible> {
    let host = req.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let ok = !host.is_empty() && host.len() <= 255 && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    let response = if ok {
        axum::http::Response::builder()
            .status(axum::http::StatusCode::PERMANENT_REDIRECT)
            .header(axum::http::header::LOCATION, format!("https://{host}{path}"))
            .body(Body::from("Iris answers over HTTPS on this port.\n"))
    } else {
        axum::http::Response::builder().status(axum::http::StatusCode::BAD_REQUEST).body(Body::from("use https://\n"))
    };
    Ok(response.unwrap_or_default())
}

/// The largest archive of models the Models page takes.
pub const MODEL_ARCHIVE_LIMIT: u64 = 16 << 30;
/// An archive of models (hundreds of MB from a phone over Wi-Fi) may take as long as it needs
/// at this slow but steady rate, on top of [`BODY_TIMEOUT`].
pub const SLOW_UPLOAD_BYTES_PER_S: u64 = 128 * 1024;
/// Where that archive is sent.
pub const MODEL_UPLOAD_PATH: &str = "/api/models/upload";

/// Every request body gets [`BODY_TIMEOUT`] to arrive; an archive of models, time for its
/// declared length at [`SLOW_UPLOAD_BYTES_PER_S`] more.
pub async fn body_deadline(req: Request, next: Next) -> Response {
    let mut limit = BODY_TIMEOUT;
    if req.uri().path() == MODEL_UPLOAD_PATH {
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
            .min(MODEL_ARCHIVE_LIMIT);
        limit += Duration::from_secs(declared / SLOW_UPLOAD_BYTES_PER_S);
    }
    let (parts, body) = req.into_parts();
    let timed = Timed { inner: body, deadline: Some(Box::pin(tokio::time::sleep(limit))), limit, _permit: None };
    next.run(Request::from_parts(parts, Body::new(timed))).await
}

/// Model routes: a place among [`MAX_MODEL_REQUESTS`], held until the response is sent (a
/// streamed answer holds it to its end), or 503 at once.
pub async fn model_queue(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(permit) = state.model_slots.clone().try_acquire_owned() else {
        return ApiError::Busy { retry_after_s: 2 }.into_response();
    };
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    // The permit rides along with the body; no deadline on the way out.
    let held = Timed { inner: body, deadline: None, limit: BODY_TIMEOUT, _permit: Some(permit) };
    Response::from_parts(parts, Body::new(held))
}

pub fn model_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_MODEL_REQUESTS))
}

/// A body that fails once its deadline passes, and may hold a queue place until it ends.
struct Timed {
    inner: Body,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    limit: Duration,
    _permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
            let e = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the request body did not arrive within {} s", self.limit.as_secs()),
            );
            return Poll::Ready(Some(Err(axum::Error::new(e))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
