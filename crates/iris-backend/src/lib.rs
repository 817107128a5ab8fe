//! Backend traits: what a pipeline stage needs from a model, and nothing about how it runs.
//!
//! This crate holds no model and no C dependency. Each trait has one or two required methods;
//! inference is blocking and runs on the stage's own thread. Weights are shared behind `Arc` by
//! the implementations; per-stream state (a VAD's recurrent state, an LLM's KV cache) lives in
//! the value that implements the trait. Every trait has a scripted fake in [`fakes`].

pub mod asr_text;
pub mod fakes;
pub mod tools;

use std::fmt;

pub use tools::{stray_call, ToolCall, ToolCallScanner, ToolSpec};

/// Why a backend call failed. Messages are for a person: they say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Load(String),
    #[error("{0}")]
    Inference(String),
    /// The request cannot be met as asked (a prompt longer than the model's context): the
    /// caller's to change, and an HTTP client's 400.
    #[error("{0}")]
    Request(String),
    #[error("cancelled")]
    Cancelled,
}

/// Polled by long-running backends so a cancelled turn stops promptly.
pub trait StopFlag {
    fn should_stop(&self) -> bool;
}

impl<F: Fn() -> bool> StopFlag for F {
    fn should_stop(&self) -> bool {
        self()
    }
}

/// Never stops: for tools that run one job to the end.
pub struct NeverStop;

impl StopFlag for NeverStop {
    fn should_stop(&self) -> bool {
        false
    }
}

/// The device a backend really runs on, reported in status lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu { threads: usize },
    Cuda(usize),
    Metal,
    Other(String),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu { threads } => write!(f, "cpu ({threads} threads)"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Metal => f.write_str("metal"),
            Device::Other(s) => f.write_str(s),
        }
    }
}

/// Takes the loudspeaker's echo out of the microphone (16 kHz mono). Each chunk, the loop hands
/// it what was played, then what was captured over the same time.
pub trait EchoCanceller: Send {
    /// Samples the loudspeaker played (the far-end reference).
    fn render(&mut self, played: &[f32]);
    /// The microphone's samples with the echo taken out; as many as were given.
    fn cancel(&mut self, captured: &[f32]) -> Vec<f32>;
    /// Echo return loss enhancement so far, in dB, when the canceller measures it.
    fn erle_db(&self) -> Option<f64> {
        None
    }
    /// The playback-to-capture delay it found, in ms.
    fn delay_ms(&self) -> Option<i32> {
        None
    }
}

/// Voice activity detection on fixed-size frames of 16 kHz mono audio.
pub trait Vad: Send {
    /// Samples per call to [`Vad::speech_probability`].
    fn frame_len(&self) -> usize;
    /// Probability (0..1) that this frame holds speech. Keeps state across calls.
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, BackendError>;
    /// Forget the recurrent state (start of a new stream).
    fn reset(&mut self);
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AsrOptions {
    /// ISO 639-1 code, or `None` to detect (multilingual models) / English (`.en` models).
    pub language: Option<String>,
    /// A provisional decode for a partial transcript while the person is still speaking: the
    /// backend may trade accuracy for speed (a short encoder window, few tokens, no fallback).
    pub partial: bool,
    /// A final decode with the encoder window sized to the audio (but at least half of
    /// Whisper's 30 s, below which accuracy falls) instead of the fixed 30 s: faster on a short
    /// live question, at full decoding quality otherwise (temperature fallback). Used by the
    /// live loop.
    pub fit_context: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AsrOutput {
    pub text: String,
    pub language: Option<String>,
}

/// Speech recognition of a whole utterance of 16 kHz mono audio.
pub trait Asr: Send + Sync {
    fn transcribe(&self, pcm_16k: &[f32], opts: &AsrOptions, stop: &dyn StopFlag) -> Result<AsrOutput, BackendError>;

    fn device(&self) -> Device {
        Device::Cpu { threads: 1 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering one of the assistant's calls.
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant's calls to tools.
    pub tool_calls: Vec<ToolCall>,
    /// A tool result's call (`Role::Tool`).
    pub tool_call_id: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: String::new() }
    }

    /// The assistant's turn that called tools (with any text it said first).
    pub fn calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::new(Role::Assistant, content) }
    }

    /// A tool's result for the call `id`.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: id.into(), ..Self::new(Role::Tool, content) }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    pub max_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    /// Sample only among the `k` likeliest tokens (with `top_p`, the nucleus of those).
    pub top_k: Option<usize>,
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
    /// The answer ends before the first of these texts; none of it is emitted.
    pub stop: Vec<String>,
    /// Functions the model may call, given to it in its own format.
    pub tools: Vec<ToolSpec>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: 96,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 299_792_458,
            stop: Vec::new(),
            tools: Vec::new(),
        }
    }
}

