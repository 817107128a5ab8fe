//! Sound devices through `cpal` (ALSA on Linux): listing them, a microphone that gives the live
//! loop 16 kHz mono chunks, and a loudspeaker that plays from the loop's flushable queue.
//!
//! Small fixed buffers (20 ms): the ALSA-pulse defaults add 400 ms each way. A device that is
//! missing or vanishes is an [`IoError::Device`] with one clear line; the microphone reopens it
//! with back-off, and the loop keeps running meanwhile.

mod resample;

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use iris_live::{Capture, IoError, Speaker};

pub use resample::StreamResampler;

const RATE: u32 = 16_000;
/// 20 ms at 16 kHz.
const CHUNK: usize = 320;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether a stream error means the device is gone. An under- or overrun (a busy machine) is
/// not: the stream goes on by itself, and reopening it would only lose more audio.
fn is_fatal(e: &cpal::Error) -> bool {
    use cpal::ErrorKind as K;
    matches!(e.kind(), K::DeviceNotAvailable | K::HostUnavailable | K::StreamInvalidated)
}

/// A stream's error callback: marks `failed` when the device is gone.
fn on_error(failed: Arc<AtomicBool>) -> impl FnMut(cpal::Error) + Send + 'static {
    move |e| {
        if is_fatal(&e) {
            failed.store(true, Ordering::Relaxed)
        }
    }
}

/// Drops a stream on a thread of its own: closing an ALSA stream joins its worker, and the
/// pulse plugin can hang there when its server went away; the loop must not hang with it.
fn close<T: Send + 'static>(stream: T) {
    let _ = std::thread::Builder::new().name("iris-close-stream".into()).spawn(move || drop(stream));
}

#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// The short name `[audio] input`/`output` take (ALSA's PCM name: "pulse", "hw:CARD=…").
    pub name: String,
    /// What the device says it is.
    pub description: String,
    pub input: bool,
    pub output: bool,
    pub default_input: bool,
    pub default_output: bool,
}

// libasound prints its own diagnostics to stderr (eight lines for "no sound card", one per
// retry while a sound server is away); Iris reports failures itself in one line, so ALSA's
// handler is replaced by a silent one. The C type is variadic; a handler that ignores the
// variadic tail is called correctly on the Linux ABIs Iris targets (x86_64 SysV, AArch64).
type AlsaErrorHandler = unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char);

#[link(name = "asound")]
extern "C" {
    fn snd_lib_error_set_handler(handler: Option<AlsaErrorHandler>) -> c_int;
}

unsafe extern "C" fn quiet_alsa(_file: *const c_char, _line: c_int, _func: *const c_char, _err: c_int, _fmt: *const c_char) {}

/// Silences libasound's own messages (once per process).
pub fn silence_alsa() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: installs a handler that touches none of its arguments.
    ONCE.call_once(|| unsafe {
        snd_lib_error_set_handler(Some(quiet_alsa));
    });
}

extern "C" {
    fn dup(fd: c_int) -> c_int;
    fn dup2(from: c_int, to: c_int) -> c_int;
    #[link_name = "close"]
    fn close_fd(fd: c_int) -> c_int;
}

/// Runs `f` with the process's stderr sent to /dev/null: ALSA's plugins (JACK's above all) print
/// their own complaints straight to stderr while devices are listed or opened, where Iris says
/// what went wrong in one line of its own. Other threads' stderr is lost for that moment too.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    silence_alsa();
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return f() };
    // SAFETY: plain descriptor calls on fd 2 and descriptors this function owns; stderr is
    // restored before returning.
    let saved = unsafe { dup(2) };
    if saved < 0 {
        return f();
    }
    unsafe { dup2(null.as_raw_fd(), 2) };
    let out = f();
    unsafe {
        dup2(saved, 2);
        close_fd(saved);
    }
    out
}

fn host() -> cpal::Host {
    silence_alsa();
    cpal::default_host()
}

/// The sound devices there are.
pub fn list() -> Result<Vec<DeviceInfo>, IoError> {
    quietly(list_devices)
}

fn list_devices() -> Result<Vec<DeviceInfo>, IoError> {
    let host = host();
    let def_in = host.default_input_device().map(|d| short_name(&d));
    let def_out = host.default_output_device().map(|d| short_name(&d));
    let devices = host.devices().map_err(|e| IoError::Device(format!("cannot list sound devices: {e}")))?;
    Ok(devices
        .map(|d| {
            let name = short_name(&d);
            DeviceInfo {
                description: description(&d),
                input: d.supports_input(),
                output: d.supports_output(),
                default_input: def_in.as_deref() == Some(name.as_str()),
                default_output: def_out.as_deref() == Some(name.as_str()),
                name,
            }
        })
        .collect())
}

