//! The deterministic intent matcher: the common phrasings of the built-in tools, in English.
//! Anything it does not recognise goes to the language model.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    Time,
    Date,
    Timer(Duration),
    Calculate(String),
    Home { service: String, target: String },
}

const SMALL: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];
const TENS: [(&str, u64); 7] =
    [("thirty", 30), ("forty", 40), ("fifty", 50), ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90)];

/// Lower case, punctuation removed except what arithmetic needs.
fn normalise(text: &str) -> String {
    let t: String = text.to_lowercase().chars().map(|c| if c.is_alphanumeric() || " +-*/^().'".contains(c) { c } else { ' ' }).collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ").trim_end_matches(['.', ' ']).to_owned()
}

/// A number word ("seven", "forty") as a number.
pub fn number_word(word: &str) -> Option<u64> {
    SMALL.iter().position(|w| *w == word).map(|n| n as u64).or_else(|| TENS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n))
}

/// Digits, a number word, or "a"/"an" (one).
fn number(word: &str) -> Option<u64> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    if matches!(word, "a" | "an") {
        return Some(1);
    }
    number_word(word)
}

fn unit(word: &str) -> Option<u64> {
    match word.trim_end_matches('s') {
        "second" | "sec" => Some(1),
        "minute" | "min" => Some(60),
        "hour" => Some(3600),
        _ => None,
    }
}

/// The length of time the words name, in seconds (0: none): "2 seconds", "a five minute",
/// "1 hour 30 minutes", "10-minute", "a quarter of an hour", "half an hour".
pub fn spoken_duration(text: &str) -> u64 {
    duration_in(&normalise(text))
}

fn duration_in(t: &str) -> u64 {
    let words: Vec<&str> = t.split(' ').collect();
    let mut total = 0;
    for (i, w) in words.iter().enumerate() {
        let before = |k: usize| i.checked_sub(k).map(|j| words[j]);
        if let Some(u) = unit(w.trim_end_matches('-')) {
            match (before(3), before(2), before(1)) {
                // "a quarter of an hour", "quarter of a minute", "half an hour"
                (Some("quarter"), Some("of"), Some("an" | "a")) | (_, Some("quarter"), Some("of")) => total += u / 4,
                (_, Some("half"), Some("an" | "a")) => total += u / 2,
                (_, _, Some(n)) => total += number(n).map_or(0, |n| n * u),
                _ => {}
            }
        } else if *w == "half" && before(1) == Some("a") && before(2) == Some("and") && before(3).and_then(unit) == Some(3600) {
            // "an hour and a half"
            total += 1800;
        } else if let Some((n, u)) = w.split_once('-').and_then(|(n, u)| Some((number(n)?, unit(u)?))) {
            total += n * u;
        }
    }
    total
}

pub fn parse(text: &str) -> Option<Intent> {
    let t = normalise(text);
    let has = |phrases: &[&str]| phrases.iter().any(|p| t.contains(p));
    if has(&["what time is it", "what's the time", "whats the time", "what is the time", "tell me the time", "current time"]) {
        return Some(Intent::Time);
    }
    if has(&["what's the date", "what is the date", "what day is it", "what is today", "today's date", "what's today"]) {
        return Some(Intent::Date);
    }
    if ["timer", "remind me in", "alarm in", "countdown", "count down", "wake me"].iter().any(|p| t.contains(p)) {
        let total = duration_in(&t);
        if total > 0 {
            return Some(Intent::Timer(Duration::from_secs(total)));
        }
    }
    for prefix in ["what is ", "what's ", "calculate ", "compute ", "how much is "] {
        if let Some(rest) = t.strip_prefix(prefix) {
            let expr = rest
                .replace("multiplied by", "*")
                .replace("divided by", "/")
                .replace(" plus ", " + ")
                .replace(" minus ", " - ")
                .replace(" times ", " * ")
                .replace(" over ", " / ")
                .replace(" to the power of ", " ^ ");
            let words_as_numbers: Vec<String> = expr
                .split(' ')
                .map(|w| number(w).filter(|_| !matches!(w, "a" | "an")).map_or_else(|| w.to_owned(), |n| n.to_string()))
                .collect();
            let expr = words_as_numbers.join(" ");
            let arithmetic = expr.chars().all(|c| c.is_ascii_digit() || " .+-*/^()".contains(c));
            if arithmetic && expr.chars().any(|c| "+-*/^".contains(c)) && expr.chars().any(|c| c.is_ascii_digit()) {
                return Some(Intent::Calculate(expr));
            }
        }
    }
    for (phrase, service) in [("turn on ", "turn_on"), ("switch on ", "turn_on"), ("turn off ", "turn_off"), ("switch off ", "turn_off")] {
        if let Some(pos) = t.find(phrase) {
            let target = t[pos + phrase.len()..].trim_start_matches("the ").trim();
            if !target.is_empty() {
                return Some(Intent::Home { service: service.into(), target: target.into() });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_phrasings() {
        assert_eq!(parse("What time is it?"), Some(Intent::Time));
        assert_eq!(parse("Hey, what's the time"), Some(Intent::Time));
        assert_eq!(parse("What day is it today?"), Some(Intent::Date));
        assert_eq!(parse("Set a timer for 2 seconds."), Some(Intent::Timer(Duration::from_secs(2))));
        assert_eq!(parse("set a five minute timer"), Some(Intent::Timer(Duration::from_secs(300))));
        assert_eq!(parse("Timer for 1 hour and 30 minutes"), Some(Intent::Timer(Duration::from_secs(5400))));
        assert_eq!(parse("Start a 10-minute timer"), Some(Intent::Timer(Duration::from_secs(600))));
        assert_eq!(spoken_duration("Wake me up in a quarter of an hour."), 900);
        assert_eq!(spoken_duration("in half an hour"), 1800);
        assert_eq!(spoken_duration("an hour and a half from now"), 5400);
        assert_eq!(spoken_duration("a countdown of three seconds"), 3);
        assert_eq!(parse("Wake me up in a quarter of an hour."), Some(Intent::Timer(Duration::from_secs(900))));
        assert_eq!(parse("What is 12 times 7?"), Some(Intent::Calculate("12 * 7".into())));
        assert_eq!(parse("what's two plus two"), Some(Intent::Calculate("2 + 2".into())));
        assert_eq!(parse("Turn on the kitchen lights"), Some(Intent::Home { service: "turn_on".into(), target: "kitchen lights".into() }));
    }

    #[test]
    fn everything_else_goes_to_the_model() {
        for t in ["What is the capital of France?", "Tell me a story", "what is love", "How many legs does a spider have?", "timer"] {
            assert_eq!(parse(t), None, "{t}");
        }
    }
}
