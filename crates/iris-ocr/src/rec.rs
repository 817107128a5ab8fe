//! Text recognition: PP-OCRv6's CTC recogniser on one line at a time, as RapidOCR feeds it: the
//! crop scaled to 48 pixels high keeping its aspect, padded on the right to at least 320 wide,
//! scaled to -1..1 on BGR channels; greedy CTC decoding, with the character set read from the
//! model's own metadata (index 0 is the blank, a space follows the listed characters).

use image::imageops::FilterType;
use image::{ImageBuffer, Rgb};
use ort::session::Session;
use ort::value::Tensor;

use crate::OcrError;

const HEIGHT: u32 = 48;
const MIN_WIDTH: u32 = 320;

/// The characters the model's classes stand for, from its `character` metadata.
pub fn charset(session: &Session) -> Result<Vec<String>, OcrError> {
    let meta = session.metadata()?;
    let text = meta.custom("character").ok_or(OcrError::Model("the recogniser has no `character` metadata"))?;
    let mut chars: Vec<String> = text.split('\n').map(str::to_owned).collect();
    chars.push(" ".into());
    Ok(chars)
}

/// The text of one line crop and its confidence (the mean probability of its characters).
pub fn recognise(session: &mut Session, chars: &[String], crop: &ImageBuffer<Rgb<u8>, Vec<u8>>) -> Result<(String, f32), OcrError> {
    let (w, h) = crop.dimensions();
    if w == 0 || h == 0 {
        return Ok((String::new(), 0.0));
    }
    let content = ((HEIGHT as f32 * w as f32 / h as f32).ceil() as u32).clamp(1, 4096);
    let width = content.max(MIN_WIDTH);
    let resized = image::imageops::resize(crop, content, HEIGHT, FilterType::Triangle);
    let plane = (HEIGHT * width) as usize;
    let mut input = vec![0f32; 3 * plane];
    for (x, y, px) in resized.enumerate_pixels() {
        let i = (y * width + x) as usize;
        for c in 0..3 {
            input[c * plane + i] = f32::from(px[2 - c]) / 127.5 - 1.0;
        }
    }
    let x = Tensor::from_array(([1usize, 3, HEIGHT as usize, width as usize], input))?;
    let outputs = session.run(ort::inputs!["x" => x])?;
    let (shape, probs) = outputs[0].try_extract_tensor::<f32>()?;
    let (steps, classes) = (shape[1] as usize, shape[2] as usize);
    Ok(ctc_greedy(probs, steps, classes, chars))
}

fn ctc_greedy(probs: &[f32], steps: usize, classes: usize, chars: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut n) = (0.0, 0);
    let mut last = 0;
    for t in 0..steps {
        let row = &probs[t * classes..(t + 1) * classes];
        let (best, p) = row.iter().enumerate().fold((0, f32::MIN), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc });
        if best != 0 && best != last {
            if let Some(c) = chars.get(best - 1) {
                text.push_str(c);
                sum += p;
                n += 1;
            }
        }
        last = best;
    }
    (text, if n > 0 { sum / n as f32 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let chars: Vec<String> = ["a", "b", " "].iter().map(|s| s.to_string()).collect();
        // Classes: blank, a, b, space. Path: a a blank a b b space b
        let path = [1, 1, 0, 1, 2, 2, 3, 2];
        let mut probs = vec![0.0; path.len() * 4];
        for (t, &c) in path.iter().enumerate() {
            probs[t * 4 + c] = 0.8;
        }
        let (text, conf) = ctc_greedy(&probs, path.len(), 4, &chars);
        assert_eq!(text, "aab b");
        assert!((conf - 0.8).abs() < 1e-6);
    }
}