fn short_name(d: &cpal::Device) -> String {
    d.id().map(|i| i.id().to_owned()).unwrap_or_else(|_| description(d))
}

fn description(d: &cpal::Device) -> String {
    d.description().map(|x| x.name().to_owned()).unwrap_or_else(|_| d.to_string())
}

/// Opens a device for a moment, as the loop would, and says what opened: for `iris doctor`.
/// `wanted`: a name from [`list`], or "" for the default.
pub fn probe(wanted: &str, input: bool) -> Result<String, IoError> {
    quietly(|| {
        let d = find(wanted, input)?;
        let cfg = config(&d, input)?;
        let (rate, channels) = (cfg.sample_rate, cfg.channels);
        let kind = if input { "microphone" } else { "loudspeaker" };
        let stream = if input {
            d.build_input_stream::<f32, _, _>(cfg, |_: &[f32], _| {}, |_| {}, None)
        } else {
            d.build_output_stream::<f32, _, _>(cfg, |out: &mut [f32], _| out.fill(0.0), |_| {}, None)
        }
        .map_err(|e| IoError::Device(format!("cannot open the {kind}: {e}")))?;
        close(stream);
        Ok(format!("{} ({rate} Hz, {channels} channel{})", description(&d), if channels == 1 { "" } else { "s" }))
    })
}

/// A device by its short name or its description.
fn find(wanted: &str, input: bool) -> Result<cpal::Device, IoError> {
    let host = host();
    let kind = if input { "input" } else { "output" };
    if wanted.is_empty() || wanted == "default" {
        let d = if input { host.default_input_device() } else { host.default_output_device() };
        return d.ok_or_else(|| IoError::Device(format!("no audio {kind} device; connect one, or see `iris audio list`")));
    }
    let devices = host.devices().map_err(|e| IoError::Device(format!("cannot list sound devices: {e}")))?;
    for d in devices {
        let ok = if input { d.supports_input() } else { d.supports_output() };
        if ok && (short_name(&d) == wanted || description(&d) == wanted) {
            return Ok(d);
        }
    }
    Err(IoError::Device(format!("no audio {kind} device named {wanted:?}; `iris audio list` shows the names ([audio] {kind})")))
}

fn config(d: &cpal::Device, input: bool) -> Result<cpal::StreamConfig, IoError> {
    // 16 kHz mono when the device takes it (the pulse plugin converts anything), else its own.
    let supported = if input {
        d.supported_input_configs().ok().map(|c| c.collect::<Vec<_>>())
    } else {
        d.supported_output_configs().ok().map(|c| c.collect())
    };
    let takes_16k = supported.unwrap_or_default().iter().any(|c| {
        c.channels() == 1 && c.min_sample_rate() <= RATE && c.max_sample_rate() >= RATE && c.sample_format() == cpal::SampleFormat::F32
    });
    if takes_16k {
        return Ok(cpal::StreamConfig { channels: 1, sample_rate: RATE, buffer_size: cpal::BufferSize::Fixed(CHUNK as u32) });
    }
    let def = if input { d.default_input_config() } else { d.default_output_config() };
    let kind = if input { "microphone" } else { "loudspeaker" };
    let def = def.map_err(|e| IoError::Device(format!("cannot open the {kind}: {e}; check it with `iris audio list`")))?;
    let frames = def.sample_rate() / 50;
    Ok(cpal::StreamConfig { channels: def.channels(), sample_rate: def.sample_rate(), buffer_size: cpal::BufferSize::Fixed(frames) })
}

/// The microphone: chunks of 16 kHz mono, reopened with back-off when it fails.
pub struct Microphone {
    wanted: String,
    stream: Option<(cpal::Stream, Receiver<Vec<f32>>, Arc<AtomicBool>)>,
    backoff: Duration,
    next_try: Instant,
    /// Why the last attempt to open failed, repeated while waiting to retry (one line, not many).
    last_error: String,
}

impl Microphone {
    /// `name`: a device name from [`list`], or "" for the default.
    pub fn new(name: &str) -> Self {
        Self {
            wanted: name.to_owned(),
            stream: None,
            backoff: Duration::from_millis(250),
            next_try: Instant::now(),
            last_error: String::new(),
        }
    }

