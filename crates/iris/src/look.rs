//! `iris look`: the vision aid (or the configured vision-language model) on one picture, as a
//! visually impaired user would use it: "read this", "what colour is this", "what is in front
//! of me". One short answer, meant to be spoken; `--json` adds the lines of text read, each
//! with its confidence and region. The picture comes from a file or the camera; `--watch`
//! keeps sampling and describes the scene again only when it really changes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_frames::ImageFrame;
use serde_json::json;

use crate::backends::Models;

#[derive(Args)]
pub struct LookArgs {
    /// A photo (JPEG or PNG, turned upright by its EXIF orientation).
    #[arg(long, required_unless_present_any = ["camera", "list_cameras", "frames"])]
    image: Option<PathBuf>,
    /// Take the picture with the camera.
    #[arg(long, conflicts_with = "image")]
    camera: bool,
    /// Which camera (see --list-cameras).
    #[arg(long, default_value_t = 0)]
    device: u32,
    /// The cameras this machine has.
    #[arg(long)]
    list_cameras: bool,
    /// Keep looking (with --camera or --frames) and describe the scene again whenever it
    /// really changes, speaking each description.
    #[arg(long)]
    watch: bool,
    /// Instead of the camera, the pictures in this folder in name order, one per sample (a
    /// recorded walk, or a test).
    #[arg(long, conflicts_with_all = ["image", "camera"])]
    frames: Option<PathBuf>,
    /// Time between samples in watch mode.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// Print descriptions without speaking them.
    #[arg(long)]
    quiet: bool,
    #[arg(long, default_value = "What is in front of me?")]
    question: String,
    #[arg(long)]
    json: bool,
}

pub fn run(config_path: Option<&Path>, args: LookArgs) -> Result<ExitCode> {
    if args.list_cameras {
        let cameras = iris_camera::list()?;
        if cameras.is_empty() {
            println!("No camera found.");
        }
        for c in cameras {
            println!("{}: {} ({})", c.index, c.name, c.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.watch || args.frames.is_some() {
        return watch(config_path, &args);
    }
    let (image, source) = match &args.image {
        // Check the picture before loading any model: a bad file fails in milliseconds.
        Some(path) => (iris_vision::load_image(path)?, path.display().to_string()),
        None => {
            let camera = iris_camera::Camera::open(capture(&args))?;
            (camera.grab(Duration::from_secs(5))?, format!("camera {}", args.device))
        }
    };
    let models = Models::open(config_path)?;
    let started = Instant::now();
    if !models.config.models.vlm.is_empty() {
        let answer = models.vision()?.describe(&image, &args.question)?;
        println!("{}", if args.json { json!({"image": source, "question": args.question, "answer": answer}).to_string() } else { answer });
        return Ok(ExitCode::SUCCESS);
    }
    let mut aid = models.vision_aid()?;
    let look = aid.look(&image, &args.question)?;
    if args.json {
        let lines: Vec<_> = look
            .lines
            .iter()
            .map(|l| json!({"text": l.text, "confidence": l.confidence, "box": [l.region.x0, l.region.y0, l.region.x1, l.region.y1]}))
            .collect();
        println!(
            "{}",
            json!({"image": source, "question": args.question, "ask": format!("{:?}", look.ask).to_lowercase(),
                   "answer": look.answer, "lines": lines, "ms": started.elapsed().as_millis() as u64})
        );
    } else {
        println!("{}", look.answer);
    }
    Ok(ExitCode::SUCCESS)
}

fn capture(args: &LookArgs) -> iris_camera::CaptureSettings {
    iris_camera::CaptureSettings { index: args.device, ..Default::default() }
}

/// Samples the camera (or the pictures of --frames) every --every-ms, and describes each new
/// scene. With --frames the clock is the samples' own (sample n is at n × every), so a test is
/// not at the mercy of a busy machine; the camera runs on the wall clock.
fn watch(config_path: Option<&Path>, args: &LookArgs) -> Result<ExitCode> {
    let every = Duration::from_millis(args.every_ms.max(100));
    let mut files = match &args.frames {
        Some(dir) => {
            let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read the folder {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| ["png", "jpg", "jpeg"].contains(&x.to_string_lossy().to_lowercase().as_str())))
                .collect();
            f.sort();
            if f.is_empty() {
                bail!("{}: no JPEG or PNG pictures in it", dir.display());
            }
            Some(f.into_iter())
        }
        None => None,
    };
    let camera = match files {
        Some(_) => None,
        None => Some(iris_camera::Camera::open(capture(args))?),
    };
    let models = Models::open(config_path)?;
    let mut vision = models.vision()?;
    let mut voice = if args.quiet { None } else { Some(models.voice(&models.config.models.tts)?) };
    let mut watch = iris_camera::SceneWatch::new(iris_camera::WatchSettings::default());
    let started = Instant::now();
    for n in 0u32.. {
        let (image, at): (ImageFrame, Duration) = match (&mut files, &camera) {
            (Some(f), _) => match f.next() {
                Some(path) => (iris_vision::load_image(&path)?, every * n),
                None => break,
            },
            (None, Some(cam)) => {
                let next = every * n;
                std::thread::sleep(next.saturating_sub(started.elapsed()));
                (cam.grab(Duration::from_secs(5))?, started.elapsed())
            }
            (None, None) => unreachable!("a source is chosen above"),
        };
        if !watch.consider(&image, at) {
            continue;
        }
        let said = vision.describe(&image, &args.question)?;
        if args.json {
            println!("{}", json!({"at_s": at.as_secs_f64(), "sample": n, "answer": said}));
        } else {
            println!("[{:7.1} s] {said}", at.as_secs_f64());
        }
        if let Some(v) = voice.as_mut() {
            let audio = v.synthesize(&said, &iris_backend::NeverStop)?;
            iris_playback::play_blocking(&audio, v.sample_rate()).context("cannot play the description")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
