//! The panel's pages and scripts, built into the binary from `web/`: one file to copy to a
//! box, and nothing on disk for an attacker to swap.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const PAGES: &[(&str, &str)] = &[
    ("status", include_str!("../../../web/status.html")),
    ("setup", include_str!("../../../web/setup.html")),
    ("login", include_str!("../../../web/login.html")),
    ("config", include_str!("../../../web/config.html")),
    ("models", include_str!("../../../web/models.html")),
    ("try", include_str!("../../../web/try.html")),
    ("logs", include_str!("../../../web/logs.html")),
];

const FILES: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../../web/static/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../web/static/app.js")),
];

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "No such page.").into_response()
}

pub async fn page(page: Option<Path<String>>) -> Response {
    let name = page.map_or_else(|| "status".to_owned(), |Path(p)| p);
    match PAGES.iter().find(|(n, _)| *n == name) {
        Some((_, html)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], *html).into_response()
        }
        None => not_found(),
    }
}

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "no-cache")], *body).into_response(),
        None => not_found(),
    }
}
