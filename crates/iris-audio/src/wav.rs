//! WAV decoding that says what is wrong with a bad file, and atomic WAV writing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: no such file; check the path")]
    Missing { path: PathBuf },
    #[error("{path}: cannot read it: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: the file is empty; record or export the audio again")]
    Empty { path: PathBuf },
    #[error("{path}: not a WAV file ({found}); convert it, e.g. `sox input.mp3 -r 16000 -c 1 output.wav`")]
    NotWav { path: PathBuf, found: String },
    #[error("{path}: the WAV file is truncated ({message}); record or export it again")]
    Truncated { path: PathBuf, message: String },
    #[error("{path}: unsupported WAV encoding ({message}); convert it to 16-bit PCM, e.g. `sox input.wav -b 16 output.wav`")]
    Unsupported { path: PathBuf, message: String },
    #[error("{path}: the WAV file holds no audio; record it again")]
    NoSamples { path: PathBuf },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// The sample rates audio can have: a header claiming less (1 Hz) or more is damage or an
/// attack, and resampling it would cost memory and time out of all proportion to the file.
pub const MIN_RATE: u32 = 4_000;
pub const MAX_RATE: u32 = 384_000;
/// Channels a WAV may have (7.1 is 8; 32 leaves room for microphone arrays).
pub const MAX_CHANNELS: usize = 32;

/// Interleaved samples in -1..1 with their format.
#[derive(Clone, Debug)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    pub channels: usize,
    pub samples: Vec<f32>,
}

impl DecodedAudio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.channels.max(1) as f64 / f64::from(self.sample_rate.max(1))
    }
}

pub fn read_wav(path: &Path) -> Result<DecodedAudio, AudioError> {
    let p = || path.to_path_buf();
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AudioError::Missing { path: p() },
        _ => AudioError::Io { path: p(), message: e.to_string() },
    })?;
    let len = file.metadata().map_err(|e| AudioError::Io { path: p(), message: e.to_string() })?.len();
    if len == 0 {
        return Err(AudioError::Empty { path: p() });
    }
    let mut magic = [0u8; 12];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| AudioError::Io { path: p(), message: e.to_string() })?;
    if got < 12 || &magic[..4] != b"RIFF" || &magic[8..12] != b"WAVE" {
        if got >= 4 && &magic[..4] == b"RIFF" {
            return Err(AudioError::Truncated { path: p(), message: format!("only {len} bytes") });
        }
        return Err(AudioError::NotWav { path: p(), found: describe_magic(&magic[..got]) });
    }
    drop(file);

    let reader = hound::WavReader::new(BufReader::new(File::open(path).map_err(|e| AudioError::Io { path: p(), message: e.to_string() })?))
        .map_err(|e| classify(path, e))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::Unsupported { path: p(), message: format!("{channels} channels; use 1 to {MAX_CHANNELS}") });
    }
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(AudioError::Unsupported {
            path: p(),
            message: format!("a sample rate of {} Hz; audio is {MIN_RATE} to {MAX_RATE} Hz", spec.sample_rate),
        });
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => collect(path, reader.into_samples::<f32>().map(|s| s.map(|v| v.clamp(-1.0, 1.0))))?,
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(1..=32).contains(&bits) {
                return Err(AudioError::Unsupported { path: p(), message: format!("{bits}-bit samples") });
            }
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            collect(path, reader.into_samples::<i32>().map(|s| s.map(|v| v as f32 * scale)))?
        }
    };
    if samples.len() < channels {
        return Err(AudioError::NoSamples { path: p() });
    }
    Ok(DecodedAudio { sample_rate: spec.sample_rate, channels, samples })
}

fn collect(path: &Path, samples: impl Iterator<Item = hound::Result<f32>>) -> Result<Vec<f32>, AudioError> {
    let mut out = Vec::new();
    for s in samples {
        // Any read failure inside the data chunk means the file stops early.
        out.push(s.map_err(|e| match e {
            hound::Error::IoError(_) => {
                AudioError::Truncated { path: path.to_path_buf(), message: "the audio data ends before its header says it does".into() }
            }
            other => classify(path, other),
        })?);
    }
    Ok(out)
}

