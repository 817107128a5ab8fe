//! The vision aid's real models on real images: what a user pointing a camera at a page checks.
//!
//! Photos come from `IRIS_IMAGES_DIR` (deploy/test.sh unpacks scikit-image's sample images
//! there: `page.png` is a photographed textbook page, `text.png` handwriting on a tilted sheet).

use std::path::PathBuf;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use iris_frames::ImageFrame;
use iris_tests::{edit_distance, model};

fn images() -> Option<PathBuf> {
    let dir = std::env::var_os("IRIS_IMAGES_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("IRIS_IMAGES_DIR is not set: run deploy/test.sh, which unpacks the sample images");
    }
    dir
}

fn ocr() -> iris_ocr::Ocr {
    let env = iris_onnx::init(&model("onnxruntime")).expect("ONNX Runtime loads");
    let dir = model("ppocr-v6-tiny").parent().unwrap().to_owned();
    iris_ocr::Ocr::load(env, &dir.join("PP-OCRv6_det_tiny.onnx"), &dir.join("PP-OCRv6_rec_tiny.onnx"), 2).unwrap()
}

/// Character error rate: edits over reference characters, ignoring case and spacing.
fn cer(reference: &str, read: &str) -> f64 {
    let norm = |s: &str| -> Vec<char> { s.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect() };
    let (a, b) = (norm(reference), norm(read));
    edit_distance(&a, &b) as f64 / a.len().max(1) as f64
}

const PAGE: &str = "Region-based segmentation
Let us first determine markers of the coins and the
background. These markers are pixels that we can label
unambiguously as either object or background. Here,
the markers are found at the two extreme parts of the
histogram of grey values:
>>> markers = np.zeros_like(coins)";

#[test]
fn reads_a_photographed_page_in_order() {
    let Some(dir) = images() else { return };
    let image = iris_vision::load_image(&dir.join("page.png")).unwrap();
    let lines = ocr().read(&image).unwrap();
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let read = text.join("\n");
    for l in &lines {
        eprintln!("{:.2} {:?} {}", l.confidence, l.region, l.text);
    }
    // The page's last row is cut off at the bottom edge; score the complete lines.
    let rate = cer(PAGE, &read.lines().take(7).collect::<Vec<_>>().join("\n"));
    eprintln!("page.png CER {:.1} %", rate * 100.0);
    assert!(rate < 0.1, "CER {rate:.3}:\n{read}");
    assert!(text[0].starts_with("Region"), "the title comes first: {text:?}");
}

/// `text` drawn black on white in DejaVu Sans (Debian's fonts-dejavu-core) at `px` pixels.
fn render(text: &str, px: f32) -> ImageFrame {
    let bytes = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").expect("apt-get install fonts-dejavu-core");
    let font = FontRef::try_from_slice(&bytes).unwrap();
    let scaled = font.as_scaled(PxScale::from(px));
    let (pad, mut x, mut last) = (24.0, 0.0f32, None);
    let mut glyphs = Vec::new();
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(prev) = last {
            x += scaled.kern(prev, id);
        }
        glyphs.push(id.with_scale_and_position(px, ab_glyph::point(x + pad, scaled.ascent() + pad)));
        x += scaled.h_advance(id);
        last = Some(id);
    }
    let (w, h) = ((x + 2.0 * pad).ceil() as u32, (scaled.ascent() - scaled.descent() + 2.0 * pad).ceil() as u32);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    for g in glyphs {
        if let Some(outline) = font.outline_glyph(g) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    let i = ((py as u32 * w + px as u32) * 3) as usize;
                    let v = (255.0 * (1.0 - coverage.clamp(0.0, 1.0))) as u8;
                    for c in &mut rgb[i..i + 3] {
                        *c = (*c).min(v);
                    }
                }
            });
        }
    }
    ImageFrame { width: w, height: h, rgb: rgb.into() }
}

#[test]
fn reads_rendered_lines_exactly() {
    let mut ocr = ocr();
    for text in
        ["The quick brown fox jumps over the lazy dog.", "Take 2 tablets every 8 hours, with water.", "Exit B: Platform 3 (Oslo 14:25)"]
    {
        let lines = ocr.read(&render(text, 32.0)).unwrap();
        let read: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(read.join(" "), text, "{lines:?}");
    }
    // A blank page reads as nothing, not as invented text.
    let blank = ImageFrame { width: 320, height: 120, rgb: vec![255u8; 320 * 120 * 3].into() };
    assert!(ocr.read(&blank).unwrap().is_empty());
}

#[test]
fn photos_without_print_give_no_invented_text() {
    let Some(dir) = images() else { return };
    let mut ocr = ocr();
    // A cat, a coffee cup, and handwritten maths on a tilted sheet (RapidOCR with the same
    // models reads nothing there either).
    for name in ["chelsea.png", "coffee.png", "text.png"] {
        let lines = ocr.read(&iris_vision::load_image(&dir.join(name)).unwrap()).unwrap();
        let words: usize = lines.iter().map(|l| l.text.split_whitespace().count()).sum();
        eprintln!("{name}: {:?}", lines.iter().map(|l| (&l.text, l.confidence)).collect::<Vec<_>>());
        assert!(words <= 2, "{name}: {lines:?}");
    }
}

fn classifier() -> iris_classify::Classifier {
    iris_classify::Classifier::load(&model("mobilenet-v2"), &model("imagenet-labels")).unwrap()
}

#[test]
fn names_real_photos_and_is_unsure_of_what_is_not_a_photo() {
    let Some(dir) = images() else { return };
    let c = classifier();
    let top = |name: &str| {
        let guesses = c.classify(&iris_vision::load_image(&dir.join(name)).unwrap(), 5).unwrap();
        eprintln!("{name}: {guesses:?}");
        guesses
    };
    let cat = top("chelsea.png");
    assert!(["tabby", "tiger cat", "Egyptian cat"].contains(&cat[0].label.as_str()), "{cat:?}");
    let coffee = top("coffee.png");
    assert!(["espresso", "cup", "coffee mug"].contains(&coffee[0].label.as_str()), "{coffee:?}");
    // A page of text is no ImageNet object: whatever comes first must be a weak guess.
    let page = top("page.png");
    assert!(page[0].probability < 0.5, "{page:?}");
}
