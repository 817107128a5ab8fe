//! One conformance suite for every speech recogniser (whisper.cpp and candle's Whisper), on the
//! same real model files: what a user would check, and that the two engines agree.
//!
//! Human recordings come from `IRIS_SPEECH_DIR`, `IRIS_SPEECH_FR` and `IRIS_SPEECH_ES`
//! (deploy/test.sh fills them with Debian's Asterisk prompts in US English, Canadian French and
//! Mexican Spanish); the synthetic sample question always runs.

use std::path::Path;

use iris_backend::{Asr, AsrOptions, BackendError, NeverStop};
use iris_tests::{edit_distance, model, root};

fn words(s: &str) -> Vec<String> {
    let s: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    s.split_whitespace().map(str::to_owned).collect()
}

fn word_errors(reference: &str, heard: &str) -> (usize, usize) {
    let (a, b) = (words(reference), words(heard));
    (edit_distance(&a, &b), a.len())
}

fn question() -> Vec<f32> {
    iris_audio::load_speech(&root().join("tests/data/question.wav")).unwrap()
}

/// A few human prompts with their transcripts, when the corpus is there.
fn human() -> Vec<(Vec<f32>, String)> {
    let Some(dir) = std::env::var_os("IRIS_SPEECH_DIR") else {
        eprintln!("IRIS_SPEECH_DIR is not set: only the synthetic sample runs (deploy/test.sh sets it)");
        return Vec::new();
    };
    ["vm-undelete", "dir-intro", "vm-savefolder", "queue-holdtime", "agent-user"]
        .iter()
        .map(|n| {
            let wav = Path::new(&dir).join(format!("{n}.wav"));
            let text = std::fs::read_to_string(wav.with_extension("txt")).unwrap();
            (iris_audio::load_speech(&wav).unwrap(), text)
        })
        .collect()
}

fn english() -> AsrOptions {
    AsrOptions { language: Some("en".into()), partial: false, fit_context: false }
}

fn conformance(asr: &dyn Asr) -> Vec<String> {
    let mut heard = Vec::new();
    // The sample question, whole.
    let out = asr.transcribe(&question(), &english(), &NeverStop).unwrap();
    assert_eq!(words(&out.text).join(" "), "what is the capital of france", "{}", out.text);
    assert_eq!(out.language.as_deref(), Some("en"));
    heard.push(out.text);
    // A partial of its first 1.3 s: quick mode, a start of the sentence, no loop.
    let pcm = question();
    let partial = asr.transcribe(&pcm[..20_800], &AsrOptions { partial: true, ..english() }, &NeverStop).unwrap();
    let w = words(&partial.text);
    assert!(w.len() <= 8 && w.first().map(String::as_str) == Some("what"), "partial: {:?}", partial.text);
    // Nothing in, nothing out; a cancelled turn stops.
    assert_eq!(asr.transcribe(&[], &english(), &NeverStop).unwrap().text, "");
    let stop = || true;
    assert!(matches!(asr.transcribe(&pcm, &english(), &stop), Err(BackendError::Cancelled)));
    // Real human speech: tiny.en hears these telephone prompts with few errors.
    let (mut errors, mut total) = (0, 0);
    for (pcm, text) in human() {
        let out = asr.transcribe(&pcm, &english(), &NeverStop).unwrap();
        let (e, n) = word_errors(&text, &out.text);
        eprintln!("{e}/{n}: {} | {}", out.text, text.trim());
        errors += e;
        total += n;
        heard.push(out.text);
    }
    assert!(errors as f64 <= 0.2 * total as f64, "{errors} errors in {total} words");
    heard
}

