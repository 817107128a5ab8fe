//! The assistant's tools: time and date, timers, a calculator, and a "home action" that calls
//! a configured HTTP webhook (a Home Assistant service, say). Requests are recognised by a
//! deterministic intent matcher before the language model sees them.

pub mod calc;
pub mod intent;
mod model;
pub mod timers;

use std::time::Duration;

use chrono::{DateTime, Local};
use iris_backend::{Skills, ToolCall, ToolSpec};

pub use intent::Intent;
pub use timers::{wall_clock, Timers};

/// Where home actions go: the webhook's URL and an optional bearer token.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    pub token: Option<String>,
}

pub struct Tools {
    timers: Timers,
    webhook: Option<Webhook>,
    now: Box<dyn Fn() -> DateTime<Local> + Send>,
    /// The assistant's name, for questions about itself.
    name: String,
}

impl Tools {
    pub fn new(timers: Timers, webhook: Option<Webhook>) -> Self {
        Self { timers, webhook, now: Box::new(Local::now), name: "Iris".into() }
    }

    /// The name the assistant answers to (`[assistant] name`).
    pub fn named(mut self, name: &str) -> Self {
        if !name.trim().is_empty() {
            self.name = name.trim().to_owned();
        }
        self
    }

    /// The answer to an intent, in a sentence to be spoken.
    pub fn run(&mut self, intent: &Intent, text: &str) -> String {
        match intent {
            Intent::Time => format!("It is {}.", (self.now)().format("%H:%M")),
            Intent::Date => format!("Today is {}.", (self.now)().format("%A, %-d %B %Y")),
            Intent::Timer(d) => {
                let label = describe(*d);
                self.timers.set(*d, format!("timer for {label}"));
                format!("Timer set for {label}.")
            }
            Intent::Calculate(expr) => match calc::eval(expr) {
                Ok(v) => format!("That is {}.", calc::format(v)),
                Err(calc::CalcError::DivideByZero) => "That cannot be worked out: it divides by zero.".into(),
                Err(calc::CalcError::Syntax) => "I could not work that out.".into(),
            },
            Intent::About(intent::About::Identity) => {
                format!("I am {}, a voice assistant that runs entirely on this device, built from open-source parts.", self.name)
            }
            Intent::About(intent::About::Offline) => {
                "No. I run entirely on this device: I need no internet, and what you say never leaves it.".into()
            }
            Intent::Home { service, target } => match &self.webhook {
                None => "No home system is set up; add a webhook under [tools] in the settings.".into(),
                Some(hook) => match call_webhook(hook, service, target, text) {
                    Ok(()) => format!("Done: {} {}.", service.replace('_', " "), target),
                    Err(e) => format!("The home system did not answer ({e})."),
                },
            },
        }
    }
}

impl Skills for Tools {
    fn handle(&mut self, text: &str) -> Option<String> {
        intent::parse(text).map(|i| self.run(&i, text))
    }

    fn tools(&self) -> Vec<ToolSpec> {
        model::specs(self.webhook.is_some())
    }

    fn call(&mut self, call: &ToolCall, text: &str) -> Option<String> {
        if !model::grounded(call, text) {
            return None;
        }
        let intent = match model::intent(call) {
            Ok(i) => i?,
            Err(why) => return Some(why),
        };
        Some(self.run(&intent, text))
    }
}

fn describe(d: Duration) -> String {
    let s = d.as_secs();
    let part = |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => part(sec, "second"),
        (0, m, 0) => part(m, "minute"),
        (0, m, sec) => format!("{} and {}", part(m, "minute"), part(sec, "second")),
        (h, 0, 0) => part(h, "hour"),
        (h, m, _) => format!("{} and {}", part(h, "hour"), part(m, "minute")),
    }
}

fn call_webhook(hook: &Webhook, service: &str, target: &str, text: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    let mut req = agent.post(&hook.url).header("Content-Type", "application/json");
    if let Some(t) = &hook.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let body = serde_json::json!({"service": service, "target": target, "text": text}).to_string();
    req.send(body.as_bytes()).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use chrono::TimeZone;

    use super::*;

    fn tools(webhook: Option<Webhook>) -> (Tools, Arc<Mutex<Vec<(String, Instant)>>>) {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let f = fired.clone();
        let timers = Timers::new(Arc::new(move |label: &str| f.lock().unwrap().push((label.to_owned(), Instant::now()))));
        (Tools::new(timers, webhook), fired)
    }

    #[test]
    fn a_two_second_timer_fires_at_two_seconds() {
        let (mut t, fired) = tools(None);
        let set = Instant::now();
        assert_eq!(t.handle("Set a timer for 2 seconds").as_deref(), Some("Timer set for 2 seconds."));
        assert!(t.timers.wait_all(Duration::from_secs(5)));
        let fired = fired.lock().unwrap();
        assert_eq!(fired.len(), 1);
        let after = fired[0].1 - set;
        assert_eq!(fired[0].0, "timer for 2 seconds");
        assert!(after >= Duration::from_millis(1_500) && after <= Duration::from_millis(2_500), "fired after {after:?}");
    }

    #[test]
    fn time_and_date_are_the_clock_s() {
        let (mut t, _) = tools(None);
        t.now = Box::new(|| Local.with_ymd_and_hms(2026, 11, 21, 9, 5, 0).unwrap());
        assert_eq!(t.handle("what time is it?").unwrap(), "It is 09:05.");
        assert_eq!(t.handle("What day is it?").unwrap(), "Today is Saturday, 21 November 2026.");
        // And with the real clock, the real time.
        let (mut real, _) = tools(None);
        let said = real.handle("What time is it").unwrap();
        let now = Local::now();
        let ok = [now, now - chrono::Duration::minutes(1)].iter().any(|n| said == format!("It is {}.", n.format("%H:%M")));
        assert!(ok, "{said}");
    }

    #[test]
    fn calculator_and_model_questions() {
        let (mut t, _) = tools(None);
        assert_eq!(t.handle("What is 12 times 7?").unwrap(), "That is 84.");
        assert_eq!(t.handle("how much is 10 divided by 4").unwrap(), "That is 2.5.");
        assert!(t.handle("What is the capital of France?").is_none());
    }

    #[test]
    fn home_actions_call_the_webhook() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/services/light", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let (mut head, mut len) = (Vec::new(), 0);
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length: ") {
                    len = v.trim().parse().unwrap();
                }
                head.push(line);
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        let (mut t, _) = tools(Some(Webhook { url, token: Some("secret".into()) }));
        assert_eq!(t.handle("Turn on the kitchen lights").unwrap(), "Done: turn on kitchen lights.");
        let (head, body) = server.join().unwrap();
        assert!(head[0].starts_with("POST /api/services/light"), "{head:?}");
        assert!(head.iter().any(|h| h.trim() == "authorization: Bearer secret" || h.trim() == "Authorization: Bearer secret"), "{head:?}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["service"], "turn_on");
        assert_eq!(v["target"], "kitchen lights");
        // Unreachable: said, not crashed.
        let (mut t, _) = tools(Some(Webhook { url: "http://127.0.0.1:9/x".into(), token: None }));
        assert!(t.handle("switch off the fan").unwrap().starts_with("The home system did not answer"));
    }
}
