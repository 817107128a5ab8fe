//! The live voice loop's side of the engine (`iris serve` with `[audio] enabled`): the loop's
//! pipeline stages on the shared models (one set of models for the panel, the APIs and the
//! room), its turns in the statistics, and push-to-talk requests from the panel.

use std::sync::atomic::Ordering;
use std::time::Duration;

use iris_pipeline::stages::AsrStage;
use iris_pipeline::Stage;

use crate::stats::{now_unix, TurnRecord};
use crate::Engine;

/// One answered voice turn, from the loop's events (media-clock milliseconds).
#[derive(Clone, Debug, Default)]
pub struct VoiceTurn {
    pub transcript: String,
    pub answer: String,
    /// (stage, ms) in order: end of turn, recognition, first token, first sentence, voice.
    pub stages_ms: Vec<(String, u64)>,
    /// End of the user's speech to the first sound of the answer.
    pub response_ms: Option<u64>,
}

impl Engine {
    /// The `listen` pipeline's stages (recognition merging pauses, the answer, the voice) on
    /// the models in force now. `wake_words` are dropped from the start of transcripts.
    /// `camera` is looked through for questions about what is in front of the user.
    pub fn voice_stages(&self, wake_words: &[String], camera: Option<Box<dyn iris_backend::Camera>>) -> Vec<Box<dyn Stage>> {
        let live = self.live();
        let cfg = &live.config;
        let partial_every = (cfg.speech.partial_ms > 0).then(|| Duration::from_millis(cfg.speech.partial_ms));
        let asr = AsrStage::for_live_turns(live.asr.clone(), cfg.asr_language(), partial_every, wake_words);
        let mut stages: Vec<Box<dyn Stage>> = vec![Box::new(asr)];
        stages.extend(live.answer_stages(true, camera));
        stages
    }

    /// A voice turn for the status page and `/metrics` (`voice_response` is speech end to first audio).
    pub fn record_voice_turn(&self, turn: VoiceTurn) {
        for (stage, ms) in &turn.stages_ms {
            self.stats.observe(&format!("voice_{stage}"), Duration::from_millis(*ms));
        }
        if let Some(ms) = turn.response_ms {
            self.stats.observe("voice_response", Duration::from_millis(ms));
        }
        self.stats.record_turn(TurnRecord {
            at: now_unix(),
            source: "voice".into(),
            transcript: turn.transcript,
            answer: turn.answer,
            total_ms: turn.stages_ms.iter().map(|(_, ms)| ms).sum(),
            stages_ms: turn.stages_ms,
            first_audio_ms: turn.response_ms,
            error: None,
        });
    }

    /// Marks the voice loop as running (or not), for the panel.
    pub fn set_voice_loop(&self, running: bool) {
        self.voice_loop.store(running, Ordering::Relaxed);
    }

    pub fn voice_loop_running(&self) -> bool {
        self.voice_loop.load(Ordering::Relaxed)
    }

    /// Asks the voice loop to listen now, as a push-to-talk button does. `false` when no loop runs.
    pub fn request_talk(&self) -> bool {
        if !self.voice_loop_running() {
            return false;
        }
        self.talk.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether push to talk was asked since the last call (the loop polls it).
    pub fn take_talk_request(&self) -> bool {
        self.talk.swap(0, Ordering::Relaxed) > 0
    }
}
