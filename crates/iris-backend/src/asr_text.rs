//! Text clean-up that every Whisper backend applies the same way, so they agree.

/// Whisper's markers for "no speech here" ("[BLANK_AUDIO]", "(music)", "...") are not words.
pub fn is_non_speech(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with('(') && t.ends_with(')'))
        || t.chars().all(|c| !c.is_alphanumeric())
}

/// Whisper on a short window can loop ("What is... What is... What is..."): keep one round of
/// a phrase that repeats to the end of the text (three rounds for a phrase of one or two words,
/// so that "very, very" survives; two for longer ones).
pub fn trim_repetition(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let key: Vec<String> = words.iter().map(|w| w.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect()).collect();
    let n = words.len();
    for start in 0..n {
        for period in 1..=(n - start) / 2 {
            let rounds = if period <= 2 { 3 } else { 2 };
            if n - start >= rounds * period && (start + period..n).all(|i| key[i] == key[i - period]) {
                return words[..start + period].join(" ");
            }
        }
    }
    text.to_owned()
}

/// Encoder frames (20 ms each) for a partial decode: the audio there is plus a 1 s margin (too
/// tight a window makes Whisper drop the last word), rounded up to a multiple of 64, at most
/// the full 1500 of a 30 s window.
pub fn partial_audio_ctx(samples: usize) -> usize {
    let frames = samples.div_ceil(320) + 50;
    (frames.div_ceil(64) * 64).min(1500)
}

/// Encoder frames for a live question's final decode (`AsrOptions::fit_context`): the audio
/// there is with the partials' margin, but never under 768, about half of Whisper's 30 s. Cut to
/// the audio's length, tiny.en's word error rate on the 51 spoken prompts of speech-en was 34 %
/// (5 came out repeated) against 7.3 % for the whole window; at 768 frames it is 7.8 % (512:
/// 8.0 %, and "capital of France" heard as "capital and friends").
pub fn fit_audio_ctx(samples: usize) -> usize {
    partial_audio_ctx(samples).max(768)
}

/// Tokens a partial may produce: a fast speaker's worth for its length, plus a few.
pub fn partial_max_tokens(samples: usize) -> usize {
    (samples as f32 / 16_000.0 * 6.0) as usize + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_speech_markers_are_dropped() {
        assert!(is_non_speech(" [BLANK_AUDIO]"));
        assert!(is_non_speech("(music playing)"));
        assert!(is_non_speech(" ..."));
        assert!(!is_non_speech(" What is the capital of France?"));
    }

    #[test]
    fn loops_are_cut_to_one_round() {
        assert_eq!(trim_repetition("What is... What is... What is... What is... What"), "What is...");
        assert_eq!(trim_repetition("What is the cap what is the cap what is the cap"), "What is the cap");
        assert_eq!(trim_repetition("Welcome to the directory. Please please please please"), "Welcome to the directory. Please");
        assert_eq!(trim_repetition("It is very, very cold."), "It is very, very cold.");
        assert_eq!(trim_repetition("Use the 7 key for Q and the 9 key for Z."), "Use the 7 key for Q and the 9 key for Z.");
    }

    #[test]
    fn partial_window_covers_the_audio() {
        assert_eq!(partial_audio_ctx(8_000), 128);
        assert_eq!(partial_audio_ctx(16_000 * 3), 256);
        assert_eq!(partial_audio_ctx(16_000 * 60), 1500);
    }
}
