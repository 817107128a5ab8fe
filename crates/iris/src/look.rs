//! `iris look --image FILE [--question "…"] [--json]`: the vision aid on one picture, as a
//! visually impaired user would use it: "read this", "what colour is this", "what is in front
//! of me". One short answer, meant to be spoken; `--json` adds the lines of text read, each
//! with its confidence and region.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use crate::backends::Models;

#[derive(Args)]
pub struct LookArgs {
    /// A photo (JPEG or PNG, turned upright by its EXIF orientation).
    #[arg(long, required_unless_present = "camera")]
    image: Option<PathBuf>,
    /// Take the picture with the camera.
    #[arg(long, conflicts_with = "image")]
    camera: bool,
    #[arg(long, default_value = "What is in front of me?")]
    question: String,
    #[arg(long)]
    json: bool,
}

pub fn run(config_path: Option<&Path>, args: LookArgs) -> Result<ExitCode> {
    let Some(path) = &args.image else {
        // nokhwa builds here, but no machine this was made on has a camera to test it with.
        bail!("camera capture is not in this build of Iris yet; take a photo and use --image FILE");
    };
    // Check the picture before loading any model: a bad file fails in milliseconds.
    let image = iris_vision::load_image(path)?;
    let models = Models::open(config_path)?;
    let mut aid = models.vision_aid()?;
    let started = Instant::now();
    let look = aid.look(&image, &args.question)?;
    if args.json {
        let lines: Vec<_> = look
            .lines
            .iter()
            .map(|l| json!({"text": l.text, "confidence": l.confidence, "box": [l.region.x0, l.region.y0, l.region.x1, l.region.y1]}))
            .collect();
        println!(
            "{}",
            json!({"image": path.display().to_string(), "question": args.question, "ask": format!("{:?}", look.ask).to_lowercase(),
                   "answer": look.answer, "lines": lines, "ms": started.elapsed().as_millis() as u64})
        );
    } else {
        println!("{}", look.answer);
    }
    Ok(ExitCode::SUCCESS)
}