/// A live turn's final is decoded with a window fitted to the audio (`fit_context`): on both
/// engines it hears every human prompt of the corpus about as well as the whole 30 s window does,
/// and the sample question whole (cut to the audio's length, the window made tiny.en loop on five
/// prompts, 34 % of words wrong, and hear "capital and friends").
#[test]
fn a_live_turns_decode_hears_as_well_as_a_whole_window() {
    let file = model("whisper-tiny.en");
    let cpp = iris_whisper::WhisperAsr::load(&file, 2).unwrap();
    let candle = iris_whisper_candle::CandleWhisper::load(&file, &iris_whisper_candle::device("cpu").unwrap()).unwrap();
    let live = AsrOptions { fit_context: true, ..english() };
    for asr in [&cpp as &dyn Asr, &candle] {
        let out = asr.transcribe(&question(), &live, &NeverStop).unwrap();
        assert_eq!(words(&out.text).join(" "), "what is the capital of france", "{}", out.text);
    }
    let Some(dir) = std::env::var_os("IRIS_SPEECH_DIR") else {
        eprintln!("IRIS_SPEECH_DIR is not set: only the sample question runs (deploy/test.sh sets it)");
        return;
    };
    let mut wavs: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "wav")).collect();
    wavs.sort();
    assert!(wavs.len() >= 40, "the corpus has {} prompts", wavs.len());
    for (name, asr) in [("whisper.cpp", &cpp as &dyn Asr), ("candle", &candle)] {
        let (mut whole, mut fitted, mut total) = (0, 0, 0);
        for wav in &wavs {
            let (pcm, text) = (iris_audio::load_speech(wav).unwrap(), std::fs::read_to_string(wav.with_extension("txt")).unwrap());
            let (w, n) = word_errors(&text, &asr.transcribe(&pcm, &english(), &NeverStop).unwrap().text);
            let heard = asr.transcribe(&pcm, &live, &NeverStop).unwrap().text;
            let (f, _) = word_errors(&text, &heard);
            eprintln!("{name}: {w} / {f} of {n}: {heard}");
            (whole, fitted, total) = (whole + w, fitted + f, total + n);
        }
        let rate = |e: usize| 100.0 * e as f64 / total as f64;
        eprintln!("{name}: live {:.1} % of words wrong, whole window {:.1} %", rate(fitted), rate(whole));
        assert!(rate(fitted) <= rate(whole) + 2.0, "{name}: live {:.1} % of words wrong, whole window {:.1} %", rate(fitted), rate(whole));
    }
}

#[test]
fn both_whisper_engines_pass_the_suite_and_agree() {
    let file = model("whisper-tiny.en");
    let cpp = iris_whisper::WhisperAsr::load(&file, 2).unwrap();
    let candle = iris_whisper_candle::CandleWhisper::load(&file, &iris_whisper_candle::device("cpu").unwrap()).unwrap();
    let a = conformance(&cpp);
    let b = conformance(&candle);
    // Same model, same greedy decoding: the same words (kernels differ, so allow one slip).
    let (diff, n) = a.iter().zip(&b).fold((0, 0), |(d, n), (x, y)| {
        let (e, m) = word_errors(x, y);
        (d + e, n + m)
    });
    assert!(diff <= 1 + n / 50, "whisper.cpp {a:?}\ncandle {b:?}");
}

#[test]
fn whisper_alone_invents_words_on_silence() {
    // Why every path to the recogniser goes through the VAD gate (see the CLI tests): this
    // documents the backend's known habit so a change in it is noticed.
    let asr = iris_whisper::WhisperAsr::load(&model("whisper-tiny.en"), 2).unwrap();
    let out = asr.transcribe(&vec![0.0; 32_000], &AsrOptions::default(), &NeverStop).unwrap();
    assert!(out.text.split_whitespace().count() <= 3, "{:?}", out.text);
}

#[test]
fn the_multilingual_model_detects_english_on_both_engines() {
    let file = model("whisper-base");
    let cpp = iris_whisper::WhisperAsr::load(&file, 2).unwrap();
    let candle = iris_whisper_candle::CandleWhisper::load(&file, &iris_whisper_candle::device("cpu").unwrap()).unwrap();
    for asr in [&cpp as &dyn Asr, &candle] {
        let out = asr.transcribe(&question(), &AsrOptions::default(), &NeverStop).unwrap();
        assert_eq!(out.language.as_deref(), Some("en"), "{}", out.text);
        assert!(words(&out.text).join(" ").contains("what is the capital of"), "{}", out.text);
    }
}

#[test]
fn the_multilingual_model_hears_french_and_spanish_speakers_on_both_engines() {
    let (Some(fr), Some(es)) = (std::env::var_os("IRIS_SPEECH_FR"), std::env::var_os("IRIS_SPEECH_ES")) else {
        eprintln!("IRIS_SPEECH_FR / IRIS_SPEECH_ES are not set: run deploy/test.sh, which fetches the recordings");
        return;
    };
    let file = model("whisper-base");
    let cpp = iris_whisper::WhisperAsr::load(&file, 2).unwrap();
    let candle = iris_whisper_candle::CandleWhisper::load(&file, &iris_whisper_candle::device("cpu").unwrap()).unwrap();
    for (dir, lang) in [(fr, "fr"), (es, "es")] {
        let mut wavs: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "wav")).collect();
        wavs.sort();
        for wav in wavs.iter().take(3) {
            let pcm = iris_audio::load_speech(wav).unwrap();
            for asr in [&cpp as &dyn Asr, &candle] {
                let out = asr.transcribe(&pcm, &AsrOptions::default(), &NeverStop).unwrap();
                eprintln!("{lang} {}: {:?} {}", wav.display(), out.language, out.text);
                assert_eq!(out.language.as_deref(), Some(lang), "{}: {}", wav.display(), out.text);
                assert!(words(&out.text).len() >= 2, "{}: {}", wav.display(), out.text);
            }
        }
    }
}
