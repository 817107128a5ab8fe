//! What the loop looks through when a question is about what is in front of the user: the
//! configured camera, or in the simulated room a photo standing in for it (`--camera-file`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use iris_backend::{BackendError, Camera};
use iris_frames::ImageFrame;

/// The first frame of a camera just opened may take this long (exposure settling, USB start).
const FIRST_FRAME: Duration = Duration::from_secs(2);

/// A photo shown to the camera: the same frame whenever asked.
pub struct Photo(ImageFrame);

impl Photo {
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self(iris_vision::load_image(path).with_context(|| format!("--camera-file {}", path.display()))?))
    }
}

impl Camera for Photo {
    fn latest(&mut self) -> Result<ImageFrame, BackendError> {
        Ok(self.0.clone())
    }
}

/// The `[camera]` device, opened at the first question that needs it and again after it fails:
/// a camera unplugged at start, or between questions, costs that answer only.
pub struct Device {
    index: u32,
    open: Option<iris_camera::Camera>,
}

impl Device {
    pub fn new(index: u32) -> Self {
        Self { index, open: None }
    }
}

impl Camera for Device {
    fn latest(&mut self) -> Result<ImageFrame, BackendError> {
        let fail = |e: iris_camera::CameraError| BackendError::Inference(e.to_string());
        let camera = match &self.open {
            Some(c) => c,
            None => {
                let settings = iris_camera::CaptureSettings { index: self.index, ..Default::default() };
                self.open.insert(iris_camera::Camera::open(settings).map_err(fail)?)
            }
        };
        camera.grab(FIRST_FRAME).map_err(|e| {
            // Opened again at the next question: it may have been unplugged.
            self.open = None;
            fail(e)
        })
    }
}

/// The camera to answer with: `--camera-file` in the simulated room, else `[camera]` when enabled.
pub fn camera(config: &iris_config::Config, photo: Option<&Path>) -> Result<Option<Box<dyn Camera>>> {
    if let Some(path) = photo {
        return Ok(Some(Box::new(Photo::load(path)?)));
    }
    Ok(config.camera.enabled.then(|| Box::new(Device::new(config.camera.index)) as Box<dyn Camera>))
}
