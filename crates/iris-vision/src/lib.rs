//! What can honestly be said of an image from its pixels and small models. Decoding with limits
//! lives in `iris-image` and is re-exported here. [`VisionAid`] is the vision backend used until a
//! vision-language model is loaded: it reads text (OCR), reports brightness and the main colour,
//! and says plainly that it cannot recognise objects.

mod aid;

pub use aid::{ask_of, Ask, Look, VisionAid};

pub use iris_image::{load_image, ImageError, MAX_PIXELS, MAX_SIDE};

use iris_frames::ImageFrame;
#[cfg(test)]
use std::sync::Arc;

/// The everyday name of one sRGB colour: neutrals by lightness when there is little colour in
/// it, else by hue (with brown for dark oranges and reds).
pub fn colour_name(r: u8, g: u8, b: u8) -> &'static str {
    let (r, g, b) = (f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let (v, s) = (max, if max > 0.0 { (max - min) / max } else { 0.0 });
    if v < 0.16 {
        return "black";
    }
    if s < 0.18 || (max - min) < 0.08 {
        return match v {
            v if v < 0.4 => "dark grey",
            v if v < 0.7 => "grey",
            v if v < 0.86 => "light grey",
            _ => "white",
        };
    }
    let hue = if max == r {
        60.0 * ((g - b) / (max - min)).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / (max - min) + 2.0)
    } else {
        60.0 * ((r - g) / (max - min) + 4.0)
    };
    match hue {
        h if !(15.0..345.0).contains(&h) => {
            if v < 0.45 {
                "brown"
            } else if s < 0.45 && v > 0.75 {
                "pink"
            } else {
                "red"
            }
        }
        h if h < 45.0 => {
            if v < 0.6 {
                "brown"
            } else {
                "orange"
            }
        }
        h if h < 70.0 => "yellow",
        h if h < 165.0 => "green",
        h if h < 200.0 => "turquoise",
        h if h < 260.0 => "blue",
        h if h < 295.0 => "purple",
        _ => "pink",
    }
}

/// Mean brightness (0..1) of the whole picture, and the most common colour name in its middle
/// half (what the camera is pointed at), counted over at most about 40,000 pixels.
pub fn pixel_facts(image: &ImageFrame) -> (f32, &'static str) {
    let (w, h) = (image.width as usize, image.height as usize);
    let n = (w * h).max(1) as f64;
    let mut luma = 0f64;
    for px in image.rgb.chunks_exact(3) {
        luma += 0.2126 * f64::from(px[0]) + 0.7152 * f64::from(px[1]) + 0.0722 * f64::from(px[2]);
    }
    let step = ((w * h / 4) as f64 / 40_000.0).sqrt().ceil().max(1.0) as usize;
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for y in (h / 4..(3 * h / 4).max(h / 4 + 1)).step_by(step) {
        for x in (w / 4..(3 * w / 4).max(w / 4 + 1)).step_by(step) {
            let i = (y * w + x) * 3;
            let Some(px) = image.rgb.get(i..i + 3) else { continue };
            let name = colour_name(px[0], px[1], px[2]);
            match counts.iter_mut().find(|c| c.0 == name) {
                Some(c) => c.1 += 1,
                None => counts.push((name, 1)),
            }
        }
    }
    let colour = counts.iter().max_by_key(|c| c.1).map_or("grey", |c| c.0);
    ((luma / n / 255.0) as f32, colour)
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

    #[test]
    fn everyday_colour_names() {
        assert_eq!(colour_name(190, 190, 190), "light grey");
        assert_eq!(colour_name(200, 196, 205), "light grey");
        assert_eq!(colour_name(250, 250, 250), "white");
        assert_eq!(colour_name(10, 10, 12), "black");
        assert_eq!(colour_name(20, 60, 200), "blue");
        assert_eq!(colour_name(30, 140, 40), "green");
        assert_eq!(colour_name(120, 70, 30), "brown");
        assert_eq!(colour_name(240, 140, 20), "orange");
        assert_eq!(colour_name(240, 160, 190), "pink");
        assert_eq!(colour_name(230, 220, 40), "yellow");
    }
}
