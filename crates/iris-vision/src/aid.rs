//! The vision aid that runs offline today, behind the same `Vlm` interface a vision-language
//! model will use: "read this" with OCR, "what colour / how bright" from pixels, and for "what
//! is in front of me" whatever of the two applies. Answers are one or two short sentences
//! meant to be spoken; confidence is said aloud, and nothing is invented: text read with low
//! confidence is left out, and objects are not named until a recognition model is installed.

use iris_backend::{BackendError, Vlm};
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

pub struct VisionAid {
    ocr: Option<Ocr>,
}

impl VisionAid {
    /// `ocr` is `None` when the text model is not installed: the aid says so when asked to read.
    pub fn new(ocr: Option<Ocr>) -> Self {
        Self { ocr }
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
            (_, Some(l)) if !l.is_empty() => format!("I can see text. {} I can't recognise objects yet.", text_sentence(l)),
            _ => format!("{} I can't recognise objects yet, and I see no text to read.", colour_sentence(image)),
        };
        Ok(Look { ask, answer, lines: lines.unwrap_or_default() })
    }
}

impl Vlm for VisionAid {
    fn describe(&mut self, image: &ImageFrame, question: &str) -> Result<String, BackendError> {
        self.look(image, question).map(|l| l.answer)
    }

    /// Until an object-recognition model is installed every answer of the aid is complete and
    /// exact; a small LLM rephrasing it invented details (SmolLM2-135M turned a page about
    /// segmenting coins into "gold or silver coins"), which a user who cannot see must not hear.
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
        let mut aid = VisionAid::new(None);
        assert!(aid.describe(&img, "read this").unwrap().contains("not installed"));
        let d = aid.describe(&img, "what is in front of me").unwrap();
        assert!(d.contains("bright") && d.contains("white") && d.contains("can't recognise objects"), "{d}");
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
