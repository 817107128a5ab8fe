//! Stand-ins for models that are not installed yet, so `iris serve` starts on a box with
//! nothing on it: the panel comes up, its Models page fetches the default pack, and meanwhile
//! every request that needs a model is told which one and how to get it.

use iris_backend::{Asr, AsrOptions, AsrOutput, BackendError, ChatMessage, Device, Flow, GenParams, GenStats, Llm, StopFlag, Tts};

use crate::{Backends, LoadedModel};

/// What is missing and what to do, said by every stand-in.
#[derive(Clone)]
pub struct Missing(pub String);

impl Missing {
    fn refuse<T>(&self) -> Result<T, BackendError> {
        Err(BackendError::Load(self.0.clone()))
    }
}

impl Asr for Missing {
    fn transcribe(&self, _pcm_16k: &[f32], _opts: &AsrOptions, _stop: &dyn StopFlag) -> Result<AsrOutput, BackendError> {
        self.refuse()
    }

    fn device(&self) -> Device {
        Device::Other("not installed".into())
    }
}

impl Llm for Missing {
    fn generate(
        &mut self,
        _m: &[ChatMessage],
        _p: &GenParams,
        _s: &dyn StopFlag,
        _t: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        self.refuse()
    }

    fn device(&self) -> Device {
        Device::Other("not installed".into())
    }
}

impl Tts for Missing {
    fn sample_rate(&self) -> u32 {
        22_050
    }

    fn synthesize(&mut self, _text: &str, _stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError> {
        self.refuse()
    }
}

/// Backends that say `problem` for every model of `config`.
pub fn backends(config: &iris_config::Config, problem: &str) -> Backends {
    let m = Missing(format!("Iris is not ready: {problem}"));
    let loaded = [("asr", &config.models.asr), ("llm", &config.models.llm), ("tts", &config.models.tts), ("vad", &config.models.vad)]
        .into_iter()
        .map(|(task, id)| LoadedModel { task: task.into(), id: id.clone(), device: "not loaded".into() })
        .collect();
    Backends {
        asr: std::sync::Arc::new(m.clone()),
        llm: Box::new(m.clone()),
        tts: Box::new(m),
        vision: None,
        vad: None,
        skills: None,
        loaded,
    }
}
