//! Word error rate with text normalised as Whisper's English normaliser does in spirit: case,
//! punctuation and the written form of numbers do not count as errors ("7:45" = "7.45",
//! "twenty five" = "25", "Mr." = "mister"); words do.

/// Words for scoring.
pub fn normalise_words(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    // Digit group separators go ("1,000" → "1000"); other punctuation becomes a space.
    let chars: Vec<char> = lower.chars().collect();
    let mut cleaned = String::with_capacity(lower.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        match c {
            ',' if between_digits => {}
            '%' => cleaned.push_str(" percent "),
            '&' => cleaned.push_str(" and "),
            c if c.is_alphanumeric() || c == '\'' => cleaned.push(c),
            _ => cleaned.push(' '),
        }
    }
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && !matches!(*w, "uh" | "um" | "hmm" | "mm" | "ah"))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some((value, used)) = number_run(&words[i..]) {
            out.push(value.to_string());
            i += used;
            continue;
        }
        out.extend(expand(words[i]).split(' ').map(|w| spelling(w).to_owned()));
        i += 1;
    }
    out
}

/// Contractions spelled out, as Whisper's normaliser does ("I'm" = "I am", "don't" = "do not").
/// A possessive "'s" cannot be told from "is" without grammar; like Whisper, only the common
/// pronoun forms are expanded.
fn expand(w: &str) -> String {
    let fixed = match w {
        "i'm" => Some("i am"),
        "won't" => Some("will not"),
        "can't" => Some("can not"),
        "let's" => Some("let us"),
        _ => None,
    };
    if let Some(f) = fixed {
        return f.to_owned();
    }
    if let Some(stem) = w
        .strip_suffix("'s")
        .filter(|_| matches!(w, "it's" | "that's" | "what's" | "there's" | "here's" | "he's" | "she's" | "where's" | "who's"))
    {
        return format!("{stem} is");
    }
    for (suffix, full) in [("n't", " not"), ("'re", " are"), ("'ll", " will"), ("'ve", " have"), ("'d", " would")] {
        if let Some(stem) = w.strip_suffix(suffix).filter(|s| !s.is_empty()) {
            return format!("{stem}{full}");
        }
    }
    w.to_owned()
}

/// Titles and ordinals written one way on both sides.
fn spelling(w: &str) -> &str {
    match w {
        "mr" => "mister",
        "mrs" => "missus",
        "dr" => "doctor",
        "st" => "saint",
        "ok" | "o.k" => "okay",
        "first" => "1st",
        "second" => "2nd",
        "third" => "3rd",
        "fourth" => "4th",
        "fifth" => "5th",
        _ => w,
    }
}

/// The longest run of number words at the start of `words` ("twenty five", "one hundred and
/// two"): its value and how many words it used. A lone "and" or "a" is not a number.
fn number_run(words: &[&str]) -> Option<(u64, usize)> {
    let (mut total, mut current, mut used, mut any, mut fresh) = (0u64, 0u64, 0usize, false, true);
    for (i, w) in words.iter().enumerate() {
        if let Some(n) = iris_tools::intent::number_word(w) {
            // "twenty five" and "hundred five" join; "one two" are two numbers.
            let low = current % 100;
            if !(fresh || low == 0 || (low >= 20 && low % 10 == 0 && (1..10).contains(&n))) {
                break;
            }
            current += n;
            fresh = false;
        } else if *w == "hundred" && any {
            current = current.max(1) * 100;
        } else if let Some(scale) = match *w {
            "thousand" => Some(1_000),
            "million" => Some(1_000_000),
            _ => None,
        } {
            if !any {
                break;
            }
            total += current.max(1) * scale;
            current = 0;
            fresh = true;
        } else if *w == "and" && any && current % 100 == 0 && words.get(i + 1).is_some_and(|n| iris_tools::intent::number_word(n).is_some())
        {
            // "one hundred and two"
        } else {
            break;
        }
        any = true;
        used = i + 1;
    }
    any.then_some((total + current, used))
}

/// (word edits, reference words): Levenshtein distance over normalised words.
pub fn word_errors(reference: &str, heard: &str) -> (usize, usize) {
    let a = normalise_words(reference);
    let b = normalise_words(heard);
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, wb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(wa != wb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    (prev[b.len()], a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_ignores_form_not_words() {
        assert_eq!(word_errors("The train leaves at 7:45.", "the train leaves at 7.45"), (0, 5 + 1));
        assert_eq!(word_errors("She bought 3 tickets.", "She bought three tickets"), (0, 4));
        assert_eq!(word_errors("Turn off the lights.", "Turn of the light"), (2, 4));
        assert_eq!(word_errors("", ""), (0, 0));
    }

    #[test]
    fn numbers_titles_and_symbols_are_written_one_way() {
        assert_eq!(
            normalise_words("Twenty-five people, 1,000 dollars and 50%"),
            ["25", "people", "1000", "dollars", "and", "50", "percent"]
        );
        assert_eq!(normalise_words("one hundred and two"), ["102"]);
        assert_eq!(normalise_words("one two three"), ["1", "2", "3"]);
        assert_eq!(normalise_words("two thousand twenty"), ["2020"]);
        assert_eq!(normalise_words("Mr. Smith, uh, press the first key"), ["mister", "smith", "press", "the", "1st", "key"]);
        assert_eq!(word_errors("Please press 1 and 2.", "Please press one and two."), (0, 5));
        assert_eq!(
            normalise_words("I'm sorry, that's not what we'll do, don't"),
            ["i", "am", "sorry", "that", "is", "not", "what", "we", "will", "do", "do", "not"]
        );
        assert_eq!(normalise_words("the caller's phone"), ["the", "caller's", "phone"]);
    }
}