/// How much of `text` may be emitted given `stop` strings: up to the first stop string (and
/// `true`), or all but a tail that could still grow into one.
pub fn stop_cut(text: &str, stop: &[String]) -> (usize, bool) {
    if let Some(at) = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min() {
        return (at, true);
    }
    let held = stop
        .iter()
        .flat_map(|s| (1..s.len()).rev().filter(|&k| s.is_char_boundary(k) && text.ends_with(&s[..k])).take(1))
        .max()
        .unwrap_or(0);
    (text.len() - held, false)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already cached from earlier turns.
    pub reused_tokens: usize,
    /// Prompt tokens computed this call (`prompt_tokens - reused_tokens`).
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
}

/// Whether generation should go on after a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// A chat language model. `on_text` receives text deltas as they are decoded.
pub trait Llm: Send {
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenParams,
        stop: &dyn StopFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenStats, BackendError>;

    /// Works ahead on a question still being spoken: `messages` end with the user's words so
    /// far, and the model may compute their prompt now, so that `generate` on the finished
    /// question later computes only what changed. Returns the prompt tokens computed (0 where
    /// the model cannot keep them).
    fn prefill(&mut self, _messages: &[ChatMessage], _params: &GenParams) -> Result<usize, BackendError> {
        Ok(0)
    }

    fn device(&self) -> Device {
        Device::Cpu { threads: 1 }
    }
}

/// Speech synthesis of one sentence to mono audio at [`Tts::sample_rate`].
pub trait Tts: Send {
    fn sample_rate(&self) -> u32;
    fn synthesize(&mut self, text: &str, stop: &dyn StopFlag) -> Result<Vec<f32>, BackendError>;

    /// Which voice speaks now, for status lines.
    fn voice_name(&self) -> String {
        "default".to_owned()
    }

    /// Switches to the best voice for `language` (ISO 639-1); returns the voice that will speak.
    fn select_language(&mut self, _language: &str) -> Result<String, BackendError> {
        Ok(self.voice_name())
    }
}

/// A wake word spotter on 16 kHz mono audio, fed in fixed hops.
pub trait WakeWord: Send {
    /// Samples per call to [`WakeWord::scores`].
    fn hop_len(&self) -> usize;
    /// The words it listens for, in the order of the scores.
    fn words(&self) -> Vec<String>;
    /// One score (0..1) per word for the audio heard so far, this hop included.
    fn scores(&mut self, hop: &[f32]) -> Result<Vec<f32>, BackendError>;
    /// Each word's own threshold, where its model ships one (microWakeWord's cutoffs); `None`:
    /// the settings' `wake_threshold` for every word.
    fn thresholds(&self) -> Option<Vec<f32>> {
        None
    }
    /// Forget what was heard (a new stream, or after a detection so it does not fire twice).
    fn reset(&mut self);
}

/// Decides whether a pause ends the speaker's turn from what was said and how (Smart Turn).
pub trait TurnDetector: Send {
    /// Probability (0..1) that the speaker has finished, given the turn's audio so far (16 kHz mono).
    fn complete_probability(&mut self, pcm_16k: &[f32]) -> Result<f32, BackendError>;
}

/// Deterministic skills tried before the language model, as Home Assistant matches intents
/// before its LLM: small models call tools badly, and "set a timer" must just work.
pub trait Skills: Send {
    /// The answer if `text` is a request this handles; `None` passes it to the language model.
    fn handle(&mut self, text: &str) -> Option<String>;

    /// The same skills as functions the language model may call.
    fn tools(&self) -> Vec<ToolSpec> {
        Vec::new()
    }

    /// Runs the model's `call` for the request `text`: the sentence to speak, or `None` for a
    /// function this does not have.
    fn call(&mut self, _call: &ToolCall, _text: &str) -> Option<String> {
        None
    }
}

/// What a vision backend can say about an image, in words the LLM or the user can take.
pub trait Vlm: Send {
    fn describe(&mut self, image: &iris_frames::ImageFrame, question: &str) -> Result<String, BackendError>;

    /// The description already answers `question` in words to be spoken as they are (text read
    /// aloud, a colour): the LLM must not rephrase it, since a small one invents details.
    fn answers_directly(&self, _question: &str) -> bool {
        false
    }
}

/// A camera: the latest frame at the moment it is asked for (a question about what is in front
/// of the user takes its picture then, not when the turn began).
pub trait Camera: Send {
    fn latest(&mut self) -> Result<iris_frames::ImageFrame, BackendError>;
}

#[cfg(test)]
mod tests {
    use super::stop_cut;

    #[test]
    fn stop_strings_cut_and_hold_back() {
        let stop = vec!["\nUser:".to_owned(), "###".to_owned()];
        assert_eq!(stop_cut("Paris.\nUser: and", &stop), (6, true));
        // "\nUs" may become "\nUser:": held back until it is known.
        assert_eq!(stop_cut("Paris.\nUs", &stop), (6, false));
        assert_eq!(stop_cut("Paris. #", &stop), (7, false));
        assert_eq!(stop_cut("Paris.", &stop), (6, false));
        assert_eq!(stop_cut("Paris.", &[]), (6, false));
    }
}
