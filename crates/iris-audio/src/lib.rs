//! Audio in and out of files: WAV decoding with clear errors, resampling, WAV writing.
//!
//! Pure Rust, no device access. Any common WAV (8/16/24/32-bit integer or 32-bit float, any
//! rate, any channel count) is decoded to mono f32 and resampled, never refused for its format.

mod resample;
mod wav;

pub use resample::resample;
pub use wav::{
    pcm16_le, read_wav, to_i16, wav_bytes, write_wav_atomic, AudioError, DecodedAudio, WavStream, MAX_CHANNELS, MAX_RATE, MIN_RATE,
};

/// Mixes interleaved channels down to mono by averaging.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect()
}

/// Loads a WAV file as 16 kHz mono, the rate speech models take.
pub fn load_speech(path: &std::path::Path) -> Result<Vec<f32>, AudioError> {
    let decoded = read_wav(path)?;
    let mono = downmix(&decoded.samples, decoded.channels);
    Ok(resample(&mono, decoded.sample_rate, 16_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25, 0.5], 1), vec![0.25, 0.5]);
    }
}
