//! An answer's ledger: which sentence went to which samples of the speaker, so when an answer
//! stops, early or not, the loop knows what was heard.

/// One answered sentence and where its audio sits in the speaker's stream.
pub(crate) struct Spoken {
    pub text: String,
    pub start: Option<u64>,
    pub end: u64,
}

/// The answer as far as it was heard: whole sentences played, and of the one cut off, the words
/// up to where it stopped (in proportion to its audio).
pub(crate) fn played_text(ledger: &[Spoken], played: u64) -> String {
    let mut said: Vec<String> = Vec::new();
    for s in ledger.iter().filter(|s| !s.text.is_empty()) {
        let Some(start) = s.start else { break };
        if played >= s.end {
            said.push(s.text.trim().to_owned());
        } else if played > start {
            let words: Vec<&str> = s.text.split_whitespace().collect();
            let part = (played - start) as f64 / (s.end - start).max(1) as f64;
            let n = (words.len() as f64 * part).floor() as usize;
            if n > 0 {
                said.push(words[..n].join(" "));
            }
            break;
        } else {
            break;
        }
    }
    said.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_played_is_cut_at_the_word() {
        let ledger = vec![
            Spoken { text: "Paris is the capital.".into(), start: Some(0), end: 100 },
            Spoken { text: "It is in the north of France.".into(), start: Some(100), end: 200 },
        ];
        assert_eq!(played_text(&ledger, 200), "Paris is the capital. It is in the north of France.");
        assert_eq!(played_text(&ledger, 150), "Paris is the capital. It is in");
        assert_eq!(played_text(&ledger, 50), "Paris is");
        assert_eq!(played_text(&ledger, 0), "");
    }
}
