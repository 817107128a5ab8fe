//! Text detection: PaddleOCR's DB (differentiable binarisation) network, preprocessed and
//! post-processed as RapidOCR does for PP-OCRv6 tiny: the longer side limited to 960 and both
//! sides rounded to a multiple of 32, ImageNet mean and deviation on BGR channels, a probability
//! map thresholded at 0.2, regions scored by their mean probability (kept above 0.4) and grown
//! by the unclip ratio 1.4. Regions here are upright rectangles (connected components), not
//! rotated ones: page text and labels photographed square-on are the use; tilted text is not.

use image::imageops::FilterType;
use image::{ImageBuffer, Rgb};
use iris_frames::ImageFrame;
use ort::session::Session;
use ort::value::Tensor;

use crate::OcrError;

const LIMIT_SIDE: f32 = 960.0;
const THRESH: f32 = 0.2;
const BOX_THRESH: f32 = 0.4;
const UNCLIP: f32 = 1.4;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A text region in pixels of the original image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub score: f32,
}

pub fn detect(session: &mut Session, image: &ImageFrame) -> Result<Vec<TextBox>, OcrError> {
    let (w, h) = (image.width as f32, image.height as f32);
    let ratio = if w.max(h) > LIMIT_SIDE { LIMIT_SIDE / w.max(h) } else { 1.0 };
    let round32 = |v: f32| (((v * ratio) / 32.0).round() as u32 * 32).max(32);
    let (rw, rh) = (round32(w), round32(h));
    let src: ImageBuffer<Rgb<u8>, &[u8]> =
        ImageBuffer::from_raw(image.width, image.height, &image.rgb[..]).ok_or(OcrError::Input("the image buffer is short"))?;
    let resized = image::imageops::resize(&src, rw, rh, FilterType::Triangle);
    let plane = (rw * rh) as usize;
    let mut input = vec![0f32; 3 * plane];
    for (i, px) in resized.pixels().enumerate() {
        // BGR order, as OpenCV loads it.
        for c in 0..3 {
            input[c * plane + i] = (f32::from(px[2 - c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    let x = Tensor::from_array(([1usize, 3, rh as usize, rw as usize], input))?;
    let outputs = session.run(ort::inputs!["x" => x])?;
    let (shape, prob) = outputs[0].try_extract_tensor::<f32>()?;
    let (ph, pw) = (shape[2] as usize, shape[3] as usize);
    Ok(regions(prob, pw, ph).into_iter().map(|b| scale(b, w / pw as f32, h / ph as f32, w, h)).collect())
}

fn scale(b: TextBox, sx: f32, sy: f32, w: f32, h: f32) -> TextBox {
    TextBox { x0: (b.x0 * sx).max(0.0), y0: (b.y0 * sy).max(0.0), x1: (b.x1 * sx).min(w), y1: (b.y1 * sy).min(h), score: b.score }
}

/// Connected regions of the thresholded map (8-neighbours), each scored and unclipped.
fn regions(prob: &[f32], w: usize, h: usize) -> Vec<TextBox> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || prob[start] <= THRESH {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut sum, mut count) = (0.0f32, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            sum += prob[i];
            count += 1;
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for (dx, dy) in [(-1i64, -1i64), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if !seen[j] && prob[j] > THRESH {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        if bw.min(bh) < 3.0 {
            continue;
        }
        // The region's mean probability over its own pixels (DB's "slow" score). The "fast" score
        // averages over the upright box, which drowns a slightly tilted line in background
        // (a photographed page's last line scored 0.39 that way, 0.6 this way).
        let score = sum / count as f32;
        if score < BOX_THRESH {
            continue;
        }
        // Grow by area × ratio / perimeter on every side (the polygon offset for a rectangle).
        let d = bw * bh * UNCLIP / (2.0 * (bw + bh));
        let b = TextBox { x0: x0 as f32 - d, y0: y0 as f32 - d, x1: (x1 + 1) as f32 + d, y1: (y1 + 1) as f32 + d, score };
        if (b.x1 - b.x0).min(b.y1 - b.y0) >= 5.0 {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_blobs_give_two_grown_boxes() {
        let (w, h) = (40, 20);
        let mut p = vec![0.0; w * h];
        for y in 5..10 {
            for x in 2..12 {
                p[y * w + x] = 0.9;
            }
            for x in 20..38 {
                p[y * w + x] = 0.9;
            }
        }
        p[0] = 0.9; // a speck: too small
        let b = regions(&p, w, h);
        assert_eq!(b.len(), 2);
        assert!(b[0].x0 < 2.0 && b[0].x1 > 12.0 && b[0].y0 < 5.0 && b[0].y1 > 10.0, "{b:?}");
        assert!((b[0].score - 0.9).abs() < 1e-5);
    }
}
