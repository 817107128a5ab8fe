//! Whether what the user said asks Iris to stop ("stop", "cancel", "never mind", "be quiet"):
//! such a turn ends the answer or the ringing and is never sent to the language model, which
//! would answer "stop" with a sentence. One place decides, for the language-model stage and for
//! the live loop's own check of short speech while Iris talks or a timer rings.
//!
//! The whole utterance must be the request (polite words around it are allowed): "stop the
//! timer" stops, "how do I stop a nosebleed?" is a question.

/// Requests, as normalised words.
const REQUESTS: &[&str] = &[
    "stop",
    "stop it",
    "stop that",
    "stop talking",
    "stop now",
    "stop the timer",
    "stop the alarm",
    "stop ringing",
    "cancel",
    "cancel that",
    "cancel it",
    "never mind",
    "nevermind",
    "forget it",
    "be quiet",
    "quiet",
    "shut up",
    "hush",
    "silence",
    "enough",
    "that is enough",
    "thats enough",
    "ok stop",
    "alright stop",
    "all right stop",
];

/// Words around a request that do not change it.
const POLITE: &[&str] = &["please", "thanks", "thank", "you", "okay", "ok", "iris", "now", "oh", "hey", "um", "uh", "just"];

/// Lower-case words without punctuation (apostrophes dropped: "that's" → "thats").
fn words(text: &str) -> Vec<String> {
    let cleaned: String =
        text.to_lowercase().chars().filter(|c| *c != '\'' && *c != '’').map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// True when `text` is a request to stop and nothing else.
pub fn asks_to_stop(text: &str) -> bool {
    let all = words(text);
    // Long speech is not a stop request, whatever it contains.
    if all.is_empty() || all.len() > 8 {
        return false;
    }
    let matches = |w: &[String]| REQUESTS.iter().any(|r| r.split(' ').eq(w.iter().map(String::as_str)));
    if matches(&all) {
        return true;
    }
    // Drop polite words from both ends, keeping a request's own words ("ok stop").
    let mut start = 0;
    let mut end = all.len();
    while start < end && POLITE.contains(&all[start].as_str()) {
        start += 1;
        if matches(&all[start..end]) {
            return true;
        }
    }
    while end > start && POLITE.contains(&all[end - 1].as_str()) {
        end -= 1;
        if matches(&all[start..end]) {
            return true;
        }
    }
    // Said twice: "stop, stop".
    let half = (end - start) / 2;
    half > 0 && (end - start) % 2 == 0 && all[start..start + half] == all[start + half..end] && matches(&all[start..start + half])
}

#[cfg(test)]
mod tests {
    use super::asks_to_stop;

    #[test]
    fn stop_requests_and_not() {
        for yes in [
            "Stop.",
            "stop",
            "Cancel.",
            "Never mind.",
            "Be quiet!",
            "Okay, stop.",
            "Stop, please.",
            "Please stop.",
            "Stop the timer.",
            "Stop, stop!",
            "Iris, be quiet please.",
            "That's enough.",
            "Nevermind",
            "Shut up.",
        ] {
            assert!(asks_to_stop(yes), "{yes:?} asks to stop");
        }
        for no in [
            "How do I stop a nosebleed?",
            "Cancel my meeting with John tomorrow.",
            "What is the capital of France?",
            "",
            "Please",
            "Don't stop.",
            "Is it quiet outside?",
            "Set a timer for ten seconds.",
            "stop stop stop stop stop stop stop stop stop",
        ] {
            assert!(!asks_to_stop(no), "{no:?} is not a stop request");
        }
    }
}
