//! `iris listen --record DIR`: what the echo canceller was given and what it gave back, kept so
//! that a missed barge-in on a real room can be replayed offline, call for call (WebRTC's
//! "aecdump" does the same for its audio processing module).
//!
//! DIR gets `played.wav` (the far-end reference, in the order it was rendered), `mic.wav` (the
//! microphone before cancelling), `cleaned.wav` (after) and `steps.txt` (per microphone chunk,
//! how many reference samples were rendered before it and how many microphone samples it had),
//! which is what `iris-aec`'s replay needs to feed the same calls in the same order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use iris_audio::WavStream;
use iris_backend::EchoCanceller;

const RATE: u32 = 16_000;

struct Recorded {
    inner: Box<dyn EchoCanceller>,
    files: Option<Files>,
    rendered: usize,
}

struct Files {
    played: WavStream,
    mic: WavStream,
    cleaned: WavStream,
    steps: BufWriter<File>,
}

/// `inner`, with its calls recorded into `dir`; when the folder cannot be written, `inner` as
/// it was (said once: the loop runs without the recording).
pub fn recorded(inner: Box<dyn EchoCanceller>, dir: &Path) -> Box<dyn EchoCanceller> {
    match Files::create(dir) {
        Ok(files) => Box::new(Recorded { inner, files: Some(files), rendered: 0 }),
        Err(e) => {
            eprintln!("not recording: {e:#}");
            inner
        }
    }
}

impl Files {
    fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make the recording folder {}", dir.display()))?;
        let wav = |name: &str| WavStream::create(&dir.join(name), RATE).with_context(|| format!("cannot record into {}", dir.display()));
        let steps = File::create(dir.join("steps.txt")).with_context(|| format!("cannot record into {}", dir.display()))?;
        Ok(Self { played: wav("played.wav")?, mic: wav("mic.wav")?, cleaned: wav("cleaned.wav")?, steps: BufWriter::new(steps) })
    }
}

impl Recorded {
    /// A write that fails (a full disk) ends the recording, not the loop: said once.
    fn keep(&mut self, f: impl FnOnce(&mut Files) -> Result<()>) {
        if let Some(files) = self.files.as_mut() {
            if let Err(e) = f(files) {
                eprintln!("the echo recording stopped: {e:#}");
                self.files = None;
            }
        }
    }
}

impl EchoCanceller for Recorded {
    fn render(&mut self, played: &[f32]) {
        self.rendered += played.len();
        self.keep(|f| Ok(f.played.write(played)?));
        self.inner.render(played);
    }

    fn cancel(&mut self, captured: &[f32]) -> Vec<f32> {
        let cleaned = self.inner.cancel(captured);
        let rendered = std::mem::take(&mut self.rendered);
        self.keep(|f| {
            f.mic.write(captured)?;
            f.cleaned.write(&cleaned)?;
            Ok(writeln!(f.steps, "{rendered} {}", captured.len())?)
        });
        cleaned
    }

    fn erle_db(&self) -> Option<f64> {
        self.inner.erle_db()
    }

    fn delay_ms(&self) -> Option<i32> {
        self.inner.delay_ms()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(mut f) = self.files.take() {
            let done = f.steps.flush().map_err(anyhow::Error::from).and_then(|_| {
                f.played.finish()?;
                f.mic.finish()?;
                Ok(f.cleaned.finish()?)
            });
            if let Err(e) = done {
                eprintln!("the echo recording was not finished: {e:#}");
            }
        }
    }
}

/// Most microphone chunks a recording may have (an hour of 10 ms chunks), and most samples a
/// step may name: checked before anything is replayed.
const MAX_STEPS: usize = 360_000;
const MAX_STEP: usize = 16_000 * 10;

/// A `--record` folder read back: the calls, in order, as (rendered, captured) sample counts.
pub struct Recording {
    pub played: Vec<f32>,
    pub mic: Vec<f32>,
    pub steps: Vec<(usize, usize)>,
}

impl Recording {
    pub fn open(dir: &Path) -> Result<Self> {
        let wav = |name: &str| -> Result<Vec<f32>> {
            let path = dir.join(name);
            let a = iris_audio::read_wav(&path).with_context(|| format!("{}: not an `iris listen --record` folder", dir.display()))?;
            anyhow::ensure!(a.sample_rate == RATE && a.channels == 1, "{}: expected 16 kHz mono, as --record writes it", path.display());
            Ok(a.samples)
        };
        let steps_file = dir.join("steps.txt");
        let size = std::fs::metadata(&steps_file).with_context(|| format!("{}: no steps.txt", dir.display()))?.len();
        // Two numbers of at most six digits a line.
        anyhow::ensure!(
            size <= (MAX_STEPS * 14) as u64,
            "{}: steps.txt is {size} bytes, more than --record writes in an hour",
            dir.display()
        );
        let text = std::fs::read_to_string(&steps_file).with_context(|| format!("{}: cannot read steps.txt", dir.display()))?;
        let mut steps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut n = line.split_whitespace().map(|x| x.parse::<usize>().ok().filter(|n| *n <= MAX_STEP));
            let (Some(Some(r)), Some(Some(c)), None) = (n.next(), n.next(), n.next()) else {
                anyhow::bail!("{}: line {} of steps.txt is not two sample counts (each at most {MAX_STEP})", dir.display(), i + 1);
            };
            anyhow::ensure!(steps.len() < MAX_STEPS, "{}: steps.txt has more than {MAX_STEPS} steps", dir.display());
            steps.push((r, c));
        }
        let (played, mic) = (wav("played.wav")?, wav("mic.wav")?);
        let (r, c) = steps.iter().fold((0, 0), |(r, c), s| (r + s.0, c + s.1));
        anyhow::ensure!(r <= played.len() && c <= mic.len(), "{}: steps.txt names more audio than the WAV files hold", dir.display());
        Ok(Self { played, mic, steps })
    }

    /// The microphone through `aec`, fed in the recorded order.
    pub fn replay(&self, aec: &mut dyn EchoCanceller) -> Vec<f32> {
        let (mut r, mut c) = (0, 0);
        let mut out = Vec::with_capacity(self.mic.len());
        for &(nr, nc) in &self.steps {
            aec.render(&self.played[r..r + nr]);
            out.extend(aec.cancel(&self.mic[c..c + nc]));
            r += nr;
            c += nc;
        }
        out
    }
}