fn classify(path: &Path, e: hound::Error) -> AudioError {
    let p = path.to_path_buf();
    match e {
        // The file opened and starts with RIFF/WAVE, so a failed read means it stops early.
        hound::Error::IoError(_) => AudioError::Truncated { path: p, message: "the header is incomplete".into() },
        // A format chunk hound cannot take is an encoding question (ADPCM, A-law, …), not damage.
        hound::Error::FormatError(m) if m.contains("fmt") => {
            AudioError::Unsupported { path: p, message: format!("{m}: a compressed or unusual encoding") }
        }
        hound::Error::FormatError(m) if m.contains("data") || m.contains("chunk") => {
            AudioError::Truncated { path: p, message: m.to_owned() }
        }
        hound::Error::FormatError(m) => AudioError::NotWav { path: p, found: m.to_owned() },
        hound::Error::Unsupported => AudioError::Unsupported { path: p, message: "compressed or unusual WAV format".into() },
        other => AudioError::Unsupported { path: p, message: other.to_string() },
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn describe_magic(bytes: &[u8]) -> String {
    let known: [(&[u8], &str); 6] = [
        (b"ID3", "it looks like MP3"),
        (b"fLaC", "it looks like FLAC"),
        (b"OggS", "it looks like Ogg"),
        (b"\x89PNG", "it looks like a PNG image"),
        (b"\xff\xd8\xff", "it looks like a JPEG image"),
        (b"%PDF", "it looks like a PDF"),
    ];
    for (magic, what) in known {
        if bytes.starts_with(magic) {
            return what.to_owned();
        }
    }
    if bytes.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        return "it looks like text".to_owned();
    }
    "it has no RIFF/WAVE header".to_owned()
}

/// One sample as 16-bit PCM, rounded.
pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// 16-bit little-endian mono samples without a header (Wyoming's chunks, OpenAI's `pcm`).
pub fn pcm16_le(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| to_i16(*s).to_le_bytes()).collect()
}

