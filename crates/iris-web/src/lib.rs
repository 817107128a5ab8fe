//! `iris serve`: the panel a headless box is set up from, and the APIs other tools use.
//!
//! Secure by default: nothing but the setup page answers until the owner has chosen a
//! password; then every page and API needs a session (cookie, with a CSRF token for changes)
//! or, for `/v1` and `/metrics`, an API token created in the panel. The routes hold no model:
//! they call the [`iris_engine::Engine`] the binary built.

mod assets;
mod auth;
mod chat;
mod error;
mod gate;
pub mod limits;
mod metrics;
mod models;
mod ollama;
mod openai;
mod panel;
pub mod tls;
mod try_it;
mod upload;

pub use auth::SETUP_CODE_FILE;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use iris_engine::Engine;

pub use auth::{Auth, FREE_FAILURES};
pub use error::ApiError;
pub use models::ModelShelf;
pub use openai::check_chat_body;
pub use try_it::read_form_bytes;

/// JSON bodies: settings, chat messages without images.
pub const JSON_LIMIT: usize = 1 << 20;
/// Uploads: a WAV or a photo, or a chat request carrying one as a data URL.
pub const UPLOAD_LIMIT: usize = 32 << 20;

pub struct Panel {
    pub engine: Arc<Engine>,
    /// The settings file the panel edits.
    pub config_path: PathBuf,
    pub auth: Auth,
    pub models: ModelShelf,
    pub http: metrics::HttpCounters,
    /// Places for requests that use the models (see [`limits::model_queue`]).
    model_slots: Arc<tokio::sync::Semaphore>,
    /// HTTPS (see [`tls`]); `None` serves plain HTTP to everyone.
    pub tls: Option<Arc<tls::Tls>>,
}

pub type AppState = Arc<Panel>;

impl Panel {
    /// The panel state beside the settings file: `panel.json` holds the password hash and the
    /// token hashes.
    pub fn new(engine: Arc<Engine>, config_path: PathBuf, models: ModelShelf) -> Result<Self, String> {
        let dir = config_path.parent().map(PathBuf::from).unwrap_or_default();
        let auth = Auth::open(&dir.join("panel.json"))?;
        Ok(Self {
            engine,
            config_path,
            auth,
            models,
            http: metrics::HttpCounters::default(),
            model_slots: limits::model_slots(),
            tls: None,
        })
    }
}

/// Every route, behind the gate.
pub fn router(state: AppState) -> Router {
    let uploads = Router::new()
        .route("/api/try", post(try_it::try_it))
        .route("/api/kiosk", get(try_it::kiosk_info).post(try_it::kiosk))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::model_queue));
    let speech = Router::new()
        .route("/v1/audio/speech", post(openai::speech))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::model_queue));
    Router::new()
        .route("/", get(assets::page))
        .route("/{page}", get(assets::page))
        .route("/static/{file}", get(assets::file))
        .route("/api/state", get(panel::state))
        .route("/api/setup", post(panel::setup))
        .route("/api/login", post(panel::login))
        .route("/api/logout", post(panel::logout))
        .route("/api/password", post(panel::change_password))
        .route("/api/status", get(panel::status))
        .route("/api/config", get(panel::get_config).put(panel::put_config))
        .route("/api/profiles", get(panel::profiles))
        .route("/api/profile", post(panel::choose_profile))
        .route("/api/logs", get(panel::logs))
        .route("/api/talk", post(panel::talk))
        .route("/api/tokens", get(panel::tokens).post(panel::create_token))
        .route("/api/tokens/{id}", delete(panel::revoke_token))
        .route("/api/models", get(models::list))
        .route("/api/models/{id}/pull", post(models::pull))
        .route("/api/models/pack/{name}/pull", post(models::pull_pack))
        .route("/api/models/import", post(models::import))
        .route(limits::MODEL_UPLOAD_PATH, post(models::upload))
        .route("/api/models/{id}/verify", post(models::verify))
        .route("/api/models/{id}", delete(models::remove))
        .route("/v1/models", get(openai::models))
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/ps", get(ollama::ps))
        .route("/api/show", post(ollama::show))
        .route("/api/pull", post(ollama::unsupported))
        .route("/api/push", post(ollama::unsupported))
        .route("/api/create", post(ollama::unsupported))
        .route("/api/copy", post(ollama::unsupported))
        .route("/api/delete", delete(ollama::unsupported))
        .route("/api/embed", post(ollama::unsupported))
        .route("/api/embeddings", post(ollama::unsupported))
        .route("/metrics", get(metrics::metrics))
        .merge(speech)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .merge(uploads)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate))
        .layer(axum::middleware::from_fn(limits::body_deadline))
        .with_state(state)
}

/// Serves until Ctrl-C or SIGTERM, within [`limits`].
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = router(state.clone());
    limits::serve(state, app, listener).await
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path().chars().take(200).collect::<String>()))
}

async fn shutdown() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
