//! What the status page and `/metrics` show: latency histograms per stage, counters, the
//! recent turns and a short log. Bounded: an appliance that runs for months keeps the last few.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

const RECENT_TURNS: usize = 20;
const LOG_LINES: usize = 200;
/// Upper bounds of the latency buckets, in seconds (Prometheus style, cumulative).
pub const BUCKETS: [f64; 12] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Clone, Debug, Default, Serialize)]
pub struct Histogram {
    /// Counts per bucket of [`BUCKETS`] (not cumulative), then the overflow.
    pub counts: Vec<u64>,
    pub sum_s: f64,
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len() + 1];
        }
        let i = BUCKETS.iter().position(|&b| seconds <= b).unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum_s += seconds;
        self.count += 1;
    }
}

/// One finished (or failed) turn, with the time each stage was busy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TurnRecord {
    /// Seconds since the Unix epoch when the turn began.
    pub at: u64,
    /// Who asked: "panel", "openai", "wyoming".
    pub source: String,
    pub transcript: String,
    pub answer: String,
    pub stages_ms: Vec<(String, u64)>,
    pub first_audio_ms: Option<u64>,
    pub total_ms: u64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    pub at: u64,
    pub level: String,
    pub message: String,
}

#[derive(Default)]
struct Inner {
    latency: BTreeMap<String, Histogram>,
    counters: BTreeMap<String, u64>,
    turns: VecDeque<TurnRecord>,
    log: VecDeque<LogLine>,
}

#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records how long `stage` took once.
    pub fn observe(&self, stage: &str, took: Duration) {
        self.with(|i| i.latency.entry(stage.to_owned()).or_default().observe(took.as_secs_f64()));
    }

    pub fn count(&self, name: &str) {
        self.with(|i| *i.counters.entry(name.to_owned()).or_default() += 1);
    }

    pub fn log(&self, level: &str, message: String) {
        self.with(|i| {
            if i.log.len() == LOG_LINES {
                i.log.pop_front();
            }
            i.log.push_back(LogLine { at: now_unix(), level: level.to_owned(), message });
        });
    }

    pub fn record_turn(&self, turn: TurnRecord) {
        self.with(|i| {
            *i.counters.entry(if turn.error.is_some() { "turns_failed" } else { "turns" }.to_owned()).or_default() += 1;
            if i.turns.len() == RECENT_TURNS {
                i.turns.pop_front();
            }
            i.turns.push_back(turn);
        });
    }

    pub fn latency(&self) -> BTreeMap<String, Histogram> {
        self.with(|i| i.latency.clone())
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.with(|i| i.counters.clone())
    }

    /// Newest first.
    pub fn recent_turns(&self) -> Vec<TurnRecord> {
        self.with(|i| i.turns.iter().rev().cloned().collect())
    }

    /// Oldest first.
    pub fn log_lines(&self) -> Vec<LogLine> {
        self.with(|i| i.log.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_bounds() {
        let s = Stats::default();
        s.observe("asr", Duration::from_millis(30));
        s.observe("asr", Duration::from_secs(100));
        let h = &s.latency()["asr"];
        assert_eq!((h.count, h.counts[1], h.counts[BUCKETS.len()]), (2, 1, 1));
        for n in 0..(RECENT_TURNS + 5) {
            s.record_turn(TurnRecord { answer: n.to_string(), ..TurnRecord::default() });
        }
        let turns = s.recent_turns();
        assert_eq!((turns.len(), turns[0].answer.as_str()), (RECENT_TURNS, "24"));
        assert_eq!(s.counters()["turns"], 25);
    }
}