    fn open(&self) -> Result<(cpal::Stream, Receiver<Vec<f32>>, Arc<AtomicBool>), IoError> {
        let device = find(&self.wanted, true)?;
        let cfg = config(&device, true)?;
        let (tx, rx): (SyncSender<Vec<f32>>, _) = sync_channel(256);
        let failed = Arc::new(AtomicBool::new(false));
        let channels = usize::from(cfg.channels.max(1));
        let mut resampler = StreamResampler::new(cfg.sample_rate, RATE);
        let mut pending: Vec<f32> = Vec::with_capacity(CHUNK * 2);
        let mut mono: Vec<f32> = Vec::new();
        let stream = device
            .build_input_stream::<f32, _, _>(
                cfg,
                move |data: &[f32], _| {
                    mono.clear();
                    mono.extend(data.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32));
                    resampler.push(&mono, &mut pending);
                    while pending.len() >= CHUNK {
                        // A full queue means the loop fell behind: drop this chunk rather than block the device.
                        let _ = tx.try_send(pending.drain(..CHUNK).collect());
                    }
                },
                on_error(failed.clone()),
                None,
            )
            .map_err(|e| IoError::Device(format!("cannot open the microphone: {e}")))?;
        stream.play().map_err(|e| IoError::Device(format!("cannot start the microphone: {e}")))?;
        Ok((stream, rx, failed))
    }
}

impl Capture for Microphone {
    fn read(&mut self) -> Result<Vec<f32>, IoError> {
        if self.stream.as_ref().is_some_and(|(_, _, failed)| failed.load(Ordering::Relaxed)) {
            if let Some(s) = self.stream.take() {
                close(s);
            }
            return Err(IoError::Device("the microphone stopped working; reopening it".into()));
        }
        if self.stream.is_none() {
            if Instant::now() < self.next_try {
                std::thread::sleep(Duration::from_millis(20));
                return Err(IoError::Device(self.last_error.clone()));
            }
            match quietly(|| self.open()) {
                Ok(s) => {
                    self.stream = Some(s);
                    self.backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.last_error = format!("{e} (retrying)");
                    return Err(IoError::Device(self.last_error.clone()));
                }
            }
        }
        let Some((_, rx, _)) = &self.stream else { return Err(IoError::Device("no microphone".into())) };
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(chunk) => Ok(chunk),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(s) = self.stream.take() {
                    close(s);
                }
                Err(IoError::Device("the microphone gives no sound; reopening it".into()))
            }
        }
    }
}

/// The loudspeaker: plays the loop's 16 kHz [`Speaker`] queue, converted to the device's rate
/// and channels when it does not take 16 kHz mono.
pub struct Loudspeaker {
    _stream: cpal::Stream,
    failed: Arc<AtomicBool>,
}

impl Loudspeaker {
    pub fn open(name: &str, speaker: &Speaker) -> Result<Self, IoError> {
        quietly(|| Self::open_device(name, speaker))
    }

    fn open_device(name: &str, speaker: &Speaker) -> Result<Self, IoError> {
        let device = find(name, false)?;
        let cfg = config(&device, false)?;
        let feed = speaker.clone();
        let channels = usize::from(cfg.channels.max(1));
        let step = f64::from(feed.rate()) / f64::from(cfg.sample_rate);
        let failed = Arc::new(AtomicBool::new(false));
        let (mut mono, mut input) = (Vec::new(), Vec::new());
        // Linear interpolation between queue samples `prev` and `next`, `pos` of the way.
        let (mut prev, mut next, mut pos) = (0.0f32, 0.0f32, 0.0f64);
        let stream = device
            .build_output_stream::<f32, _, _>(
                cfg,
                move |data: &mut [f32], _| {
                    let frames = data.len() / channels;
                    mono.resize(frames, 0.0);
                    if (step - 1.0).abs() < 1e-12 {
                        feed.pull(&mut mono);
                    } else {
                        let need = (pos + frames as f64 * step).floor() as usize;
                        input.resize(need, 0.0);
                        feed.pull(&mut input);
                        let mut taken = 0;
                        for o in mono.iter_mut() {
                            while pos >= 1.0 {
                                prev = next;
                                next = input.get(taken).copied().unwrap_or(0.0);
                                taken += 1;
                                pos -= 1.0;
                            }
                            *o = prev + (next - prev) * pos as f32;
                            pos += step;
                        }
                    }
                    for (frame, s) in data.chunks_mut(channels).zip(&mono) {
                        frame.iter_mut().for_each(|x| *x = *s);
                    }
                },
                on_error(failed.clone()),
                None,
            )
            .map_err(|e| IoError::Device(format!("cannot open the loudspeaker: {e}")))?;
        stream.play().map_err(|e| IoError::Device(format!("cannot start the loudspeaker: {e}")))?;
        Ok(Self { _stream: stream, failed })
    }

    /// The device reported an error (unplugged): reopen it.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Closes the stream without waiting for it (see `close`).
    pub fn close(self) {
        close(self._stream);
    }
}
