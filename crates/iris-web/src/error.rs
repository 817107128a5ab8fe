//! One error type for every route: a status and a sentence saying what to do, as JSON.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("log in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// A setting that cannot be used: the field and what is wrong with it.
    #[error("`{field}` {problem}")]
    Invalid { field: String, problem: String },
    #[error("too many failed logins from this address; try again in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    #[error("Iris is busy with other requests; try again in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "message": self.to_string() } });
        if let ApiError::Invalid { field, .. } = &self {
            body["error"]["field"] = json!(field);
        }
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::Throttled { retry_after_s } | ApiError::Busy { retry_after_s } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        response
    }
}

impl From<axum::extract::multipart::MultipartError> for ApiError {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the upload is larger than Iris accepts ({} MiB)", crate::UPLOAD_LIMIT >> 20))
        } else {
            ApiError::BadRequest(format!("the upload is not a valid multipart form: {}", e.body_text()))
        }
    }
}

/// Blocking work that panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<iris_engine::EngineError> for ApiError {
    fn from(e: iris_engine::EngineError) -> Self {
        ApiError::from(&e)
    }
}

impl From<&iris_engine::EngineError> for ApiError {
    fn from(e: &iris_engine::EngineError) -> Self {
        use iris_backend::BackendError;
        use iris_engine::EngineError;
        match e {
            EngineError::Invalid { field, problem } => ApiError::Invalid { field: field.clone(), problem: problem.clone() },
            EngineError::Backend(BackendError::Request(m)) => ApiError::BadRequest(m.clone()),
            // A model not installed yet (a box started from nothing): the owner's to fetch.
            EngineError::Backend(BackendError::Load(m)) => ApiError::NotReady(m.clone()),
            // The first line only: a library's error may carry a backtrace, which is for the
            // log, not for a client.
            other => ApiError::Internal(other.to_string().lines().next().unwrap_or_default().to_owned()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Json<T>` whose refusals are this API's JSON errors, like every other error (axum's own
/// are plain text with 415/422).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match <Json<T> as axum::extract::FromRequest<S>>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(format!("the body is larger than Iris accepts here ({} KiB)", crate::JSON_LIMIT >> 10)))
            }
            Err(r) => Err(ApiError::BadRequest(r.body_text())),
        }
    }
}
