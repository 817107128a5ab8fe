//! Images from files: decoding with limits, and what can honestly be said from pixels alone.
//!
//! Decoding refuses a decompression bomb before it allocates (dimension and allocation limits
//! are checked from the header), and names a truncated or non-image file. [`PixelFacts`] is the
//! vision backend used until a vision-language model is loaded: it reports size, brightness and
//! the main colour, and says plainly that it cannot recognise objects.

use std::io::BufReader;

use image::ImageDecoder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iris_backend::{BackendError, Vlm};
use iris_frames::ImageFrame;

/// Larger images are refused, not scaled: 64 megapixels is beyond any phone camera's JPEG.
pub const MAX_SIDE: u32 = 16_384;
pub const MAX_PIXELS: u64 = 64_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: no such file; check the path")]
    Missing { path: PathBuf },
    #[error("{path}: not an image Iris can read ({detail}); use a JPEG or PNG")]
    NotImage { path: PathBuf, detail: String },
    #[error("{path}: the image is {width}x{height}, larger than Iris accepts ({MAX_PIXELS} pixels, {MAX_SIDE} a side); scale it down")]
    TooLarge { path: PathBuf, width: u32, height: u32 },
    #[error("{path}: the image is damaged or truncated ({detail}); take or export it again")]
    Damaged { path: PathBuf, detail: String },
}

pub fn load_image(path: &Path) -> Result<ImageFrame, ImageError> {
    let p = || path.to_path_buf();
    let file = std::fs::File::open(path).map_err(|_| ImageError::Missing { path: p() })?;
    let reader = image::ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| ImageError::NotImage { path: p(), detail: e.to_string() })?;
    let format = reader.format().ok_or_else(|| ImageError::NotImage { path: p(), detail: "unknown format".into() })?;
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(path) {
        // JPEG decoders pad a cut-off file with grey instead of failing: check the end marker.
        return Err(ImageError::Damaged { path: p(), detail: "the JPEG data stops before its end marker".into() });
    }
    // One decoder: its header gives the size, checked before any pixel is allocated.
    let mut decoder = reader.into_decoder().map_err(|e| ImageError::Damaged { path: p(), detail: e.to_string() })?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { path: p(), width, height });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4);
    decoder.set_limits(limits).map_err(|_| ImageError::TooLarge { path: p(), width, height })?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Damaged { path: p(), detail: e.to_string() })?;
    let rgb = img.to_rgb8();
    Ok(ImageFrame { width: rgb.width(), height: rgb.height(), rgb: Arc::from(rgb.into_raw()) })
}

/// A complete JPEG has an end-of-image marker (FF D9) at its end, give or take trailing padding.
fn jpeg_is_complete(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let tail = len.min(4096);
    let mut buf = vec![0u8; tail as usize];
    if f.seek(SeekFrom::Start(len - tail)).is_err() || f.read_exact(&mut buf).is_err() {
        return false;
    }
    buf.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Colour names with their sRGB centres.
const COLOURS: &[(&str, [f32; 3])] = &[
    ("black", [0.0, 0.0, 0.0]),
    ("white", [255.0, 255.0, 255.0]),
    ("grey", [128.0, 128.0, 128.0]),
    ("red", [200.0, 30.0, 30.0]),
    ("orange", [240.0, 140.0, 20.0]),
    ("yellow", [230.0, 220.0, 40.0]),
    ("green", [40.0, 160.0, 50.0]),
    ("blue", [30.0, 60.0, 200.0]),
    ("purple", [130.0, 40.0, 160.0]),
    ("pink", [240.0, 150.0, 180.0]),
    ("brown", [120.0, 75.0, 40.0]),
];

/// Mean brightness (0..1) and the nearest colour name of the mean colour.
pub fn pixel_facts(image: &ImageFrame) -> (f32, &'static str) {
    let n = (image.rgb.len() / 3).max(1) as f64;
    let mut sum = [0f64; 3];
    for px in image.rgb.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += f64::from(px[c]);
        }
    }
    let mean = sum.map(|s| (s / n) as f32);
    let brightness = (0.2126 * mean[0] + 0.7152 * mean[1] + 0.0722 * mean[2]) / 255.0;
    let colour = COLOURS.iter().min_by(|a, b| dist(&a.1, &mean).total_cmp(&dist(&b.1, &mean))).map_or("grey", |c| c.0);
    (brightness, colour)
}

fn dist(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// The vision backend with no model: only what pixels say.
pub struct PixelFacts;

impl Vlm for PixelFacts {
    fn describe(&mut self, image: &ImageFrame, _question: &str) -> Result<String, BackendError> {
        let (brightness, colour) = pixel_facts(image);
        let light = match brightness {
            b if b < 0.2 => "very dark",
            b if b < 0.4 => "dark",
            b if b < 0.7 => "moderately lit",
            _ => "bright",
        };
        Ok(format!(
            "Iris has no object-recognition model loaded, so it can only say that the picture is {}x{} pixels, {light}, and mostly {colour} overall.",
            image.width, image.height
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_plain_red_image() {
        let img = ImageFrame { width: 2, height: 1, rgb: Arc::from(vec![210u8, 20, 25, 190, 40, 35]) };
        let (b, c) = pixel_facts(&img);
        assert_eq!(c, "red");
        assert!(b < 0.3);
    }

    /// PNG's chunk checksum (CRC-32, reflected, polynomial 0xEDB88320).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn bad_images_are_named() {
        let dir = std::env::temp_dir().join(format!("iris-vision-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("notes.png");
        std::fs::write(&text, "just some text").unwrap();
        assert!(matches!(load_image(&text), Err(ImageError::NotImage { .. })));
        assert!(matches!(load_image(&dir.join("nope.jpg")), Err(ImageError::Missing { .. })));
        // A PNG header claiming 30000x30000 pixels is refused before decoding.
        let mut png = Vec::new();
        image::RgbImage::new(4, 4).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        png[16..20].copy_from_slice(&30_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&30_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(dir.join("huge.png"), &png).unwrap();
        assert!(matches!(load_image(&dir.join("huge.png")), Err(ImageError::TooLarge { .. })));
        let mut jpg = Vec::new();
        image::RgbImage::from_pixel(64, 64, image::Rgb([9, 99, 199]))
            .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
            .unwrap();
        std::fs::write(dir.join("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
        assert!(matches!(load_image(&dir.join("cut.jpg")), Err(ImageError::Damaged { .. })), "{:?}", load_image(&dir.join("cut.jpg")));
    }
}
