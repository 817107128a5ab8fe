//! Cameras through `nokhwa` (V4L2 on Linux): the devices there are, one opened at a chosen
//! resolution and rate, and the latest frame whenever it is asked for. A capture thread keeps
//! reading so a grab never returns a stale buffered frame; it decodes only what is grabbed.
//! No camera is a clear error, never a crash.

pub mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use iris_frames::ImageFrame;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};

pub use watch::{SceneWatch, WatchSettings};

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("no camera found (no video device answers); connect one, or give a photo with --image")]
    NoCamera,
    #[error("cannot list cameras: {0}")]
    Query(String),
    #[error("camera {index}: cannot open it ({message}); check that it is connected and not in use, and that you may use it (the `video` group)")]
    Open { index: u32, message: String },
    #[error("camera {index}: no picture came ({message})")]
    Capture { index: u32, message: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraInfo {
    pub index: u32,
    pub name: String,
    pub description: String,
}

/// The cameras this machine has (empty when it has none).
pub fn list() -> Result<Vec<CameraInfo>, CameraError> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(|e| CameraError::Query(e.to_string()))?;
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(i, c)| CameraInfo {
            index: match c.index() {
                CameraIndex::Index(n) => *n,
                CameraIndex::String(_) => i as u32,
            },
            name: c.human_name(),
            description: c.description().to_owned(),
        })
        .collect())
}

/// What to ask the camera for; the nearest it offers is used.
#[derive(Clone, Copy, Debug)]
pub struct CaptureSettings {
    pub index: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self { index: 0, width: 1280, height: 720, fps: 15 }
    }
}

type Latest = Arc<Mutex<Option<Result<nokhwa::Buffer, String>>>>;

/// An open camera with its capture thread.
pub struct Camera {
    index: u32,
    latest: Latest,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Camera {
    pub fn open(settings: CaptureSettings) -> Result<Self, CameraError> {
        let index = settings.index;
        let latest: Latest = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (opened_tx, opened_rx) = mpsc::channel();
        let (l, s) = (latest.clone(), stop.clone());
        // The device handle stays on the thread that opened it.
        let thread = std::thread::Builder::new()
            .name("iris-camera".into())
            .spawn(move || {
                let format = CameraFormat::new(Resolution::new(settings.width, settings.height), FrameFormat::MJPEG, settings.fps);
                let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(format));
                let mut cam = match nokhwa::Camera::new(CameraIndex::Index(index), requested).and_then(|mut c| c.open_stream().map(|()| c))
                {
                    Ok(c) => {
                        let _ = opened_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                while !s.load(Ordering::Relaxed) {
                    let frame = cam.frame().map_err(|e| e.to_string());
                    let failed = frame.is_err();
                    *l.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame);
                    if failed {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                let _ = cam.stop_stream();
            })
            .map_err(|e| CameraError::Open { index, message: e.to_string() })?;
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(Self { index, latest, stop, thread: Some(thread) }),
            Ok(Err(message)) => {
                let _ = thread.join();
                if list().map(|l| l.is_empty()).unwrap_or(false) {
                    return Err(CameraError::NoCamera);
                }
                Err(CameraError::Open { index, message })
            }
            Err(_) => Err(CameraError::Open { index, message: "the capture thread stopped".into() }),
        }
    }

    /// The most recent frame, waiting up to `timeout` for the first one.
    pub fn grab(&self, timeout: Duration) -> Result<ImageFrame, CameraError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let taken = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match taken {
                Some(Ok(buffer)) => {
                    let img = buffer
                        .decode_image::<RgbFormat>()
                        .map_err(|e| CameraError::Capture { index: self.index, message: e.to_string() })?;
                    let (width, height) = (img.width(), img.height());
                    return Ok(ImageFrame { width, height, rgb: Arc::from(img.into_raw()) });
                }
                Some(Err(message)) if std::time::Instant::now() >= deadline => {
                    return Err(CameraError::Capture { index: self.index, message })
                }
                None if std::time::Instant::now() >= deadline => {
                    return Err(CameraError::Capture { index: self.index, message: format!("nothing within {} ms", timeout.as_millis()) })
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a camera (CI), listing is empty and opening says so plainly.
    #[test]
    fn a_missing_camera_is_a_clear_error() {
        let cameras = list().unwrap();
        if !cameras.is_empty() {
            eprintln!("this machine has cameras ({cameras:?}); the no-camera path is not exercised");
            return;
        }
        let err = Camera::open(CaptureSettings::default()).err().expect("no camera to open");
        assert!(matches!(err, CameraError::NoCamera), "{err}");
        assert!(err.to_string().contains("--image"), "{err}");
    }
}
