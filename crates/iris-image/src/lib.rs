//! Images from files and uploads: decoding with limits, turned upright.
//!
//! A decompression bomb is refused before it allocates (dimension and allocation limits are
//! checked from the header), a truncated or non-image file is named, and a photo is turned
//! upright by its EXIF orientation. Pure Rust (the `image` crate): the web panel decodes uploads
//! with it without taking on any model.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::ImageDecoder;
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
    // Known but not built in (GIF, WebP, BMP, …): say so, rather than "damaged" when the
    // decoder is missing.
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        let name = format.extensions_str().first().map_or("this", |e| e).to_uppercase();
        return Err(ImageError::NotImage { path: p(), detail: format!("{name} images are not supported") });
    }
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
    // Phones store photos sideways and say so in EXIF; turn them upright before anyone reads them.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Damaged { path: p(), detail: e.to_string() })?;
    img.apply_orientation(orientation);
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Issue 14 (low): GIF, WebP and BMP photos were called "damaged or truncated".
    #[test]
    fn formats_not_built_in_are_named_as_unsupported() {
        let dir = tempfile_dir("formats");
        for (name, bytes) in [
            ("a.gif", &b"GIF89a\x01\0\x01\0\0\0\0;"[..]),
            ("a.webp", &b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0"[..]),
            ("a.bmp", &b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0\0\0\0\0\x04\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\xff\0"[..]),
        ] {
            std::fs::write(dir.join(name), bytes).unwrap();
            let e = load_image(&dir.join(name)).unwrap_err().to_string();
            assert!(e.contains("images are not supported") && e.contains("use a JPEG or PNG"), "{name}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("iris-image-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_sideways_phone_photo_is_turned_upright() {
        // A 40x20 JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6).
        let mut jpg = Vec::new();
        image::RgbImage::from_fn(40, 20, |x, _| if x < 20 { image::Rgb([250, 0, 0]) } else { image::Rgb([0, 0, 250]) })
            .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
            .unwrap();
        let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
        tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend([0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut with_exif = vec![0xFF, 0xD8, 0xFF, 0xE1];
        with_exif.extend(((app1.len() + 2) as u16).to_be_bytes());
        with_exif.extend(app1);
        with_exif.extend(&jpg[2..]);
        let dir = std::env::temp_dir().join(format!("iris-exif-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("phone.jpg"), &with_exif).unwrap();
        let img = load_image(&dir.join("phone.jpg")).unwrap();
        assert_eq!((img.width, img.height), (20, 40));
        // Rotated clockwise, the red left half is now on top.
        assert!(img.rgb[0] > 200 && img.rgb[2] < 60, "{:?}", &img.rgb[..3]);
        let _ = std::fs::remove_dir_all(&dir);
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
