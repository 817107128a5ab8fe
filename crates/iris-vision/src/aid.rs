//! The vision aid that runs offline today, behind the same `Vlm` interface a vision-language
//! model will use: "read this" with OCR, "what colour / how bright" from pixels, and for "what
//! is in front of me" / "what is this" an ImageNet classifier's best guess with whatever text
//! there is. Answers are one or two short sentences meant to be spoken; confidence is said
//! aloud, and nothing is invented: text read with low confidence is left out, and an object is
//! named only when the classifier gives it at least a fair chance.

use iris_backend::{BackendError, Vlm};
use iris_classify::{Classifier, Guess};
use iris_frames::ImageFrame;
use iris_ocr::{Line, Ocr};

use crate::pixel_facts;

/// Below this mean confidence, read text is hedged ("I think it says …").
const SURE: f32 = 0.85;
/// At most this much text is read aloud in one answer.
const MAX_CHARS: usize = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Read,
    Colour,
    Describe,
}

/// What the user wants of the picture, from the words of the question.
pub fn ask_of(question: &str) -> Ask {
    let q = question.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| q.contains(w));
    if has(&["read", "what does it say", "what does this say", "text", "written", "sign say", "label", "letter", "menu", "page"]) {
        Ask::Read
    } else if has(&["colour", "color", "bright", "dark", "light on", "lights on"]) {
        Ask::Colour
    } else {
        Ask::Describe
    }
}

/// A guess this likely is said plainly; from `FAIR` up it is hedged; below it, not said.
const LIKELY: f32 = 0.5;
const FAIR: f32 = 0.2;

pub struct VisionAid {
    ocr: Option<Ocr>,
    classifier: Option<Classifier>,
}

impl VisionAid {
    /// A model that is `None` is not installed: the aid says what it therefore cannot do.
    pub fn new(ocr: Option<Ocr>, classifier: Option<Classifier>) -> Self {
        Self { ocr, classifier }
    }

    fn object(&self, image: &ImageFrame) -> Result<Option<String>, BackendError> {
        let Some(c) = &self.classifier else { return Ok(None) };
        let guesses = c.classify(image, 5).map_err(|e| BackendError::Inference(e.to_string()))?;
        Ok(Some(object_sentence(&guesses)))
    }

    /// Lines worth saying: a fragment of one or two characters must be read with near
    /// certainty (a photo's texture often looks like an "8" or an "l").
    fn read(&mut self, image: &ImageFrame) -> Result<Option<Vec<Line>>, BackendError> {
        let Some(ocr) = self.ocr.as_mut() else { return Ok(None) };
        let lines = ocr.read(image).map_err(|e| BackendError::Inference(e.to_string()))?;
        Ok(Some(
            lines.into_iter().filter(|l| l.text.chars().filter(|c| c.is_alphanumeric()).count() >= 3 || l.confidence >= 0.95).collect(),
        ))
    }
}

fn colour_sentence(image: &ImageFrame) -> String {
    let (brightness, colour) = pixel_facts(image);
    let light = match brightness {
        b if b < 0.15 => "very dark",
        b if b < 0.35 => "dark",
        b if b < 0.7 => "moderately lit",
        _ => "bright",
    };
    format!("The picture is {light}, and mostly {colour}.")
}

/// The read lines as one passage, hedged when the reading is unsure.
fn text_sentence(lines: &[Line]) -> String {
    let mut text = lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join(" ");
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        text = format!("{}…", cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a));
    }
    let mean = lines.iter().map(|l| l.confidence).sum::<f32>() / lines.len().max(1) as f32;
    if mean >= SURE {
        format!("It says: {text}")
    } else {
        format!("I think it says: {text}, but I'm not sure of every word.")
    }
}

fn with_article(label: &str) -> String {
    let article = if label.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    format!("{article} {label}")
}

/// The classifier's guesses as words. Close classes share the chance between them (Egyptian
/// cat, tiger cat, tabby), so when no single one is likely but their common last word is
/// ("cat"), that word is said.
fn object_sentence(guesses: &[Guess]) -> String {
    let Some(top) = guesses.first() else { return "I'm not sure what it is.".into() };
    let last = |g: &Guess| g.label.rsplit(' ').next().unwrap_or("").to_lowercase();
    let family: f32 = guesses.iter().filter(|g| last(g) == last(top)).map(|g| g.probability).sum();
    let members = guesses.iter().filter(|g| last(g) == last(top)).count();
    if top.probability >= LIKELY {
        format!("It looks like {}.", with_article(&top.label))
    } else if members > 1 && family >= LIKELY {
        format!("It looks like {}.", with_article(&last(top)))
    } else if top.probability >= FAIR {
        format!("I think it is {}, but I'm not sure.", with_article(&top.label))
    } else {
        "I'm not sure what it is.".into()
    }
}

