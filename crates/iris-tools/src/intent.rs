//! The deterministic intent matcher: the common phrasings of the built-in tools, in English.
//! Anything it does not recognise goes to the language model.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    Time,
    Date,
    Timer(Duration),
    Calculate(String),
    Home {
        service: String,
        target: String,
    },
    /// A question about the assistant itself: who it is, or whether it needs the internet.
    About(About),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum About {
    /// "Who are you?", "What is your name?", "Who made you?"
    Identity,
    /// "Do you need the internet?", "Do you send what I say to the cloud?"
    Offline,
}

/// Questions about the assistant, as whole utterances (after an optional "hey iris"): a small
/// model answers them from its training ("created by OpenAI"), not from what Iris is.
const IDENTITY: [&str; 13] = [
    "who are you",
    "what are you",
    "what is your name",
    "what's your name",
    "whats your name",
    "what are you called",
    "what should i call you",
    "tell me about yourself",
    "introduce yourself",
    "who made you",
    "who created you",
    "who built you",
    "who programmed you",
];
const OFFLINE: [&str; 10] = [
    "do you need the internet",
    "do you need internet",
    "do you need an internet connection",
    "do you work without the internet",
    "do you work without internet",
    "can you work without the internet",
    "can you work without internet",
    "are you online",
    "are you connected to the internet",
    "do you use the internet",
];

/// The question with a leading "hey iris" / "iris" (any assistant name) and trailing words of
/// address left off, for the whole-utterance phrases.
fn about(t: &str) -> Option<About> {
    let t = t.trim_end_matches(['?', '.', '!', ' ']);
    let t = t.strip_prefix("hey ").unwrap_or(t);
    let rest =
        |p: &str| t == p || t.split_once(' ').is_some_and(|(_, r)| r == p) || t.strip_prefix(p).is_some_and(|r| r.starts_with(" to work"));
    if IDENTITY.iter().any(|p| rest(p)) {
        return Some(About::Identity);
    }
    if OFFLINE.iter().any(|p| rest(p)) {
        return Some(About::Offline);
    }
    // "Do you send what I say to the cloud?", "Does what I say leave this device?"
    let sends = ["do you send", "do you upload", "does what i say", "is what i say", "does my voice"].iter().any(|p| t.starts_with(p));
    let away =
        ["cloud", "internet", "server", "leave this", "leave the device", "sent anywhere", "go anywhere"].iter().any(|w| t.contains(w));
    (sends && away).then_some(About::Offline)
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
    let t: String = text.to_lowercase().chars().map(|c| if c.is_alphanumeric() || " +-*/^().'%".contains(c) { c } else { ' ' }).collect();
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

/// Spoken fractions, percentages and powers as arithmetic (each phrase starts at a word).
const FRACTIONS: [(&str, &str); 16] = [
    (" three quarters of ", " 3 / 4 * "),
    (" a quarter of ", " 1 / 4 * "),
    (" one quarter of ", " 1 / 4 * "),
    (" quarter of ", " 1 / 4 * "),
    (" two thirds of ", " 2 / 3 * "),
    (" a third of ", " 1 / 3 * "),
    (" one third of ", " 1 / 3 * "),
    (" a half of ", " 1 / 2 * "),
    (" one half of ", " 1 / 2 * "),
    (" half of ", " 1 / 2 * "),
    (" twice ", " 2 * "),
    (" double ", " 2 * "),
    (" percent of ", " / 100 * "),
    ("% of ", " / 100 * "),
    (" squared", " ^ 2"),
    (" cubed", " ^ 3"),
];

pub fn parse(text: &str) -> Option<Intent> {
    let t = normalise(text);
    if let Some(a) = about(&t) {
        return Some(Intent::About(a));
    }
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
            let mut expr = format!(" {rest}");
            for (words, arithmetic) in FRACTIONS {
                expr = expr.replace(words, arithmetic);
            }
            let expr = expr
                .trim()
                .replace("multiplied by", "*")
                .replace("divided by", "/")
                .replace(" plus ", " + ")
                .replace(" minus ", " - ")
                .replace(" times ", " * ")
                .replace(" over ", " / ")
                .replace(" to the power of ", " ^ ");
            let mut words_as_numbers: Vec<String> = Vec::new();
            for w in expr.split(' ') {
                let n = number(w).filter(|_| !matches!(w, "a" | "an"));
                // "twenty five": the tens and the unit as one number.
                let tens = words_as_numbers.last().and_then(|p| p.parse::<u64>().ok()).filter(|p| p % 10 == 0 && (20..=90).contains(p));
                match (n, tens) {
                    (Some(unit @ 1..=9), Some(tens)) if number_word(w).is_some() => {
                        words_as_numbers.pop();
                        words_as_numbers.push((tens + unit).to_string());
                    }
                    (Some(n), _) => words_as_numbers.push(n.to_string()),
                    (None, _) => words_as_numbers.push(w.to_owned()),
                }
            }
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
        // Fractions, percentages, powers and two-word numbers, as a cook asks them.
        let value = |q: &str| match parse(q) {
            Some(Intent::Calculate(e)) => crate::calc::eval(&e).ok(),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(value("What is a quarter of twenty?"), Some(5.0));
        assert_eq!(value("What's half of 36?"), Some(18.0));
        assert_eq!(value("What is three quarters of forty?"), Some(30.0));
        assert_eq!(value("What is 15% of 80?"), Some(12.0));
        assert_eq!(value("what is twenty five percent of 200"), Some(50.0));
        assert_eq!(value("What is twelve squared?"), Some(144.0));
        assert_eq!(value("What is twenty five times four?"), Some(100.0));
        assert_eq!(value("How much is twice 21?"), Some(42.0));
        // Questions about the assistant itself, answered from what it is.
        for q in ["Who are you?", "What is your name?", "Hey Iris, what are you called?", "Who made you?"] {
            assert_eq!(parse(q), Some(Intent::About(About::Identity)), "{q}");
        }
        for q in [
            "Do you need the internet to work?",
            "Do you send what I say to the cloud?",
            "Are you online?",
            "Does what I say leave this device?",
        ] {
            assert_eq!(parse(q), Some(Intent::About(About::Offline)), "{q}");
        }
        for q in [
            "Who are you going to vote for?",
            "Do you know who made the Eiffel Tower?",
            "Can you search the internet for recipes?",
            "What are you doing tomorrow?",
        ] {
            assert_eq!(parse(q), None, "{q}");
        }
        // Not arithmetic: left to the model.
        assert_eq!(parse("What is half of the moon made of?"), None);
        assert_eq!(parse("What is the capital of France?"), None);
        assert_eq!(parse("Turn on the kitchen lights"), Some(Intent::Home { service: "turn_on".into(), target: "kitchen lights".into() }));
    }

    #[test]
    fn everything_else_goes_to_the_model() {
        for t in ["What is the capital of France?", "Tell me a story", "what is love", "How many legs does a spider have?", "timer"] {
            assert_eq!(parse(t), None, "{t}");
        }
    }
}
