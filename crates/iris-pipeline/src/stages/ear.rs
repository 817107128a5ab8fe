//! Answers made for the ear: what the speaker says is plain speech, whatever the model wrote.
//! Markdown, list markers, code fences, links and emoji are not read out; units, currency and
//! a few symbols and abbreviations are spoken as words (the voice's own phonemizer already
//! says times, dates, ordinals and plain numbers well). A list announced with a colon is
//! spoken as one sentence with its items; an announcement whose list never comes ("Here are
//! some steps:") is not spoken at all.

use std::sync::LazyLock;

use regex::{Captures, Regex};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("ear pattern {pattern}: {e}"))
}

static LINK: LazyLock<Regex> = LazyLock::new(|| re(r"\[([^\]]*)\]\([^)]*\)"));
static URL: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:https?://|www\.)(?:www\.)?([A-Za-z0-9.-]+\.[A-Za-z]{2,})[^\s)]*"));
static MARKER: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:[-*+•‣◦▪]|\d{1,2}[.)]|[a-z][.)])\s+"));
static HEADING: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:#{1,6}|>+)\s*"));
static EMPHASIS: LazyLock<Regex> = LazyLock::new(|| re(r"\*{1,3}|_{2,3}|~~|`+"));
/// `_word_` emphasis (a snake_case name inside a word is left alone).
static UNDERSCORES: LazyLock<Regex> = LazyLock::new(|| re(r"(^|\s)_([^_\s][^_]*)_"));
/// Units written onto or beside a number ("500g", "5 km").
static UNIT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\d+(?:[.,]\d+)?)\s?(km/h|kph|mph|km|kg|cm|mm|mg|ml|mL|hrs|hr|mins|min|sec|lbs|lb|oz|ft|tsp|tbsp|g|l|L)\b"));
/// One-letter units only with a space: "the 1990s" are not seconds.
static SPACED_UNIT: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+(?:[.,]\d+)?)\s(h|m|s)\b"));
static DEGREE_UNIT: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+(?:[.,]\d+)?)\s?(°C|°F|°|%)"));
static MONEY: LazyLock<Regex> = LazyLock::new(|| re(r"([$€£])\s?(\d+(?:[.,]\d+)?)"));
static ARITHMETIC: LazyLock<Regex> = LazyLock::new(|| re(r"(\d)\s*([+×*=]|\sx\s| − | - )\s*(\d)"));
/// "3-4 minutes": a range (a date's "2024-05-01" has longer parts on one side).
static RANGE: LazyLock<Regex> = LazyLock::new(|| re(r"(^|[^\d-])(\d{1,3})-(\d{1,3})($|[^\d-])"));

/// One unit's words: singular, plural.
fn unit_words(unit: &str) -> Option<(&'static str, &'static str)> {
    Some(match unit {
        "km/h" | "kph" => ("kilometre per hour", "kilometres per hour"),
        "mph" => ("mile per hour", "miles per hour"),
        "km" => ("kilometre", "kilometres"),
        "m" => ("metre", "metres"),
        "cm" => ("centimetre", "centimetres"),
        "mm" => ("millimetre", "millimetres"),
        "kg" => ("kilogram", "kilograms"),
        "g" => ("gram", "grams"),
        "mg" => ("milligram", "milligrams"),
        "l" | "L" => ("litre", "litres"),
        "ml" | "mL" => ("millilitre", "millilitres"),
        "lb" | "lbs" => ("pound", "pounds"),
        "oz" => ("ounce", "ounces"),
        "ft" => ("foot", "feet"),
        "h" | "hr" | "hrs" => ("hour", "hours"),
        "min" | "mins" => ("minute", "minutes"),
        "s" | "sec" => ("second", "seconds"),
        "tsp" => ("teaspoon", "teaspoons"),
        "tbsp" => ("tablespoon", "tablespoons"),
        "°C" => ("degree Celsius", "degrees Celsius"),
        "°F" => ("degree Fahrenheit", "degrees Fahrenheit"),
        "°" => ("degree", "degrees"),
        "%" => ("percent", "percent"),
        _ => return None,
    })
}

fn amount_with(number: &str, unit: &str) -> Option<String> {
    let (one, many) = unit_words(unit)?;
    Some(format!("{number} {}", if number == "1" { one } else { many }))
}

fn arithmetic(text: &str) -> String {
    ARITHMETIC
        .replace_all(text, |c: &Captures| {
            let op = match c[2].trim() {
                "+" => "plus",
                "×" | "*" | "x" => "times",
                "=" => "equals",
                _ => "minus",
            };
            format!("{} {op} {}", &c[1], &c[3])
        })
        .into_owned()
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE0F | 0x200D | 0x20E3)
}

/// Whether a sentence, as the model wrote it, is an item of a list.
pub fn is_list_item(raw: &str) -> bool {
    MARKER.is_match(raw)
}

/// Whether a sentence announces something to follow ("Here are some steps:").
pub fn announces(raw: &str) -> bool {
    raw.trim_end().ends_with(':')
}

