//! A small FFI to libespeak-ng: text to IPA phonemes for Piper, and espeak-ng's own formant
//! voice for languages no neural voice speaks. In-process, no subprocess per sentence.
//!
//! espeak-ng keeps global state and is not thread-safe, so every call goes through one lock.
//! Debian's 1.51 lacks Piper's patched `espeak_TextToPhonemesWithTerminator`, so clause
//! punctuation is restored here: the text is cut at punctuation, each clause phonemised, and
//! the punctuation put back, as Piper's phonemizer does.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

#[link(name = "espeak-ng")]
extern "C" {
    fn espeak_Initialize(output: c_int, buflength: c_int, path: *const c_char, options: c_int) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(textptr: *mut *const c_void, textmode: c_int, phonememode: c_int) -> *const c_char;
    fn espeak_SetSynthCallback(callback: SynthCallback);
    fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: u32,
        position_type: c_int,
        end_position: u32,
        flags: u32,
        unique_identifier: *mut u32,
        user_data: *mut c_void,
    ) -> c_int;
}

/// `int callback(short *wav, int numsamples, espeak_EVENT *events)`; the events are not read.
type SynthCallback = unsafe extern "C" fn(*mut i16, c_int, *mut c_void) -> c_int;

/// Where the synthesis callback puts samples; only touched while `ESPEAK` is locked.
static SYNTH_BUFFER: Mutex<Vec<i16>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect_samples(wav: *mut i16, n: c_int, _events: *mut c_void) -> c_int {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak passes `n` valid samples at `wav` for the duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        SYNTH_BUFFER.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(samples);
    }
    0 // go on
}

const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
const ESPEAK_CHARS_UTF8: c_int = 1;
const PHONEMES_IPA: c_int = 0x02;

#[derive(Debug, thiserror::Error)]
pub enum EspeakError {
    #[error("espeak-ng could not start (is espeak-ng-data installed? `apt-get install espeak-ng-data`)")]
    Init,
    #[error("espeak-ng has no voice `{0}` (list them with `espeak-ng --voices`)")]
    Voice(String),
}

struct State {
    voice: Option<String>,
    sample_rate: u32,
}

static ESPEAK: Mutex<Option<State>> = Mutex::new(None);

/// Clause punctuation that Piper voices know and that shapes prosody.
const CLAUSE_ENDS: &[char] = &['.', ',', ';', ':', '!', '?'];

/// Locks espeak-ng, starting it on first use and selecting `voice`.
fn with_voice<T>(voice: &str, f: impl FnOnce(&State) -> T) -> Result<T, EspeakError> {
    let mut guard = ESPEAK.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        // SAFETY: plain C calls with a null data path (the library's default data directory).
        let rate = unsafe { espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), ESPEAK_INITIALIZE_DONT_EXIT) };
        if rate <= 0 {
            return Err(EspeakError::Init);
        }
        // SAFETY: a plain function pointer that lives for the whole program.
        unsafe { espeak_SetSynthCallback(collect_samples) };
        *guard = Some(State { voice: None, sample_rate: rate as u32 });
    }
    let state = guard.as_mut().ok_or(EspeakError::Init)?;
    if state.voice.as_deref() != Some(voice) {
        let name = CString::new(voice).map_err(|_| EspeakError::Voice(voice.to_owned()))?;
        // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
        if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != 0 {
            return Err(EspeakError::Voice(voice.to_owned()));
        }
        state.voice = Some(voice.to_owned());
    }
    Ok(f(state))
}

/// Whether espeak-ng has a voice for `name` (a language code such as `de` or `pt-br`).
pub fn has_voice(name: &str) -> bool {
    with_voice(name, |_| ()).is_ok()
}

/// Speaks `text` with espeak-ng's formant voice `voice`; returns samples and their rate.
pub fn synthesize(text: &str, voice: &str) -> Result<(Vec<f32>, u32), EspeakError> {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let c_text = CString::new(cleaned.trim()).unwrap_or_default();
    with_voice(voice, |state| {
        SYNTH_BUFFER.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if !c_text.as_bytes().is_empty() {
            // SAFETY: `c_text` outlives the call; in synchronous mode espeak returns only after
            // every sample went through `collect_samples`. Position type 1 is POS_CHARACTER.
            unsafe {
                espeak_Synth(
                    c_text.as_ptr().cast(),
                    c_text.as_bytes().len() + 1,
                    0,
                    1,
                    0,
                    ESPEAK_CHARS_UTF8 as u32,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        let samples = std::mem::take(&mut *SYNTH_BUFFER.lock().unwrap_or_else(|p| p.into_inner()));
        (samples.into_iter().map(|s| f32::from(s) / 32768.0).collect(), state.sample_rate)
    })
}

/// Phonemises `text` with the espeak-ng voice `voice` (e.g. `en-us`), keeping clause punctuation.
pub fn phonemize(text: &str, voice: &str) -> Result<String, EspeakError> {
    // All of it under the lock: another thread must not switch the voice mid-text.
    with_voice(voice, |_| {
        let mut out = String::new();
        for (clause, punct) in clauses(text) {
            let phonemes = clause_phonemes(&clause);
            if phonemes.is_empty() && punct.is_none() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&phonemes);
            if let Some(p) = punct {
                out.push(p);
            }
        }
        out
    })
}

/// Splits text at clause punctuation followed by whitespace or the end ("3.5" stays whole).
fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let at_break = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if CLAUSE_ENDS.contains(&c) && at_break {
            out.push((std::mem::take(&mut cur), Some(c)));
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push((cur, None));
    }
    out
}

fn clause_phonemes(clause: &str) -> String {
    // Control characters confuse espeak's clause logic; they carry no speech.
    let cleaned: String = clause.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let Ok(c_text) = CString::new(cleaned.trim()) else { return String::new() };
    if c_text.as_bytes().is_empty() {
        return String::new();
    }
    let mut pieces = Vec::new();
    let mut ptr = c_text.as_ptr() as *const c_void;
    while !ptr.is_null() {
        // SAFETY: `ptr` points into `c_text`, which outlives the loop; espeak advances it or
        // sets it to null at the end, and returns a pointer to its own static buffer, copied at once.
        let result = unsafe { espeak_TextToPhonemes(&mut ptr, ESPEAK_CHARS_UTF8, PHONEMES_IPA) };
        if result.is_null() {
            break;
        }
        // SAFETY: espeak returns a NUL-terminated string.
        let piece = unsafe { CStr::from_ptr(result) }.to_string_lossy().trim().to_owned();
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    pieces.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phonemizes_english_with_punctuation() {
        let p = phonemize("Hello there, how are you?", "en-us").unwrap();
        assert_eq!(p, "həlˈoʊ ðˈɛɹ, hˈaʊ ɑːɹ juː?");
    }

    #[test]
    fn decimals_stay_in_one_clause() {
        let c = clauses("It is 3.5 km. Yes");
        assert_eq!(c, vec![("It is 3.5 km".to_owned(), Some('.')), (" Yes".to_owned(), None)]);
    }

    #[test]
    fn formant_voice_speaks_other_languages() {
        let (audio, rate) = synthesize("Guten Tag, wie geht es Ihnen?", "de").unwrap();
        assert!(rate > 8_000);
        assert!(audio.len() as u32 > rate, "{} samples", audio.len());
        assert!(synthesize("", "de").unwrap().0.is_empty());
        assert!(has_voice("fr") && !has_voice("xx-nonexistent"));
    }

    #[test]
    fn unknown_voice_is_an_error() {
        assert!(matches!(phonemize("hi", "xx-nonexistent"), Err(EspeakError::Voice(_))));
    }
}
