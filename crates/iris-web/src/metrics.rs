//! Prometheus metrics at `/metrics`, in the text exposition format, written by hand: a few
//! counters and histograms do not need a metrics library.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;

#[derive(Default)]
pub struct HttpCounters {
    by_route: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

impl HttpCounters {
    pub fn count(&self, route: &'static str, status: u16) {
        *self.by_route.lock().unwrap_or_else(|p| p.into_inner()).entry((route, status)).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<(&'static str, u16), u64> {
        self.by_route.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(s: &AppState) -> String {
    let mut out = String::new();
    let e = &s.engine;
    out.push_str("# HELP iris_up Whether Iris is serving.\n# TYPE iris_up gauge\niris_up 1\n");
    out.push_str("# HELP iris_model_loaded A model in use, with the device it runs on.\n# TYPE iris_model_loaded gauge\n");
    for m in e.loaded() {
        let _ =
            writeln!(out, "iris_model_loaded{{task=\"{}\",model=\"{}\",device=\"{}\"}} 1", label(&m.task), label(&m.id), label(&m.device));
    }
    out.push_str("# HELP iris_stage_seconds Time a stage spent on one turn or request.\n# TYPE iris_stage_seconds histogram\n");
    for (stage, h) in e.stats.latency() {
        let stage = label(&stage);
        let mut cumulative = 0;
        for (i, le) in iris_engine::BUCKETS.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "iris_stage_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "iris_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "iris_stage_seconds_sum{{stage=\"{stage}\"}} {}", h.sum_s);
        let _ = writeln!(out, "iris_stage_seconds_count{{stage=\"{stage}\"}} {}", h.count);
    }
    let counters = e.stats.counters();
    out.push_str("# HELP iris_turns_total Turns answered, by result.\n# TYPE iris_turns_total counter\n");
    let _ = writeln!(out, "iris_turns_total{{result=\"ok\"}} {}", counters.get("turns").copied().unwrap_or(0));
    let _ = writeln!(out, "iris_turns_total{{result=\"error\"}} {}", counters.get("turns_failed").copied().unwrap_or(0));
    out.push_str("# HELP iris_http_requests_total HTTP requests, by route and status.\n# TYPE iris_http_requests_total counter\n");
    for ((route, status), n) in s.http.snapshot() {
        let _ = writeln!(out, "iris_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", label(route));
    }
    out
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&s))
}
