//! The panel's own API: setup, login, status, settings, API tokens, logs.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iris_config::Config;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::SESSION_LIFETIME;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::gate::{cookie, Caller, DEVICE_COOKIE, SESSION_COOKIE};
use crate::AppState;

#[derive(Deserialize)]
pub struct Password {
    password: String,
}

fn with_session(body: Value, session: &str) -> Response {
    let cookie = format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_LIFETIME.as_secs());
    ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

/// The owner's browser is remembered for a year, for the login throttle (see `Auth::who`).
fn with_device(mut response: Response, device: Option<String>) -> Response {
    if let Some(d) = device {
        let cookie = format!("{DEVICE_COOKIE}={d}; HttpOnly; SameSite=Strict; Path=/api/; Max-Age={}", 365 * 24 * 3600);
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Whose password tries count together: this browser, if the owner has logged in from it.
fn who(s: &AppState, caller: &Caller, headers: &axum::http::HeaderMap) -> crate::auth::Who {
    s.auth.who(caller.ip, cookie(headers, DEVICE_COOKIE).next().as_deref())
}

/// Whether setup is done and whether this browser is logged in (with its CSRF token).
pub async fn state(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Json<Value> {
    let csrf = cookie(&headers, SESSION_COOKIE).find_map(|id| s.auth.session(&id));
    Json(json!({ "set_up": s.auth.is_set_up(), "logged_in": csrf.is_some(), "csrf": csrf, "name": s.engine.config().assistant.name }))
}

#[derive(Deserialize)]
pub struct Setup {
    /// The one-time code Iris printed when it started.
    #[serde(default)]
    code: String,
    password: String,
}

pub async fn setup(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    JsonBody(p): JsonBody<Setup>,
) -> ApiResult<Response> {
    let who = who(&s, &caller, &headers);
    let st = s.clone();
    // Both write panel.json: on the blocking pool.
    let result = tokio::task::spawn_blocking(move || st.auth.set_up(&who, &p.code, &p.password).map(|()| st.auth.new_session())).await?;
    let session = match result {
        Ok(session) => session,
        Err(e) => {
            if matches!(e, ApiError::Forbidden(_)) {
                s.engine.stats.log("warn", format!("a wrong setup code from {}", caller.ip));
            }
            return Err(e);
        }
    };
    s.engine.stats.log("info", "the owner's password was set".into());
    Ok(with_session(json!({ "ok": true }), &session))
}

pub async fn login(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    JsonBody(p): JsonBody<Password>,
) -> ApiResult<Response> {
    if !s.auth.is_set_up() {
        return Err(ApiError::Conflict("Iris is not set up yet; choose a password on the setup page".into()));
    }
    let who = who(&s, &caller, &headers);
    let st = s.clone();
    let result = tokio::task::spawn_blocking(move || st.auth.login(&who, &p.password)).await?;
    match result {
        Ok((session, device)) => Ok(with_device(with_session(json!({ "ok": true }), &session), device)),
        Err(e) => {
            s.engine.stats.log("warn", format!("failed login from {}", caller.ip));
            Err(match e {
                ApiError::Unauthorized => ApiError::Forbidden("wrong password".into()),
                other => other,
            })
        }
    }
}

pub async fn logout(State(s): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    if let Some(id) = caller.session {
        // Writes panel.json: on the blocking pool.
        let _ = tokio::task::spawn_blocking(move || s.auth.logout(&id)).await;
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Json(json!({ "ok": true }))).into_response()
}

#[derive(Deserialize)]
pub struct NewPassword {
    current: String,
    password: String,
}

pub async fn change_password(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    JsonBody(p): JsonBody<NewPassword>,
) -> ApiResult<Response> {
    let who = who(&s, &caller, &headers);
    let st = s.clone();
    let session =
        tokio::task::spawn_blocking(move || st.auth.change_password(&who, &p.current, &p.password).map(|()| st.auth.new_session()))
            .await??;
    Ok(with_session(json!({ "ok": true }), &session))
}

/// Models and the device each really runs on, memory, recent turns, errors.
pub async fn status(State(s): State<AppState>) -> Json<Value> {
    let e = &s.engine;
    let errors: Vec<_> = e.stats.log_lines().into_iter().filter(|l| l.level == "error").rev().take(10).collect();
    Json(json!({
        "name": e.config().assistant.name,
        "version": env!("CARGO_PKG_VERSION"),
        "models": e.loaded(),
        // What keeps the assistant from answering: models not installed yet.
        "missing": e.missing(),
        "voice": e.voice_name(),
        "voice_loop": e.voice_loop_running(),
        "memory": memory(),
        "uptime_s": START.get_or_init(std::time::Instant::now).elapsed().as_secs(),
        "turns": e.stats.recent_turns(),
        "errors": errors,
        "counters": e.stats.counters(),
    }))
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Resident memory of Iris and the machine's total and available memory, in bytes.
fn memory() -> Value {
    let field = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let all = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    json!({
        "iris_rss": field(&own, "VmRSS:"),
        "total": field(&all, "MemTotal:"),
        "available": field(&all, "MemAvailable:"),
    })
}

pub async fn get_config(State(s): State<AppState>) -> Json<Config> {
    Json(s.engine.config())
}

/// Validates, applies, then saves. A setting that fails any step answers 422 naming the field,
/// and the settings in force (and on disk) stay as they were.
/// Changes the fields the body names, in force at once and saved; the rest stay as they are
/// (`{"speech": {"rate": 1.2}}` changes the rate only).
pub async fn put_config(State(s): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let mut merged = serde_json::to_value(s.engine.config()).map_err(|e| ApiError::Internal(e.to_string()))?;
    merge(&mut merged, body);
    let config: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
        let field = e.path().to_string();
        let problem = e.into_inner().to_string();
        ApiError::Invalid { field: if field == "." { "config".into() } else { field }, problem }
    })?;
    config.validate(&s.config_path).map_err(|e| match e {
        iris_config::ConfigError::Invalid { field, problem, .. } => ApiError::Invalid { field: field.into(), problem },
        other => ApiError::Invalid { field: "config".into(), problem: other.to_string() },
    })?;
    save_and_apply(&s, config).await
}

/// Checks, puts in force and saves `config`; on a failed save the old settings stay in force.
async fn save_and_apply(s: &AppState, config: Config) -> ApiResult<Json<Value>> {
    // Checking (files, a GPU), loading and writing all block: off the async threads.
    let st = s.clone();
    let cfg = config.clone();
    let applied = tokio::task::spawn_blocking(move || -> ApiResult<iris_engine::Applied> {
        st.engine.check(&cfg)?;
        let old = st.engine.config();
        let applied = st.engine.apply(cfg.clone()).map_err(|e| match e {
            iris_engine::EngineError::Load(m) => ApiError::Invalid { field: "models".into(), problem: m },
            other => other.into(),
        })?;
        if let Err(e) = cfg.save(&st.config_path) {
            // Not on disk means not in force: put the old settings back.
            st.engine.apply(old).ok();
            st.engine.stats.log("error", format!("settings not saved: {e}"));
            return Err(ApiError::Internal(e.to_string()));
        }
        Ok(applied)
    })
    .await??;
    Ok(Json(json!({ "applied": format!("{applied:?}").to_lowercase(), "config": config })))
}

/// The profiles for each use (`pipelines/profiles/`), and the one last chosen.
pub async fn profiles(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let all = iris_config::Profile::all().map_err(|e| ApiError::Internal(e.to_string()))?;
    let list: Vec<Value> =
        all.iter().map(|p| json!({ "name": p.name, "title": p.title, "description": p.description, "pipeline": p.pipeline })).collect();
    Ok(Json(json!({ "current": s.engine.config().profile, "profiles": list })))
}

#[derive(Deserialize)]
pub struct ChooseProfile {
    name: String,
}

/// Lays a profile's settings over the current ones, and saves and applies them as the
/// Settings page does.
pub async fn choose_profile(State(s): State<AppState>, JsonBody(body): JsonBody<ChooseProfile>) -> ApiResult<Json<Value>> {
    let invalid = |e: iris_config::ProfileError| ApiError::Invalid { field: "profile".into(), problem: e.to_string() };
    let profile = iris_config::Profile::named(&body.name).map_err(invalid)?;
    let config = profile.apply(&s.engine.config()).map_err(invalid)?;
    s.engine.stats.log("info", format!("profile {} chosen", profile.name));
    save_and_apply(&s, config).await
}

/// `patch` laid over `base`: objects field by field, anything else replaced whole.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Push to talk: the voice loop listens now, without the wake word.
pub async fn talk(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    if s.engine.request_talk() {
        Ok(Json(json!({ "listening": true })))
    } else {
        Err(ApiError::Conflict("the voice loop is not running; turn it on with `[audio] enabled = true` in config.toml".into()))
    }
}

pub async fn logs(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "lines": s.engine.stats.log_lines() }))
}

pub async fn tokens(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "tokens": s.auth.tokens() }))
}

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
}

/// The secret is shown once, here.
pub async fn create_token(State(s): State<AppState>, JsonBody(t): JsonBody<NewToken>) -> ApiResult<Json<Value>> {
    let (record, secret) = s.auth.create_token(&t.name)?;
    s.engine.stats.log("info", format!("API token {:?} created", record.name));
    Ok(Json(json!({ "token": record, "secret": secret })))
}

pub async fn revoke_token(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.auth.revoke_token(&id)?;
    s.engine.stats.log("info", format!("API token {id} revoked"));
    Ok(Json(json!({ "ok": true })))
}
