//! The one door every request passes: setup first, then a session or an API token, a CSRF
//! token on every change made with a session, and security headers on every answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "iris_session";
pub const DEVICE_COOKIE: &str = "iris_device";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling, for the handlers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub ip: IpAddr,
    /// The session id when the caller came with a live session.
    pub session: Option<String>,
}

#[derive(PartialEq)]
enum Door {
    /// Always open: CSS and scripts, the setup state, setup and login themselves.
    Open,
    /// An HTML page: a browser is sent to setup or login instead of getting an error.
    Page(String),
    /// The panel's API: a session only.
    Panel,
    /// For other tools: a session or an API token.
    Api,
    /// The kiosk page and its questions: when the kiosk is on, for the box's own screen (or
    /// the owner).
    Kiosk,
}

fn door(path: &str) -> Door {
    match path {
        // The profiles' names and descriptions: the setup page offers them before any login.
        "/api/state" | "/api/setup" | "/api/login" | "/api/profiles" => Door::Open,
        "/kiosk" | "/api/kiosk" => Door::Kiosk,
        p if p.starts_with("/static/") => Door::Open,
        // Push to talk: the panel's button, or a token holder (a physical button, an automation).
        "/api/talk" => Door::Api,
        p if crate::ollama::PATHS.contains(&p) => Door::Api,
        p if p.starts_with("/api/") => Door::Panel,
        p if p.starts_with("/v1/") || p == "/metrics" => Door::Api,
        "/" => Door::Page("status".into()),
        p => Door::Page(p.trim_start_matches('/').to_owned()),
    }
}

/// Every value of cookie `name`, in order: a browser can send a stale one beside the live one
/// (set for another path or before a restart), so callers try each rather than the first.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |kv| kv.trim().strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
        .take(16)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let headers = req.headers();
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let session = cookie(headers, SESSION_COOKIE).find_map(|id| state.auth.session(&id).map(|csrf| (id, csrf)));
    let csrf_ok = |csrf: &str| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v == csrf);
    let set_up = state.auth.is_set_up();

    let verdict: Result<(), Response> = match door(&path) {
        Door::Open => Ok(()),
        Door::Page(page) => match (set_up, page.as_str(), &session) {
            (false, "setup", _) => Ok(()),
            (false, _, _) => Err(Redirect::to("/setup").into_response()),
            (true, "setup", _) => Err(Redirect::to("/login").into_response()),
            (true, "login", _) | (true, _, Some(_)) => Ok(()),
            (true, _, None) => Err(Redirect::to("/login").into_response()),
        },
        Door::Kiosk => kiosk(&state, ip, set_up, changes, &path, session.as_ref().map(|(_, csrf)| csrf_ok(csrf)), headers),
        d @ (Door::Panel | Door::Api) => {
            let token_ok = d == Door::Api && bearer(headers).is_some_and(|t| state.auth.token_is_valid(t));
            match &session {
                _ if token_ok => Ok(()),
                Some((_, csrf)) if !changes || csrf_ok(csrf) => Ok(()),
                Some(_) => Err(ApiError::Forbidden("the request has no valid CSRF token; reload the page".into()).into_response()),
                None => Err(ApiError::Unauthorized.into_response()),
            }
        }
    };
    let route = route_label(&path);
    req.extensions_mut().insert(Caller { ip, session: session.map(|(id, _)| id) });
    let mut response = match verdict {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    };
    state.http.count(route, response.status().as_u16());
    secure(response.headers_mut(), path.starts_with("/api/") || path.starts_with("/v1/"));
    response
}

/// The kiosk's door: shut while the kiosk is off; open to the owner's session (with its CSRF
/// token for a question) and to this machine's own browser (the kiosk screen), whose question
/// must carry `x-iris-kiosk`, a header no cross-site form can send.
fn kiosk(
    state: &AppState,
    ip: IpAddr,
    set_up: bool,
    changes: bool,
    path: &str,
    session_csrf_ok: Option<bool>,
    headers: &HeaderMap,
) -> Result<(), Response> {
    if !set_up {
        return Err(if path.starts_with("/api/") {
            ApiError::Unauthorized.into_response()
        } else {
            Redirect::to("/setup").into_response()
        });
    }
    if !state.engine.config().kiosk.enabled {
        return Err(ApiError::NotFound(
            "the kiosk is off; the owner turns it on by choosing the Kiosk profile on the Settings page".into(),
        )
        .into_response());
    }
    let local = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    };
    match session_csrf_ok {
        Some(ok) if !changes || ok => Ok(()),
        Some(_) => Err(ApiError::Forbidden("the request has no valid CSRF token; reload the page".into()).into_response()),
        None if local && (!changes || headers.get("x-iris-kiosk").is_some_and(|v| v == "1")) => Ok(()),
        None if local => Err(ApiError::Forbidden("a kiosk question comes from the kiosk page".into()).into_response()),
        None => Err(ApiError::Forbidden("the kiosk answers the box's own screen; open /kiosk there, or log in".into()).into_response()),
    }
}

/// The route a path belongs to, with names and ids collapsed, so a metric label cannot grow
/// without bound however many odd paths a client sends.
fn route_label(path: &str) -> &'static str {
    const FIXED: &[&str] = &[
        "/",
        "/api/state",
        "/api/setup",
        "/api/login",
        "/api/logout",
        "/api/password",
        "/api/status",
        "/api/config",
        "/api/logs",
        "/api/tokens",
        "/api/models",
        "/api/try",
        "/api/talk",
        "/api/kiosk",
        "/api/profiles",
        "/api/profile",
        "/api/models/import",
        "/api/models/upload",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/audio/transcriptions",
        "/v1/audio/speech",
        "/metrics",
    ];
    if let Some(f) = FIXED.iter().chain(crate::ollama::PATHS).find(|f| **f == path) {
        return f;
    }
    match path {
        p if p.starts_with("/static/") => "/static/{file}",
        p if p.starts_with("/api/tokens/") => "/api/tokens/{id}",
        p if p.starts_with("/api/models/pack/") => "/api/models/pack/{name}/pull",
        p if p.starts_with("/api/models/") && p.ends_with("/pull") => "/api/models/{id}/pull",
        p if p.starts_with("/api/models/") && p.ends_with("/verify") => "/api/models/{id}/verify",
        p if p.starts_with("/api/models/") => "/api/models/{id}",
        p if p.starts_with("/api/") || p.starts_with("/v1/") => "other",
        _ => "/{page}",
    }
}

fn secure(h: &mut HeaderMap, api: bool) {
    let mut set = |k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        "content-security-policy",
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    set("referrer-policy", "no-referrer");
    if api {
        set("cache-control", "no-store");
    }
}
