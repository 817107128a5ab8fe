//! "Read this": PaddleOCR PP-OCRv6 tiny (detection + recognition) on ONNX Runtime, with lines
//! put in reading order (top to bottom, left to right within a row), as RapidOCR's adapter for
//! these models does. Lines read with low confidence are dropped rather than guessed.

mod det;
mod rec;

use std::path::Path;

use image::{ImageBuffer, Rgb};
use iris_frames::ImageFrame;
use ort::session::Session;

pub use det::TextBox;

/// Below this a recognised line is more often wrong than right (RapidOCR's default).
const MIN_CONFIDENCE: f32 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("{0}")]
    Onnx(#[from] iris_onnx::OnnxError),
    #[error("text recognition: {0}")]
    Ort(#[from] ort::Error),
    #[error("text recognition model: {0}; check it with `iris models verify`")]
    Model(&'static str),
    #[error("text recognition: {0}")]
    Input(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub text: String,
    pub confidence: f32,
    pub region: TextBox,
}

pub struct Ocr {
    det: Session,
    rec: Session,
    chars: Vec<String>,
}

impl Ocr {
    pub fn load(env: &iris_onnx::Environment, det_model: &Path, rec_model: &Path, threads: usize) -> Result<Self, OcrError> {
        let det = iris_onnx::open_session(env, det_model, threads)?;
        let rec = iris_onnx::open_session(env, rec_model, threads)?;
        let chars = rec::charset(&rec)?;
        Ok(Self { det, rec, chars })
    }

    /// The lines of text in `image`, in reading order.
    pub fn read(&mut self, image: &ImageFrame) -> Result<Vec<Line>, OcrError> {
        let boxes = det::detect(&mut self.det, image)?;
        let mut lines = Vec::new();
        for b in boxes {
            let (x, y) = (b.x0.floor() as u32, b.y0.floor() as u32);
            let (w, h) = ((b.x1.ceil() as u32).saturating_sub(x), (b.y1.ceil() as u32).saturating_sub(y));
            if w < 2 || h < 2 {
                continue;
            }
            let crop = crop(image, x, y, w.min(image.width - x), h.min(image.height - y))?;
            let (text, confidence) = rec::recognise(&mut self.rec, &self.chars, &crop)?;
            let text = text.trim().to_owned();
            if !text.is_empty() && confidence >= MIN_CONFIDENCE {
                lines.push(Line { text, confidence, region: b });
            }
        }
        Ok(reading_order(lines))
    }
}

fn crop(image: &ImageFrame, x: u32, y: u32, w: u32, h: u32) -> Result<ImageBuffer<Rgb<u8>, Vec<u8>>, OcrError> {
    let stride = image.width as usize * 3;
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for row in y..y + h {
        let start = row as usize * stride + x as usize * 3;
        out.extend_from_slice(image.rgb.get(start..start + w as usize * 3).ok_or(OcrError::Input("a text region outside the image"))?);
    }
    ImageBuffer::from_raw(w, h, out).ok_or(OcrError::Input("a text region outside the image"))
}

/// Rows by centre height (a line joins a row when their centres are within half the smaller
/// height), each row left to right.
fn reading_order(mut lines: Vec<Line>) -> Vec<Line> {
    let centre = |l: &Line| (l.region.y0 + l.region.y1) / 2.0;
    lines.sort_by(|a, b| centre(a).total_cmp(&centre(b)).then(a.region.x0.total_cmp(&b.region.x0)));
    let mut rows: Vec<(f32, f32, Vec<Line>)> = Vec::new();
    for l in lines {
        let (cy, h) = (centre(&l), l.region.y1 - l.region.y0);
        match rows.last_mut() {
            Some(row) if (cy - row.0).abs() <= 0.5 * h.min(row.1) => row.2.push(l),
            _ => rows.push((cy, h, vec![l])),
        }
    }
    rows.into_iter()
        .flat_map(|(_, _, mut row)| {
            row.sort_by(|a, b| a.region.x0.total_cmp(&b.region.x0));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, x0: f32, y0: f32) -> Line {
        Line { text: text.into(), confidence: 0.9, region: TextBox { x0, y0, x1: x0 + 50.0, y1: y0 + 20.0, score: 0.9 } }
    }

    #[test]
    fn rows_top_to_bottom_then_left_to_right() {
        let read = reading_order(vec![line("world", 100.0, 2.0), line("second", 0.0, 40.0), line("hello", 0.0, 0.0)]);
        let texts: Vec<&str> = read.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["hello", "world", "second"]);
    }
}
