//! One loaded model serves the panel, the OpenAI API and Wyoming at once: these adapters let a
//! pipeline stage borrow it for a turn. Turns on one model take it in turn (the mutex).

use std::sync::{Arc, Mutex, MutexGuard};

use iris_backend::{BackendError, ChatMessage, Flow, GenParams, GenStats, Llm, StopFlag, Tts, Vlm};
use iris_frames::ImageFrame;

pub type Shared<T> = Arc<Mutex<T>>;

/// A poisoned lock means a backend panicked mid-call; its state is still the model's weights,
/// so the next caller may go on.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct SharedLlm(pub Shared<Box<dyn Llm>>);

impl Llm for SharedLlm {
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError> {
        lock(&self.0).generate(messages, params, stop, on_text)
    }

    fn prefill(&mut self, messages: &[ChatMessage], params: &GenParams) -> Result<usize, BackendError> {
        lock(&self.0).prefill(messages, params)
    }

    fn device(&self) -> iris_backend::Device {
        lock(&self.0).device()
    }
}

pub struct SharedTts(pub Shared<Box<dyn Tts>>);

impl Tts for SharedTts {
    fn sample_rate(&self) -> u32 {
        lock(&self.0).sample_rate()
    }

    fn synthesize(&mut self, text: &str, stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError> {
        lock(&self.0).synthesize(text, stop)
    }

    fn voice_name(&self) -> String {
        lock(&self.0).voice_name()
    }

    fn select_language(&mut self, language: &str) -> Result<String, BackendError> {
        lock(&self.0).select_language(language)
    }
}

pub struct SharedVlm(pub Shared<Box<dyn Vlm>>);

impl Vlm for SharedVlm {
    fn describe(&mut self, image: &ImageFrame, question: &str) -> Result<String, BackendError> {
        lock(&self.0).describe(image, question)
    }

    fn answers_directly(&self, question: &str) -> bool {
        lock(&self.0).answers_directly(question)
    }
}
