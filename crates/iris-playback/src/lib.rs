//! Playing audio on the default output device (rodio over cpal/ALSA).
//!
//! A machine with no sound card is normal for a headless box: it is reported as
//! [`PlaybackError::NoDevice`] with what to do, never a panic.

use std::num::NonZeroU32;

use rodio::buffer::SamplesBuffer;
use rodio::{ChannelCount, DeviceSinkBuilder, Player};

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("no audio output device ({0}); use --out answer.wav to save the answer instead")]
    NoDevice(String),
    #[error("bad audio: {0}")]
    Input(String),
}

/// The default output device, playing what is queued in order.
pub struct Speaker {
    // Keeps the device open; dropping it stops playback.
    _sink: rodio::MixerDeviceSink,
    player: Player,
}

impl Speaker {
    pub fn open() -> Result<Self, PlaybackError> {
        let mut sink = iris_sound::quietly(DeviceSinkBuilder::open_default_sink).map_err(|e| PlaybackError::NoDevice(e.to_string()))?;
        sink.log_on_drop(false);
        let player = Player::connect_new(sink.mixer());
        Ok(Self { _sink: sink, player })
    }

    /// Queues mono samples after what is already queued.
    pub fn queue(&self, samples: Vec<f32>, sample_rate: u32) -> Result<(), PlaybackError> {
        let rate = NonZeroU32::new(sample_rate).ok_or_else(|| PlaybackError::Input("sample rate 0".into()))?;
        self.player.append(SamplesBuffer::new(ChannelCount::MIN, rate, samples));
        Ok(())
    }

    /// Waits until everything queued has been handed to the device.
    pub fn wait(&self) {
        self.player.sleep_until_end();
    }
}

/// Plays mono samples and waits until they have been handed to the device.
pub fn play_blocking(samples: &[f32], sample_rate: u32) -> Result<(), PlaybackError> {
    let speaker = Speaker::open()?;
    speaker.queue(samples.to_vec(), sample_rate)?;
    speaker.wait();
    Ok(())
}