/// One sentence as it should be heard.
pub fn for_the_ear(raw: &str) -> String {
    if raw.trim_start().starts_with("```") {
        return String::new();
    }
    let text = HEADING.replace(raw, "");
    let text = MARKER.replace(&text, "");
    let text = LINK.replace_all(&text, "$1");
    let text = URL.replace_all(&text, "$1");
    let text = EMPHASIS.replace_all(&text, "");
    let text = UNDERSCORES.replace_all(&text, "$1$2");
    let text: String = text.chars().filter(|c| !is_emoji(*c)).collect();
    let text = text.replace('|', ", ").replace(" & ", " and ").replace('~', "about ");
    let text = MONEY.replace_all(&text, |c: &Captures| {
        let name = match &c[1] {
            "$" => "dollars",
            "€" => "euros",
            _ => "pounds",
        };
        format!("{} {name}", &c[2])
    });
    // Twice: "10 - 3 = 7" shares the 3 between two operations.
    let text = arithmetic(&arithmetic(&text));
    let text = RANGE.replace_all(&text, "$1$2 to $3$4");
    let text = DEGREE_UNIT.replace_all(&text, |c: &Captures| amount_with(&c[1], &c[2]).unwrap_or_else(|| c[0].to_owned()));
    let text = UNIT.replace_all(&text, |c: &Captures| amount_with(&c[1], &c[2]).unwrap_or_else(|| c[0].to_owned()));
    let text = SPACED_UNIT.replace_all(&text, |c: &Captures| amount_with(&c[1], &c[2]).unwrap_or_else(|| c[0].to_owned()));
    let text = text.replace("e.g.", "for example").replace("i.e.", "that is").replace("etc.", "and so on");
    let words: Vec<&str> = text.split_whitespace().collect();
    let spoken = words.join(" ");
    // Nothing left but punctuation (a table rule, a lone marker): nothing to say.
    if spoken.chars().any(char::is_alphanumeric) {
        spoken
    } else {
        String::new()
    }
}

/// Joins a list announced with a colon into one spoken sentence, as the sentences stream by:
/// the announcement is held until its items come (or do not).
#[derive(Debug, Default)]
pub struct ListJoiner {
    held: Option<(String, Vec<String>)>,
}

impl ListJoiner {
    /// The next sentence as the model wrote it; what is ready to be spoken.
    pub fn push(&mut self, raw: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, items)) = self.held.as_mut().filter(|_| is_list_item(raw)) {
            let item = for_the_ear(raw);
            if !item.is_empty() {
                items.push(lower_first(item.trim_end_matches(['.', ';', ','])));
            }
            return out;
        }
        out.extend(self.finish());
        if announces(raw) {
            self.held = Some((for_the_ear(raw), Vec::new()));
        } else {
            let spoken = for_the_ear(raw);
            if !spoken.is_empty() {
                out.push(spoken);
            }
        }
        out
    }

    /// The answer ended: a held list is spoken; an announcement with no list is dropped.
    pub fn finish(&mut self) -> Option<String> {
        let (intro, items) = self.held.take()?;
        if items.is_empty() {
            return None;
        }
        let list = match items.as_slice() {
            [one] => one.clone(),
            [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
            [] => return None,
        };
        Some(if intro.is_empty() { format!("{list}.") } else { format!("{intro} {list}.") })
    }
}

/// "Cool the burn" after a colon reads "cool the burn" (a name such as "Paris" stays).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() && !s.starts_with("I ") => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_links_code_and_emoji_are_not_read_out() {
        assert_eq!(for_the_ear("**Paris** is the _capital_ of France! 🇫🇷😊"), "Paris is the capital of France!");
        assert_eq!(for_the_ear("## Answer"), "Answer");
        assert_eq!(for_the_ear("- Use `ls` to list files."), "Use ls to list files.");
        assert_eq!(
            for_the_ear("See [the docs](https://example.com/a/b) or https://www.rust-lang.org/learn today."),
            "See the docs or rust-lang.org today."
        );
        assert_eq!(for_the_ear("```python"), "");
        assert_eq!(for_the_ear("|---|---|"), "");
    }

    #[test]
    fn units_money_and_symbols_are_spoken() {
        assert_eq!(for_the_ear("Bake at 180°C for 25 min."), "Bake at 180 degrees Celsius for 25 minutes.");
        assert_eq!(for_the_ear("It is 5 km away, about 1 h on foot."), "It is 5 kilometres away, about 1 hour on foot.");
        assert_eq!(for_the_ear("Add 2 tbsp of oil and 500g flour."), "Add 2 tablespoons of oil and 500 grams flour.");
        assert_eq!(for_the_ear("It costs $5 or €4.50, a 10% discount."), "It costs 5 dollars or 4.50 euros, a 10 percent discount.");
        assert_eq!(for_the_ear("7 x 6 = 42, and 3+4=7."), "7 times 6 equals 42, and 3 plus 4 equals 7.");
        assert_eq!(for_the_ear("Salt & pepper, e.g. on eggs."), "Salt and pepper, for example on eggs.");
        assert_eq!(for_the_ear("Put it in the box."), "Put it in the box.");
        assert_eq!(
            for_the_ear("Wait 3-4 min, as on 2024-05-01 in the 1990s, 10 - 3 = 7."),
            "Wait 3 to 4 minutes, as on 2024-05-01 in the 1990s, 10 minus 3 equals 7."
        );
        assert_eq!(for_the_ear("Run 100 m in 12 s, a snake_case name."), "Run 100 metres in 12 seconds, a snake_case name.");
    }

    #[test]
    fn an_announced_list_is_one_sentence_and_an_empty_announcement_is_dropped() {
        let mut j = ListJoiner::default();
        let mut said: Vec<String> =
            ["Here are some steps:", "1. Cool the burn under running water.", "2. **Cover** it loosely.", "See a doctor if it blisters."]
                .iter()
                .flat_map(|s| j.push(s))
                .collect();
        said.extend(j.finish());
        assert_eq!(said, ["Here are some steps: cool the burn under running water, and cover it loosely.", "See a doctor if it blisters."]);
        let mut j = ListJoiner::default();
        let mut said: Vec<String> = ["Cool it at once.", "Here are some steps:"].iter().flat_map(|s| j.push(s)).collect();
        said.extend(j.finish());
        assert_eq!(said, ["Cool it at once."]);
    }
}
