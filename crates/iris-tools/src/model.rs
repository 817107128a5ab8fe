//! The tools as functions a language model may call, for requests the intent matcher's
//! phrasings miss ("wake me in a quarter of an hour"): their specifications, and a call's
//! arguments checked and turned into the same intents the matcher gives.

use std::time::Duration;

use iris_backend::{ToolCall, ToolSpec};
use serde_json::{json, Value};

use crate::Intent;

/// The longest timer a model may set, as the matcher allows.
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec { name: name.into(), description: description.into(), parameters: parameters.to_string() }
}

pub fn specs(home: bool) -> Vec<ToolSpec> {
    let none = json!({ "type": "object", "properties": {} });
    let mut out = vec![
        spec("get_time", "The time now", none.clone()),
        spec("get_date", "Today's date", none),
        spec(
            "set_timer",
            "Start a countdown timer that rings when it ends",
            json!({ "type": "object", "properties": {
                "hours": { "type": "number" }, "minutes": { "type": "number" }, "seconds": { "type": "number" } } }),
        ),
        spec(
            "calculate",
            "Work out an arithmetic expression",
            json!({ "type": "object", "properties": { "expression": { "type": "string", "description": "e.g. 37 * 43" } },
                "required": ["expression"] }),
        ),
    ];
    if home {
        out.push(spec(
            "home_action",
            "Switch something in the home on or off",
            json!({ "type": "object", "properties": {
                "service": { "type": "string", "description": "turn_on or turn_off" },
                "target": { "type": "string", "description": "e.g. kitchen light" } }, "required": ["service", "target"] }),
        ));
    }
    out
}

/// Whether the words heard support the call. A small model reaches for a tool that is not
/// asked for ("switch the light on" as a one-hour timer) or a unit that was not said ("three
/// seconds" as three hours): such a call is not run, and the model answers in words instead.
pub fn grounded(call: &ToolCall, heard: &str) -> bool {
    let heard = heard.to_lowercase();
    let words: Vec<&str> = heard.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let says = |stems: &[&str]| words.iter().any(|w| stems.iter().any(|s| w.starts_with(s)));
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
    match call.name.as_str() {
        "get_time" => says(&["time", "clock", "late", "early"]),
        "get_date" => says(&["date", "day", "today", "month", "year"]),
        // The length the call asks for must be the one the words name.
        "set_timer" => matches!(intent(call), Ok(Some(Intent::Timer(d)))
            if d.as_secs() == crate::intent::spoken_duration(&heard)),
        "calculate" => {
            // At least one of the expression's numbers was said, in digits or words.
            let said: Vec<u64> = words.iter().filter_map(|w| w.parse().ok().or_else(|| crate::intent::number_word(w))).collect();
            let expr = args.get("expression").and_then(Value::as_str).unwrap_or("");
            expr.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).any(|n| said.contains(&n))
        }
        "home_action" => {
            let target = args.get("target").and_then(Value::as_str).unwrap_or("").to_lowercase();
            target.split_whitespace().any(|t| t.len() > 2 && words.contains(&t))
        }
        _ => false,
    }
}

/// The intent a call asks for; `Ok(None)` for a function that is not one of these; `Err` with a
/// sentence to speak for arguments that cannot be used.
pub fn intent(call: &ToolCall) -> Result<Option<Intent>, String> {
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
    let number = |k: &str| args.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())).unwrap_or(0.0);
    let text = |k: &str, max: usize| {
        args.get(k).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty() && t.len() <= max).map(str::to_owned)
    };
    Ok(Some(match call.name.as_str() {
        "get_time" => Intent::Time,
        "get_date" => Intent::Date,
        "set_timer" => {
            let secs = number("hours") * 3600.0 + number("minutes") * 60.0 + number("seconds");
            if !(secs.is_finite() && secs >= 1.0 && secs <= MAX_TIMER.as_secs_f64()) {
                return Err("I can set timers from one second to twenty-four hours.".into());
            }
            Intent::Timer(Duration::from_secs(secs.round() as u64))
        }
        "calculate" => Intent::Calculate(text("expression", 200).ok_or("I could not work that out.")?),
        "home_action" => match (text("service", 64), text("target", 128)) {
            (Some(service), Some(target)) => Intent::Home { service: service.replace(' ', "_"), target },
            _ => return Err("I did not catch what to switch.".into()),
        },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall { id: "call_0".into(), name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn calls_become_the_matchers_intents() {
        assert_eq!(intent(&call("set_timer", r#"{"minutes": 15}"#)), Ok(Some(Intent::Timer(Duration::from_secs(900)))));
        assert_eq!(intent(&call("set_timer", r#"{"hours": "1", "minutes": 30}"#)), Ok(Some(Intent::Timer(Duration::from_secs(5400)))));
        assert_eq!(intent(&call("calculate", r#"{"expression": "37 * 43"}"#)), Ok(Some(Intent::Calculate("37 * 43".into()))));
        assert_eq!(intent(&call("get_time", "{}")), Ok(Some(Intent::Time)));
        assert_eq!(intent(&call("launch", "{}")), Ok(None));
        assert!(intent(&call("set_timer", r#"{"minutes": -5}"#)).is_err());
        assert!(intent(&call("set_timer", r#"{"hours": 1e9}"#)).is_err());
        assert!(intent(&call("calculate", "{}")).is_err());
        assert_eq!(specs(false).len(), 4);
    }

    #[test]
    fn calls_the_words_do_not_support_are_not_run() {
        assert!(grounded(&call("set_timer", r#"{"minutes": 15}"#), "Wake me up in a quarter of an hour."));
        assert!(!grounded(&call("set_timer", r#"{"hours": 3}"#), "Give me a countdown of three seconds."));
        assert!(grounded(&call("set_timer", r#"{"seconds": 3}"#), "Give me a countdown of three seconds."));
        assert!(!grounded(&call("set_timer", r#"{"hours": 1}"#), "Could you switch the kitchen light on?"));
        assert!(grounded(&call("calculate", r#"{"expression": "17**2"}"#), "How much is seventeen squared?"));
        assert!(!grounded(&call("calculate", r#"{"expression": "2+2"}"#), "What is the capital of France?"));
        assert!(grounded(
            &call("home_action", r#"{"service": "turn_on", "target": "kitchen light"}"#),
            "Could you switch the kitchen light on?"
        ));
        assert!(!grounded(&call("get_time", "{}"), "Tell me a joke."));
        assert!(specs(true).iter().any(|s| s.name == "home_action"));
    }
}
