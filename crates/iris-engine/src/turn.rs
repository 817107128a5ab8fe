//! One whole turn (speech and/or text and/or a photo in; transcript, answer and speech out)
//! through the same stages as the voice loop, on the shared models.

use std::time::{Duration, Instant};

use iris_backend::{AsrOptions, StopFlag};
use iris_frames::{AudioChunk, Envelope, Frame, ImageFrame, TurnId};
use iris_pipeline::stages::{AsrSettings, AsrStage, VadSettings, VadStage, BUILTIN};
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Stage, Turns};

use crate::stats::{now_unix, TurnRecord};
use crate::{Engine, EngineError};

/// The turn pipeline: `[vad] asr llm sentences tts`, the VAD only when the loader gives one.
fn spec_text(with_vad: bool) -> String {
    let stage = |name: &str, capacity: usize| format!("[[stage]]\nuse = \"{name}\"\ncapacity = {capacity}\npolicy = \"block\"\n");
    let mut text =
        "name = \"turn\"\ninput = [\"audio\", \"image\", \"user_text\"]\noutput = [\"transcript\", \"text_delta\", \"audio\"]\n".to_owned();
    if with_vad {
        text.push_str(&stage("vad", 1024));
    }
    for (name, capacity) in [("asr", 1024), ("llm", 64), ("sentences", 256), ("tts", 64)] {
        text.push_str(&stage(name, capacity));
    }
    text
}

/// What a turn is asked with. Audio is 16 kHz mono.
#[derive(Clone, Debug, Default)]
pub struct TurnInput {
    pub source: String,
    pub audio: Option<Vec<f32>>,
    pub text: Option<String>,
    pub image: Option<ImageFrame>,
    /// Answer without the skills (timers, home actions): for clients that are not trusted
    /// with them, such as Wyoming's unless the owner allows it.
    pub without_tools: bool,
}

/// What a turn gives, as it comes.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnEvent {
    Transcript { text: String, is_final: bool },
    Delta(String),
    Audio { samples: Vec<f32>, sample_rate: u32 },
}

impl Engine {
    /// Runs one turn; events are passed on as the stages make them. The record (also kept
    /// for the status page) is returned when the turn ends.
    pub fn turn(&self, input: TurnInput, stop: &dyn StopFlag, on_event: &mut dyn FnMut(TurnEvent)) -> Result<TurnRecord, EngineError> {
        let started = Instant::now();
        let mut record = TurnRecord { at: now_unix(), source: input.source.clone(), ..TurnRecord::default() };
        let result = self.run_turn(input, stop, on_event, &mut record, started);
        record.total_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            record.error = Some(e.to_string());
            self.stats.log("error", format!("{} turn failed: {e}", record.source));
        }
        for (stage, ms) in &record.stages_ms {
            self.stats.observe(stage, Duration::from_millis(*ms));
        }
        if let Some(ms) = record.first_audio_ms {
            self.stats.observe("first_audio", Duration::from_millis(ms));
        }
        self.stats.record_turn(record.clone());
        result.map(|()| record)
    }

    fn run_turn(
        &self,
        input: TurnInput,
        stop: &dyn StopFlag,
        on_event: &mut dyn FnMut(TurnEvent),
        record: &mut TurnRecord,
        started: Instant,
    ) -> Result<(), EngineError> {
        let live = self.live();
        let bad = |e: String| EngineError::Turn(e);
        let spec = PipelineSpec::parse(&spec_text(live.vad.is_some()), BUILTIN).map_err(|e| bad(e.to_string()))?;
        let cfg = &live.config;
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        if let Some(vad) = &live.vad {
            let settings = VadSettings { min_silence: Duration::from_millis(cfg.speech.endpoint_ms), ..VadSettings::default() };
            stages.push(Box::new(VadStage::new(vad()?, settings)));
        }
        let language = cfg.asr_language();
        let asr = AsrSettings { gated: live.vad.is_some(), partial_every: None };
        stages.push(Box::new(AsrStage::new(live.asr.clone(), AsrOptions { language, partial: false, fit_context: false }, asr)));
        stages.extend(live.answer_stages(!input.without_tools, None));

        let turns = Turns::new();
        let pipeline = Pipeline::start(&spec, stages, turns.clone());
        let turn = turns.begin();
        let send =
            |pts: Duration, frame: Frame| pipeline.send(Envelope::new(turn.id, pts, frame)).map_err(|_| bad("the pipeline stopped".into()));
        let fed = (|| {
            if let Some(text) = input.text.filter(|t| !t.trim().is_empty()) {
                send(Duration::ZERO, Frame::UserText(text))?;
            }
            if let Some(image) = input.image {
                send(Duration::ZERO, Frame::Image(image))?;
            }
            let pts = feed_audio(&pipeline, turn.id, input.audio.as_deref().unwrap_or_default())
                .map_err(|_| bad("the pipeline stopped".into()))?;
            send(pts, Frame::EndOfTurn)
        })();
        let result = fed.and_then(|()| loop {
            if stop.should_stop() {
                pipeline.cancel(turn.id);
                break Err(bad("the turn was cancelled".into()));
            }
            let event = match pipeline.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => e,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => break Err(bad("the pipeline stopped before answering".into())),
            };
            match event {
                PipelineEvent::Frame(env) => match env.frame {
                    Frame::Transcript(t) => {
                        if t.is_final {
                            append_words(&mut record.transcript, &t.text);
                        }
                        on_event(TurnEvent::Transcript { text: t.text, is_final: t.is_final });
                    }
                    Frame::TextDelta(d) => {
                        record.answer.push_str(&d);
                        on_event(TurnEvent::Delta(d));
                    }
                    Frame::Audio(c) => {
                        record.first_audio_ms.get_or_insert(started.elapsed().as_millis() as u64);
                        on_event(TurnEvent::Audio { samples: c.samples.to_vec(), sample_rate: c.sample_rate });
                    }
                    Frame::EndOfTurn => break Ok(()),
                    _ => {}
                },
                PipelineEvent::Error { stage, message, .. } => {
                    pipeline.cancel(turn.id);
                    break Err(bad(format!("{stage}: {message}")));
                }
            }
        });
        record.stages_ms = pipeline.timings(turn.id).into_iter().map(|(s, d)| (s.to_owned(), d.as_millis() as u64)).collect();
        pipeline.shutdown();
        record.answer = record.answer.trim().to_owned();
        result
    }
}

/// Feeds 16 kHz mono `pcm` into the pipeline as `turn`'s audio, in 20 ms chunks; returns where
/// it ends.
pub(crate) fn feed_audio(pipeline: &Pipeline, turn: TurnId, pcm: &[f32]) -> Result<Duration, iris_pipeline::edge::Closed> {
    let mut pts = Duration::ZERO;
    for chunk in pcm.chunks(320) {
        let c = AudioChunk::new(16_000, chunk.to_vec());
        let d = c.duration();
        pipeline.send(Envelope::new(turn, pts, Frame::Audio(c)))?;
        pts += d;
    }
    Ok(pts)
}

/// `text` appended to the words heard so far, a space between.
pub(crate) fn append_words(heard: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !heard.is_empty() {
        heard.push(' ');
    }
    heard.push_str(text);
}
