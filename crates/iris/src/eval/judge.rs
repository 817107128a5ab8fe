//! How `iris eval answers` reads an answer: a fact present as whole words, a fact asserted (not
//! denied: "do not tilt your head back" does not say to tilt it), and what a voice should never
//! say aloud.

/// Markdown, list markers or a closing colon: things a voice should never say.
pub fn spoken_badly(sentences: &[String]) -> bool {
    sentences.iter().any(|s| {
        let t = s.trim();
        t.contains("**")
            || t.contains('`')
            || t.starts_with('#')
            || t.starts_with("- ")
            || t.starts_with("* ")
            || t.ends_with(':')
            || t.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Where `answer` (lower case) holds one of the `|`-separated spellings as whole words: "7" is
/// not in "17", nor "rome" in "chromerome".
fn found<'a>(answer: &'a str, spellings: &'a str) -> impl Iterator<Item = usize> + 'a {
    spellings.split('|').map(str::trim).filter(|s| !s.is_empty()).flat_map(move |s| {
        answer.match_indices(s).filter_map(move |(at, m)| {
            let before = answer[..at].chars().next_back();
            let after = answer[at + m.len()..].chars().next();
            (!before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)).then_some(at)
        })
    })
}

fn normal(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// Whether `answer` holds one of the `|`-separated spellings as whole words.
pub fn has(answer: &str, spellings: &str) -> bool {
    let (answer, spellings) = (normal(answer), normal(spellings));
    let first = found(&answer, &spellings).next();
    first.is_some()
}

/// Words that deny what follows them in the same clause.
const NEGATIONS: &[&str] = &["not", "no", "never", "without", "avoid", "nor", "instead", "rather", "against"];

/// Words looked back on for a negation: "do not use butter or ice directly" denies the ice.
const REACH: usize = 4;

/// Whether `answer` states one of the spellings: an occurrence with a negation a few words
/// before it, in the same clause, does not count ("I don't know what you had", "never put
/// butter on it"). A clause ends at a sentence mark, a comma or a semicolon, so "Don't worry,
/// your car is red" still states it.
pub fn asserts(answer: &str, spellings: &str) -> bool {
    let (answer, spellings) = (normal(answer), normal(spellings));
    let stated = found(&answer, &spellings).any(|at| {
        let clause = answer[..at].rsplit(['.', ',', ';', ':', '!', '?']).next().unwrap_or("");
        let denied = clause.split_whitespace().rev().take(REACH).any(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            w.ends_with("n't") || NEGATIONS.contains(&w)
        });
        !denied
    });
    stated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_is_whole_words() {
        assert!(has("it has 7 days.", "seven|7"));
        assert!(!has("it has 17 days.", "seven|7"));
        assert!(!has("chromerome", "rome"));
        assert!(has("Rome is the capital.", "rome"));
    }

    #[test]
    fn a_denied_fact_is_not_stated() {
        assert!(!asserts("No, you should not tilt your head back; lean forward.", "tilt your head back"));
        assert!(!asserts("I don\u{2019}t know what you had for breakfast.", "you had"));
        assert!(!asserts("Never put butter on a burn.", "butter"));
        assert!(!asserts("Do not use butter or ice directly.", "ice directly"));
        assert!(asserts("Tilt your head back and pinch your nose.", "tilt your head back"));
        assert!(asserts("Don't worry, your car is red.", "your car is"));
        assert!(asserts("It is not hard: put butter on it.", "butter"));
        // Far from the negation, in the same clause, it is stated.
        assert!(asserts("not a problem at all so put the butter on", "butter"));
    }

    #[test]
    fn markdown_lists_and_colons_are_spoken_badly() {
        assert!(spoken_badly(&["Here are some steps:".into()]));
        assert!(spoken_badly(&["1. Cool the burn.".into()]));
        assert!(spoken_badly(&["Use **cold** water.".into()]));
        assert!(!spoken_badly(&["Cool the burn under running water for twenty minutes.".into()]));
    }
}
