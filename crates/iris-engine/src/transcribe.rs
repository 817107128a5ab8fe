//! Server transcription (the OpenAI API, Wyoming) on the path `iris transcribe` takes: the VAD
//! first, so silence and noise give an empty transcript instead of Whisper's inventions ("you",
//! ten times over for five minutes of silence), and speech is recognised in windows of up to
//! 25 s, so a sentence read with pauses keeps its context.

use std::time::{Duration, Instant};

use iris_backend::{AsrOptions, AsrOutput, StopFlag, Vad};
use iris_frames::{Envelope, Frame};
use iris_pipeline::stages::{AsrSettings, AsrStage, VadSettings, VadStage, BUILTIN};
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Stage, Turns};

use crate::turn::{append_words, feed_audio};
use crate::{Engine, EngineError, Live};

const SPEC: &str = r#"
name = "server-transcribe"
input = ["audio"]
output = ["transcript"]
[[stage]]
use = "vad"
capacity = 1024
policy = "block"
[[stage]]
use = "asr"
capacity = 1024
policy = "block"
"#;

/// How much speech Whisper hears at once (its window is 30 s).
const WINDOW: Duration = Duration::from_secs(25);

impl Engine {
    /// The words in `pcm_16k` (16 kHz mono): only what the VAD hears as speech, when the loader
    /// gave a VAD; all of it otherwise.
    pub fn transcribe(&self, pcm_16k: &[f32], language: Option<String>, stop: &dyn StopFlag) -> Result<AsrOutput, EngineError> {
        let live = self.live();
        let language = language.or_else(|| live.config.asr_language());
        let options = AsrOptions { language, partial: false, fit_context: false };
        let started = Instant::now();
        let out = match &live.vad {
            Some(vad) => speech_only(&live, vad()?, pcm_16k, options, stop)?,
            None => live.asr.transcribe(pcm_16k, &options, stop)?,
        };
        self.stats.observe("asr", started.elapsed());
        Ok(out)
    }
}

fn speech_only(live: &Live, vad: Box<dyn Vad>, pcm: &[f32], options: AsrOptions, stop: &dyn StopFlag) -> Result<AsrOutput, EngineError> {
    let bad = |e: String| EngineError::Turn(format!("transcription: {e}"));
    let spec = PipelineSpec::parse(SPEC, BUILTIN).map_err(|e| bad(e.to_string()))?;
    let settings = VadSettings { min_silence: Duration::from_millis(live.config.speech.endpoint_ms), ..VadSettings::default() };
    let asr = AsrStage::new(live.asr.clone(), options, AsrSettings { gated: true, partial_every: None }).merging_utterances(WINDOW);
    let stages: Vec<Box<dyn Stage>> = vec![Box::new(VadStage::new(vad, settings)), Box::new(asr)];
    let turns = Turns::new();
    let pipeline = Pipeline::start(&spec, stages, turns.clone());
    let turn = turns.begin();
    let mut out = AsrOutput { text: String::new(), language: None };
    // The feeding runs beside the collecting: the edges are bounded and block when full.
    let result = std::thread::scope(|s| {
        let feeder = s.spawn(|| {
            if let Ok(pts) = feed_audio(&pipeline, turn.id, pcm) {
                let _ = pipeline.send(Envelope::new(turn.id, pts, Frame::EndOfTurn));
            }
        });
        let result = loop {
            if stop.should_stop() {
                break Err(EngineError::Backend(iris_backend::BackendError::Cancelled));
            }
            match pipeline.recv_timeout(Duration::from_millis(100)) {
                Ok(PipelineEvent::Frame(env)) => match env.frame {
                    Frame::Transcript(t) if t.is_final => {
                        append_words(&mut out.text, &t.text);
                        out.language = out.language.take().or(t.language);
                    }
                    Frame::EndOfTurn => break Ok(()),
                    _ => {}
                },
                Ok(PipelineEvent::Error { stage, message, .. }) => break Err(bad(format!("{stage}: {message}"))),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break Err(bad("the pipeline stopped".into())),
            }
        };
        if result.is_err() {
            // Purges the turn from every edge, so a blocked feeder gets through and ends.
            pipeline.cancel(turn.id);
        }
        let _ = feeder.join();
        result
    });
    pipeline.shutdown();
    result.map(|()| out)
}
