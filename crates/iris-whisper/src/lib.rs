//! Speech recognition with whisper.cpp through `whisper-rs`: the CPU default.
//!
//! The model (a legacy ggml file, which `iris models` converts from CTranslate2) is loaded once
//! into a shared context; each call borrows a decoding state from a small pool, so one loaded
//! model serves several streams, and a call does not pay for allocating a state (about 200 ms
//! for tiny.en on 2 cores, which was most of the gap to whisper.cpp on short utterances). A turn's cancellation reaches whisper.cpp through its abort callback.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use iris_backend::asr_text::{fit_audio_ctx, is_non_speech, partial_audio_ctx, partial_max_tokens, trim_repetition};
use iris_backend::{Asr, AsrOptions, AsrOutput, BackendError, Device, StopFlag};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("cannot load Whisper model {path}: {message}. Check it with `iris models verify`")]
    Load { path: PathBuf, message: String },
}

pub struct WhisperAsr {
    ctx: WhisperContext,
    states: Mutex<Vec<WhisperState>>,
    threads: usize,
    multilingual: bool,
}

impl WhisperAsr {
    pub fn load(model: &Path, threads: usize) -> Result<Self, WhisperError> {
        let fail = |message: String| WhisperError::Load { path: model.into(), message };
        if !model.is_file() {
            return Err(fail("no such file".into()));
        }
        // whisper.cpp prints its loading chatter to stderr; keep the terminal for answers.
        whisper_rs::install_logging_hooks();
        let path = model.to_str().ok_or_else(|| fail("the path is not UTF-8".into()))?;
        // Flash attention stays off (whisper-rs's default, not whisper.cpp's): on this CPU path
        // it measured slower (`iris bench asr`: 1.2-1.3 s against 0.9-1.2 s for a 3 s clip).
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default()).map_err(|e| fail(e.to_string()))?;
        let multilingual = ctx.is_multilingual();
        Ok(Self { ctx, states: Mutex::default(), threads: threads.max(1), multilingual })
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }
}

/// whisper.cpp calls this between decoding steps; `data` points at a `&dyn StopFlag` that
/// lives on the caller's stack for the whole `full()` call.
unsafe extern "C" fn abort_trampoline(data: *mut c_void) -> bool {
    // SAFETY: set in `transcribe` to a pointer that outlives the `full()` call using it.
    let flag = unsafe { &*(data as *const &dyn StopFlag) };
    flag.should_stop()
}

impl Asr for WhisperAsr {
    fn transcribe(&self, pcm_16k: &[f32], opts: &AsrOptions, stop: &dyn StopFlag) -> Result<AsrOutput, BackendError> {
        if pcm_16k.is_empty() {
            return Ok(AsrOutput { text: String::new(), language: opts.language.clone() });
        }
        let pooled = self.states.lock().ok().and_then(|mut pool| pool.pop());
        let mut state = match pooled {
            Some(state) => state,
            None => self.ctx.create_state().map_err(|e| BackendError::Inference(format!("whisper: {e}")))?,
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_no_timestamps(true);
        params.set_suppress_nst(true);
        if opts.partial {
            // Encode only the audio there is (20 ms per encoder frame, with a margin) instead of
            // the full 30 s window, cap the tokens at a speaking rate's worth, and never retry at
            // higher temperatures: a partial must be quick and is replaced by the final anyway.
            params.set_audio_ctx(partial_audio_ctx(pcm_16k.len()) as i32);
            params.set_single_segment(true);
            params.set_no_context(true);
            params.set_max_tokens(partial_max_tokens(pcm_16k.len()) as i32);
            params.set_temperature_inc(0.0);
        } else if opts.fit_context {
            // A short window can make Whisper loop: twice a fast speaker's tokens at most, and
            // the loop trimmed below. The window is at least half of Whisper's 30 s (why there).
            params.set_audio_ctx(fit_audio_ctx(pcm_16k.len()) as i32);
            params.set_single_segment(true);
            params.set_no_context(true);
            params.set_max_tokens(2 * partial_max_tokens(pcm_16k.len()) as i32);
        }
        let language = match (&opts.language, self.multilingual) {
            (Some(lang), true) => lang.clone(),
            (None, true) => "auto".to_owned(),
            (_, false) => "en".to_owned(),
        };
        params.set_language(Some(&language));
        let flag: &dyn StopFlag = stop;
        let flag_ptr = &flag as *const &dyn StopFlag as *mut c_void;
        // SAFETY: `flag` lives until the end of this function, after `full()` has returned.
        unsafe {
            params.set_abort_callback(Some(abort_trampoline));
            params.set_abort_callback_user_data(flag_ptr);
        }
        let result = state.full(params, pcm_16k);
        if stop.should_stop() {
            return Err(BackendError::Cancelled);
        }
        result.map_err(|e| BackendError::Inference(format!("whisper: {e}")))?;
        let mut text = String::new();
        for segment in state.as_iter() {
            let piece = segment.to_str_lossy().map_err(|e| BackendError::Inference(format!("whisper: {e}")))?;
            if !is_non_speech(&piece) {
                text.push_str(&piece);
            }
        }
        if opts.partial || opts.fit_context {
            text = trim_repetition(&text);
        }
        let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state()).map(str::to_owned);
        if let Ok(mut pool) = self.states.lock() {
            pool.push(state);
        }
        Ok(AsrOutput { text: text.trim().to_owned(), language: detected.or(Some(language)) })
    }

    fn device(&self) -> Device {
        Device::Cpu { threads: self.threads }
    }
}
