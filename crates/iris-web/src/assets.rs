//! The panel's pages and scripts, built into the binary from `web/`: one file to copy to a
//! box, and nothing on disk for an attacker to swap. Each page is its `web/pages/` content in
//! the one `web/layout.html`, with the navigation marking where the user is.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const LAYOUT: &str = include_str!("../../../web/layout.html");

/// Name, title, content, and whether the page shows the navigation (setup and login do not).
const PAGES: &[(&str, &str, &str, bool)] = &[
    ("status", "Status", include_str!("../../../web/pages/status.html"), true),
    ("setup", "Set up", include_str!("../../../web/pages/setup.html"), false),
    ("login", "Log in", include_str!("../../../web/pages/login.html"), false),
    ("config", "Settings", include_str!("../../../web/pages/config.html"), true),
    ("models", "Models", include_str!("../../../web/pages/models.html"), true),
    ("try", "Try it", include_str!("../../../web/pages/try.html"), true),
    ("logs", "Logs", include_str!("../../../web/pages/logs.html"), true),
    // Nothing of the panel is reachable from the kiosk: no navigation, no settings.
    ("kiosk", "Ask", include_str!("../../../web/pages/kiosk.html"), false),
];

/// The navigation, in order: link, page, label.
const NAV: &[(&str, &str, &str)] = &[
    ("/", "status", "Status"),
    ("/try", "try", "Try it"),
    ("/config", "config", "Settings"),
    ("/models", "models", "Models"),
    ("/logs", "logs", "Logs"),
];

const FILES: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../../web/static/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../web/static/app.js")),
];

fn nav(current: &str) -> String {
    let items: String = NAV
        .iter()
        .map(|(href, page, label)| {
            let here = if *page == current { " aria-current=\"page\"" } else { "" };
            format!("    <li><a href=\"{href}\"{here}>{label}</a></li>\n")
        })
        .collect();
    format!(
        "  <nav aria-label=\"Main\">\n  <ul>\n{items}    <li><button type=\"button\" id=\"logout\">Log out</button></li>\n  </ul>\n  </nav>\n"
    )
}

/// Every page, composed once.
fn rendered() -> &'static [(&'static str, String)] {
    static PAGES_HTML: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    PAGES_HTML.get_or_init(|| {
        PAGES
            .iter()
            .map(|(name, title, main, with_nav)| {
                let html = LAYOUT
                    .replace("{{title}}", title)
                    .replace("{{page}}", name)
                    .replace("{{nav}}", &if *with_nav { nav(name) } else { String::new() })
                    .replace("{{main}}", main);
                (*name, html)
            })
            .collect()
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "No such page.").into_response()
}

pub async fn page(page: Option<Path<String>>) -> Response {
    let name = page.map_or_else(|| "status".to_owned(), |Path(p)| p);
    match rendered().iter().find(|(n, _)| *n == name) {
        Some((_, html)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html.clone()).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_whole_and_marks_where_it_is() {
        for (name, html) in rendered() {
            assert!(!html.contains("{{"), "{name} has an unfilled slot");
            assert!(html.contains(&format!("data-page=\"{name}\"")) && html.contains("<h1>"), "{name}");
            let here = html.matches("aria-current=\"page\"").count();
            assert_eq!(here, usize::from(NAV.iter().any(|(_, p, _)| p == name)), "{name}");
        }
    }
}