/// One look at a picture: what was asked, the spoken answer, and the lines of text read.
#[derive(Clone, Debug)]
pub struct Look {
    pub ask: Ask,
    pub answer: String,
    pub lines: Vec<Line>,
}

impl VisionAid {
    pub fn look(&mut self, image: &ImageFrame, question: &str) -> Result<Look, BackendError> {
        let ask = ask_of(question);
        if ask == Ask::Colour {
            return Ok(Look { ask, answer: colour_sentence(image), lines: Vec::new() });
        }
        let lines = self.read(image)?;
        let answer = match (ask, &lines) {
            (Ask::Read, None) => {
                "I cannot read text yet: the text-reading model is not installed (`iris models pull ppocr-v6-tiny`).".into()
            }
            (Ask::Read, Some(l)) if l.is_empty() => {
                format!("I can't find any text I can read. {} Try holding it closer, flat and well lit.", colour_sentence(image))
            }
            (Ask::Read, Some(l)) => text_sentence(l),
            (_, lines) => {
                let object = self.object(image)?;
                let text = lines.as_deref().filter(|l| !l.is_empty()).map(text_sentence);
                match (object, text) {
                    (Some(o), Some(t)) => format!("{o} I can see text. {t}"),
                    (Some(o), None) => format!("{o} {}", colour_sentence(image)),
                    (None, Some(t)) => format!("I can see text. {t} I can't recognise objects: the classifier is not installed."),
                    (None, None) => {
                        format!(
                            "{} I can't recognise objects (the classifier is not installed), and I see no text to read.",
                            colour_sentence(image)
                        )
                    }
                }
            }
        };
        Ok(Look { ask, answer, lines: lines.unwrap_or_default() })
    }
}

impl Vlm for VisionAid {
    fn describe(&mut self, image: &ImageFrame, question: &str) -> Result<String, BackendError> {
        self.look(image, question).map(|l| l.answer)
    }

    /// Every answer of the aid is complete and says how sure it is; a small LLM rephrasing it
    /// invented details (SmolLM2-135M turned a page about segmenting coins into "gold or silver
    /// coins"), which a user who cannot see must not hear.
    fn answers_directly(&self, _question: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_map_to_what_the_user_wants() {
        assert_eq!(ask_of("Read this for me"), Ask::Read);
        assert_eq!(ask_of("What does this say?"), Ask::Read);
        assert_eq!(ask_of("what colour is this shirt"), Ask::Colour);
        assert_eq!(ask_of("Is the light on?"), Ask::Colour);
        assert_eq!(ask_of("What is in front of me?"), Ask::Describe);
    }

    #[test]
    fn without_a_text_model_it_says_so_and_still_gives_colour() {
        let img = ImageFrame { width: 2, height: 1, rgb: vec![250u8, 250, 250, 240, 240, 240].into() };
        let mut aid = VisionAid::new(None, None);
        assert!(aid.describe(&img, "read this").unwrap().contains("not installed"));
        let d = aid.describe(&img, "what is in front of me").unwrap();
        assert!(d.contains("bright") && d.contains("white") && d.contains("can't recognise objects"), "{d}");
    }

    #[test]
    fn guesses_are_said_as_sure_as_they_are() {
        let g = |pairs: &[(&str, f32)]| pairs.iter().map(|(l, p)| Guess { label: (*l).into(), probability: *p }).collect::<Vec<_>>();
        assert_eq!(object_sentence(&g(&[("espresso", 0.99)])), "It looks like an espresso.");
        assert_eq!(
            object_sentence(&g(&[("tabby", 0.4), ("tiger cat", 0.3), ("Egyptian cat", 0.2)])),
            "I think it is a tabby, but I'm not sure."
        );
        assert_eq!(object_sentence(&g(&[("Egyptian cat", 0.4), ("tiger cat", 0.3), ("tabby", 0.2)])), "It looks like a cat.");
        assert_eq!(object_sentence(&g(&[("brass", 0.1), ("carton", 0.05)])), "I'm not sure what it is.");
    }

    #[test]
    fn unsure_reading_is_hedged() {
        let region = iris_ocr::TextBox { x0: 0.0, y0: 0.0, x1: 1.0, y1: 1.0, score: 1.0 };
        let sure = [Line { text: "EXIT".into(), confidence: 0.98, region }];
        assert_eq!(text_sentence(&sure), "It says: EXIT");
        let unsure = [Line { text: "EX1T".into(), confidence: 0.6, region }];
        assert!(text_sentence(&unsure).starts_with("I think it says: EX1T"));
    }
}
