//! Speech to text through the `transcribe` pipeline (Silero VAD → Whisper): the one path that
//! `iris transcribe`, `iris eval asr` and `iris bench asr` share, so what is measured is what
//! users run. A file is fed in 20 ms chunks, either as fast as the pipeline takes them or
//! paced like a live microphone; each partial transcript is stamped with the media clock, that
//! is how much audio had been fed when it came out, which is what a listener would notice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use iris_frames::{AudioChunk, Envelope, Frame};
use iris_pipeline::stages::BUILTIN;
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Turns};

use crate::backends::Models;

pub const TRANSCRIBE_PIPELINE: &str = include_str!("../../../pipelines/transcribe.toml");
const RATE: u64 = 16_000;
const CHUNK: usize = 320;

pub struct Partial {
    pub text: String,
    /// The end of the audio it covers.
    pub pts: Duration,
    /// The media clock when it came out: how much audio had been fed by then.
    pub heard_at: Duration,
}

#[derive(Default)]
pub struct Heard {
    /// The final transcripts of every utterance, joined.
    pub text: String,
    pub language: Option<String>,
    /// Where the VAD heard the first speech start.
    pub speech_started: Option<Duration>,
    pub partials: Vec<Partial>,
}

pub struct Listener {
    pipeline: Pipeline,
    turns: Arc<Turns>,
}

impl Listener {
    /// Loads the VAD and the recogniser; `partials` turns partial transcripts on (as configured).
    pub fn new(models: &mut Models, partials: bool) -> Result<Self> {
        if !partials {
            models.config.speech.partial_ms = 0;
        }
        let spec = PipelineSpec::parse(TRANSCRIBE_PIPELINE, BUILTIN)?;
        let timers = iris_tools::Timers::new(Arc::new(|_: &str| {}));
        let stages = models.stages(&spec, &timers, None)?;
        let turns = Turns::new();
        Ok(Self { pipeline: Pipeline::start(&spec, stages, turns.clone()), turns })
    }

    /// Hears one recording (16 kHz mono) as one turn.
    pub fn hear(&self, pcm: &[f32], paced: bool, on_partial: &mut dyn FnMut(&Partial)) -> Result<Heard> {
        let turn = self.turns.begin();
        let fed = AtomicU64::new(0);
        let feed = || -> Result<()> {
            let send = |env| self.pipeline.send(env).map_err(|_| anyhow!("the pipeline stopped"));
            let start = Instant::now();
            let mut samples = 0u64;
            for chunk in pcm.chunks(CHUNK) {
                let pts = Duration::from_secs_f64(samples as f64 / RATE as f64);
                samples += chunk.len() as u64;
                if paced {
                    // A microphone hands over a chunk once it has been recorded.
                    let due = start + Duration::from_secs_f64(samples as f64 / RATE as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                send(Envelope::new(turn.id, pts, Frame::Audio(AudioChunk::new(RATE as u32, chunk.to_vec()))))?;
                fed.store(samples, Ordering::Release);
            }
            send(Envelope::new(turn.id, Duration::from_secs_f64(samples as f64 / RATE as f64), Frame::EndOfTurn))
        };
        let mut heard = Heard::default();
        std::thread::scope(|s| {
            let feeder = s.spawn(feed);
            let result = loop {
                let env = match self.pipeline.recv() {
                    Some(PipelineEvent::Frame(env)) => env,
                    Some(PipelineEvent::Error { stage, message, .. }) => break Err(anyhow!("{stage}: {message}")),
                    None => break Err(anyhow!("the pipeline stopped before the transcript")),
                };
                match env.frame {
                    Frame::SpeechStarted => {
                        heard.speech_started.get_or_insert(env.pts);
                    }
                    Frame::Transcript(t) if t.is_final => {
                        if !t.text.is_empty() {
                            if !heard.text.is_empty() {
                                heard.text.push(' ');
                            }
                            heard.text.push_str(&t.text);
                        }
                        heard.language = t.language.or(heard.language.take());
                    }
                    Frame::Transcript(t) => {
                        let heard_at = Duration::from_secs_f64(fed.load(Ordering::Acquire) as f64 / RATE as f64);
                        let partial = Partial { text: t.text, pts: env.pts, heard_at };
                        on_partial(&partial);
                        heard.partials.push(partial);
                    }
                    Frame::EndOfTurn => break Ok(()),
                    _ => {}
                }
            };
            if result.is_err() {
                self.pipeline.cancel(turn.id);
            }
            let fed = feeder.join().map_err(|_| anyhow!("the input thread failed"));
            result.and(fed.and_then(|r| r))
        })?;
        Ok(heard)
    }
}