/// A whole 16-bit mono WAV file in memory, for answers sent over the network.
pub fn wav_bytes(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let data = pcm16_le(samples);
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    // PCM format chunk: 16 bytes, format 1, one channel, rate, byte rate, block align, bits.
    for (v, n) in [(16u32, 4), (1, 2), (1, 2), (sample_rate, 4), (sample_rate * 2, 4), (2, 2), (16, 2)] {
        out.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Writes 16-bit mono PCM to a temporary file beside `path`, then renames it into place, so a
/// failure never leaves a half-written WAV where the answer is expected.
pub fn write_wav_atomic(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), AudioError> {
    let mut w = WavStream::create(path, sample_rate)?;
    w.write(samples)?;
    w.finish()
}

/// A WAV file written as audio arrives (16-bit mono), under a temporary name beside its
/// destination; [`WavStream::finish`] renames it into place. Dropped unfinished, it removes
/// itself, so a failure never leaves a half-written file where the result is expected.
pub struct WavStream {
    writer: Option<hound::WavWriter<std::io::BufWriter<File>>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl WavStream {
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self, AudioError> {
        let fail = |message: String| AudioError::Write { path: path.to_path_buf(), message };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| fail("not a file name".into()))?;
        let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let spec = hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let writer = hound::WavWriter::create(&tmp, spec).map_err(|e| fail(e.to_string()))?;
        Ok(Self { writer: Some(writer), tmp, path: path.to_path_buf() })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let w = self.writer.as_mut().ok_or_else(|| AudioError::Write { path: self.path.clone(), message: "already finished".into() })?;
        for &s in samples {
            w.write_sample(to_i16(s)).map_err(|e| AudioError::Write { path: self.path.clone(), message: e.to_string() })?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), AudioError> {
        let fail = |message: String| AudioError::Write { path: self.path.clone(), message };
        if let Some(w) = self.writer.take() {
            w.finalize().map_err(|e| fail(e.to_string()))?;
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| fail(e.to_string()))
    }
}

impl Drop for WavStream {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bits: u16, rate: u32, channels: u16, n: usize) -> PathBuf {
        let path = dir.join(name);
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..n * usize::from(channels) {
            let v = ((i as f32 * 0.01).sin() * 0.5 * ((1i64 << (bits - 1)) - 1) as f32) as i32;
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        path
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("iris-audio-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_8_16_and_24_bit_stereo() {
        let d = tmp();
        for bits in [8, 16, 24] {
            let a = read_wav(&write(&d, &format!("b{bits}.wav"), bits, 44_100, 2, 1000)).unwrap();
            assert_eq!((a.sample_rate, a.channels, a.samples.len()), (44_100, 2, 2000));
            assert!(a.samples.iter().all(|s| s.abs() <= 0.51), "{bits}-bit");
        }
    }

    #[test]
    fn bad_files_are_named_errors() {
        let d = tmp();
        assert!(matches!(read_wav(&d.join("nope.wav")), Err(AudioError::Missing { .. })));
        std::fs::write(d.join("empty.wav"), b"").unwrap();
        assert!(matches!(read_wav(&d.join("empty.wav")), Err(AudioError::Empty { .. })));
        std::fs::write(d.join("text.wav"), b"hello, I am not audio at all").unwrap();
        let err = read_wav(&d.join("text.wav")).unwrap_err();
        assert!(err.to_string().contains("not a WAV file (it looks like text)"), "{err}");
        let good = write(&d, "full.wav", 16, 16_000, 1, 16_000);
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(d.join("cut.wav"), &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(read_wav(&d.join("cut.wav")), Err(AudioError::Truncated { .. })), "{:?}", read_wav(&d.join("cut.wav")));
        std::fs::write(d.join("head.wav"), &bytes[..20]).unwrap();
        assert!(matches!(read_wav(&d.join("head.wav")), Err(AudioError::Truncated { .. })));
    }

    #[test]
    fn streamed_wav_appears_only_when_finished() {
        let d = tmp();
        let path = d.join("stream.wav");
        let mut w = WavStream::create(&path, 16_000).unwrap();
        w.write(&[0.25; 100]).unwrap();
        assert!(!path.exists());
        w.finish().unwrap();
        assert_eq!(read_wav(&path).unwrap().samples.len(), 100);
        let abandoned = d.join("abandoned.wav");
        drop(WavStream::create(&abandoned, 16_000).unwrap());
        assert!(!abandoned.exists());
        assert!(std::fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("abandoned")));
    }

    #[test]
    fn atomic_write_round_trips() {
        let d = tmp();
        let path = d.join("out.wav");
        write_wav_atomic(&path, &[0.0, 0.5, -0.5], 22_050).unwrap();
        let a = read_wav(&path).unwrap();
        assert_eq!(a.sample_rate, 22_050);
        assert!((a.samples[1] - 0.5).abs() < 1e-3);
        assert!(std::fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    }

    /// Issue 14.1: a header claiming 1 Hz made resampling allocate 128 GB; it is refused at once.
    #[test]
    fn rates_no_audio_can_have_are_refused_before_any_work() {
        let d = std::env::temp_dir().join(format!("iris-rates-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for rate in [1u32, 3_999, 384_001, 2_000_000] {
            let path = d.join(format!("r{rate}.wav"));
            let mut bytes = wav_bytes(&[0.0; 1000], 16_000);
            bytes[24..28].copy_from_slice(&rate.to_le_bytes());
            bytes[28..32].copy_from_slice(&(rate * 2).to_le_bytes());
            std::fs::write(&path, bytes).unwrap();
            let started = std::time::Instant::now();
            let err = crate::load_speech(&path).unwrap_err().to_string();
            assert!(err.contains("sample rate") && err.contains("Hz"), "{rate}: {err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{rate}: refused only after {:?}", started.elapsed());
        }
        std::fs::remove_dir_all(&d).ok();
    }
}
