//! Uploaded audio and images are decoded by the same code as files on disk, so a broken WAV or
//! a decompression bomb gets the same clear refusal, naming the upload rather than a temp path.

use std::io::Write;

use iris_frames::ImageFrame;

use crate::error::ApiError;

fn staged(bytes: &[u8]) -> Result<tempfile::NamedTempFile, ApiError> {
    let mut f = tempfile::NamedTempFile::new().map_err(|e| ApiError::Internal(format!("cannot stage the upload: {e}")))?;
    f.write_all(bytes).map_err(|e| ApiError::Internal(format!("cannot stage the upload: {e}")))?;
    Ok(f)
}

fn renamed(message: String, tmp: &std::path::Path, name: &str) -> ApiError {
    ApiError::BadRequest(message.replace(&tmp.display().to_string(), name))
}

/// 16 kHz mono speech from an uploaded WAV of any rate and channel count.
pub fn speech(bytes: &[u8], name: &str) -> Result<Vec<f32>, ApiError> {
    let f = staged(bytes)?;
    iris_audio::load_speech(f.path()).map_err(|e| renamed(e.to_string(), f.path(), name))
}

/// An uploaded JPEG or PNG, upright, within the pixel limits.
pub fn image(bytes: &[u8], name: &str) -> Result<ImageFrame, ApiError> {
    let f = staged(bytes)?;
    iris_image::load_image(f.path()).map_err(|e| renamed(e.to_string(), f.path(), name))
}

/// The bytes of a `data:image/...;base64,...` URL.
pub fn data_url(url: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| ApiError::BadRequest("image_url must be a data: URL (Iris fetches nothing from the network)".into()))?;
    let (meta, data) = rest.split_once(',').ok_or_else(|| ApiError::BadRequest("the data: URL has no comma".into()))?;
    if !meta.ends_with(";base64") {
        return Err(ApiError::BadRequest("the data: URL must be base64".into()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| ApiError::BadRequest(format!("the image's base64 is broken: {e}")))
}
