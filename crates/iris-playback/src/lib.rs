//! Playing audio on the default output device (rodio over cpal/ALSA).
//!
//! A machine with no sound card is normal for a headless box: it is reported as
//! [`PlaybackError::NoDevice`] with what to do, never a panic.

use std::ffi::{c_char, c_int};
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

// libasound prints its own diagnostics to stderr (eight lines for "no sound card"); Iris
// reports the failure itself in one line, so ALSA's handler is replaced by a silent one.
// The C type is variadic; a handler that ignores the variadic tail is called correctly on the
// Linux ABIs Iris targets (x86_64 SysV, AArch64), as other ALSA users in Rust do.
type AlsaErrorHandler = unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char);

#[link(name = "asound")]
extern "C" {
    fn snd_lib_error_set_handler(handler: Option<AlsaErrorHandler>) -> c_int;
}

unsafe extern "C" fn quiet_alsa(_file: *const c_char, _line: c_int, _func: *const c_char, _err: c_int, _fmt: *const c_char) {}

fn silence_alsa() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: installs a handler that touches none of its arguments.
    ONCE.call_once(|| unsafe {
        snd_lib_error_set_handler(Some(quiet_alsa));
    });
}

/// The default output device, playing what is queued in order.
pub struct Speaker {
    // Keeps the device open; dropping it stops playback.
    _sink: rodio::MixerDeviceSink,
    player: Player,
}

impl Speaker {
    pub fn open() -> Result<Self, PlaybackError> {
        silence_alsa();
        let mut sink = DeviceSinkBuilder::open_default_sink().map_err(|e| PlaybackError::NoDevice(e.to_string()))?;
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
