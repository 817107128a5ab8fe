//! Whether a question is about what is in front of the user, so the camera's latest frame is
//! taken for it. Said by a person who cannot see, or whose hands are busy: "what is this?",
//! "read this for me", "what colour is my shirt?", "can you see the label?".
//!
//! Words, not a model: a question about the picture names a way of seeing (look, see, read,
//! describe, colour, holding) *and* points at something (this, that, here, in front of me,
//! in my hand), or is one of the short questions that only make sense with a picture. "Look it
//! up", "read me a story", "what is that song" take no picture.

/// Phrases that ask about the picture on their own.
const ALONE: &[&str] = &[
    "what is this",
    "whats this",
    "what is that",
    "whats that",
    "what are these",
    "what are those",
    "who is this",
    "whos this",
    "in front of me",
    "in front of you",
    "around me",
    "what do you see",
    "what can you see",
    "what you see",
    "what does it say",
    "what does this say",
    "what does that say",
    "what am i holding",
    "what am i looking at",
    "what am i wearing",
    "how do i look",
    "read it",
    "describe it",
    "is the light on",
    "are the lights on",
];

/// Ways of seeing; each must come with a pointer below.
const SEEING: &[&str] =
    &["see", "look", "looks", "read", "describe", "colour", "color", "holding", "wearing", "showing", "pointing", "say"];

/// Pointers at something in view.
const POINTING: &[&str] =
    &["this", "that", "these", "those", "here", "my hand", "the camera", "picture", "photo", "label", "sign", "screen"];

/// Phrases that use a seeing word for something else.
const NOT_LOOKING: &[&str] =
    &["look up", "look it up", "read me a", "read a story", "looking for", "look forward", "that song", "this song"];

/// The question asks about what the camera would show.
pub fn asks_to_look(question: &str) -> bool {
    let q: String = question
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            '\'' | '\u{2019}' => None,
            c if c.is_alphanumeric() => Some(c),
            _ => Some(' '),
        })
        .collect();
    let q = format!(" {} ", q.split_whitespace().collect::<Vec<_>>().join(" "));
    let has = |phrase: &str| q.contains(&format!(" {phrase} "));
    if NOT_LOOKING.iter().any(|p| has(p)) {
        return false;
    }
    ALONE.iter().any(|p| has(p)) || (SEEING.iter().any(|w| has(w)) && POINTING.iter().any(|p| has(p)))
}

#[cfg(test)]
mod tests {
    use super::asks_to_look;

    #[test]
    fn questions_about_the_picture_take_one() {
        for q in [
            "What is in front of me?",
            "What's this?",
            "Hey, what is that?",
            "Read this for me, please.",
            "Can you read the label?",
            "What colour is this shirt?",
            "What am I holding?",
            "Describe it.",
            "Can you see the sign?",
            "Who is this?",
            "What does it say?",
            "Is the light on?",
            "Tell me what you see.",
        ] {
            assert!(asks_to_look(q), "{q}");
        }
    }

    #[test]
    fn other_questions_take_none() {
        for q in [
            "What is the capital of France?",
            "Set a timer for five minutes.",
            "Look it up for me.",
            "Read me a story.",
            "What is that song called?",
            "I'm looking for my keys.",
            "What is the colour of the sky?",
            "How are you?",
            "What time is it?",
            "See you later.",
        ] {
            assert!(!asks_to_look(q), "{q}");
        }
    }
}
