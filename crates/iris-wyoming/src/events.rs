//! One client's events. Every piece of CPU work (decoding and resampling audio, recognition,
//! synthesis, answering) runs on the blocking pool, never on the async runtime's threads, so
//! one client's work cannot freeze the panel or another client.

use std::sync::Arc;

use iris_engine::{Engine, TurnInput};
use serde_json::json;
use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::protocol::{read_event, write_event, Event, ProtocolError};

/// One utterance is at most this long; Home Assistant's own pipelines stop far sooner.
const MAX_SECONDS: usize = 300;
const CHUNK_SAMPLES: usize = 2048;

#[derive(Default)]
struct Listening {
    rate: u32,
    width: u16,
    channels: u16,
    /// 16 kHz mono, resampled chunk by chunk as it comes.
    pcm: Vec<f32>,
    language: Option<String>,
}

pub async fn connection(engine: Arc<Engine>, stream: TcpStream) -> Result<(), ProtocolError> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut heard = Listening::default();
    loop {
        let event = match tokio::time::timeout(crate::IDLE, read_event(&mut read)).await {
            Err(_) => return Ok(()),
            Ok(Ok(Some(e))) => e,
            Ok(Ok(None)) => return Ok(()),
            // A malformed or oversized event ends the connection, but the client is told why.
            Ok(Err(e @ (ProtocolError::Header(_) | ProtocolError::TooLarge(_)))) => {
                let _ = write_event(&mut write, &Event::new("error", json!({ "text": e.to_string(), "code": "protocol" }))).await;
                return Err(e);
            }
            Ok(Err(e)) => return Err(e),
        };
        match handle(&engine, &mut heard, event, &mut write).await {
            Ok(()) => {}
            Err(Failure::Said(message)) => {
                write_event(&mut write, &Event::new("error", json!({ "text": message, "code": "iris" }))).await?
            }
            Err(Failure::Gone(e)) => return Err(e),
        }
    }
}

enum Failure {
    /// Told to the client as an `error` event; the connection goes on.
    Said(String),
    /// The connection itself failed.
    Gone(ProtocolError),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Said(s)
    }
}

impl From<ProtocolError> for Failure {
    fn from(e: ProtocolError) -> Self {
        Failure::Gone(e)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())?
}

async fn handle(engine: &Arc<Engine>, heard: &mut Listening, e: Event, write: &mut OwnedWriteHalf) -> Result<(), Failure> {
    match e.kind.as_str() {
        "describe" => write_event(write, &Event::new("info", info(engine))).await?,
        "ping" => write_event(write, &Event::new("pong", json!({ "text": e.str("text") }))).await?,
        "transcribe" => heard.language = e.str("language").map(str::to_owned),
        "audio-start" => {
            let language = heard.language.take();
            *heard = Listening { language, ..Listening::default() };
            set_format(heard, &e)?;
        }
        "audio-chunk" => {
            set_format(heard, &e)?;
            if heard.width != 2 {
                return Err(format!("audio width {} is not supported; send 16-bit samples (width 2)", heard.width).into());
            }
            let (rate, channels, payload) = (heard.rate, usize::from(heard.channels), e.payload);
            // Bounded before the work: what this chunk adds, at 16 kHz, must still fit.
            let adds = (payload.len() / 2 / channels) as u64 * 16_000 / u64::from(rate) + 1;
            if heard.pcm.len() as u64 + adds > (MAX_SECONDS * 16_000) as u64 {
                heard.pcm = Vec::new();
                return Err(format!("the audio is longer than {MAX_SECONDS} s; send one utterance at a time").into());
            }
            let mono16 = blocking(move || {
                let samples: Vec<f32> = payload.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
                Ok(iris_audio::resample(&iris_audio::downmix(&samples, channels), rate, 16_000))
            })
            .await?;
            heard.pcm.extend(mono16);
        }
        "audio-stop" => {
            let pcm = std::mem::take(&mut heard.pcm);
            let language = heard.language.take();
            let engine = engine.clone();
            let out = blocking(move || engine.transcribe(&pcm, language, &iris_backend::NeverStop).map_err(|e| e.to_string())).await?;
            write_event(write, &Event::new("transcript", json!({ "text": out.text, "language": out.language }))).await?;
        }
        "synthesize" => synthesize(engine, e.str("text").unwrap_or_default().to_owned(), write).await?,
        // A client's transcript is a request to answer it (Home Assistant's "handle").
        "transcript" => {
            let text = e.str("text").unwrap_or_default().to_owned();
            let engine = engine.clone();
            let record = blocking(move || {
                let without_tools = !engine.config().wyoming.tools;
                let input = TurnInput { source: "wyoming".into(), text: Some(text), without_tools, ..TurnInput::default() };
                engine.turn(input, &iris_backend::NeverStop, &mut |_| {}).map_err(|e| e.to_string())
            })
            .await?;
            write_event(write, &Event::new("handled", json!({ "text": record.answer }))).await?;
        }
        // Unknown events are ignored, as the protocol asks, so newer clients still work.
        _ => {}
    }
    Ok(())
}

/// Speaks `text` sentence by sentence, each sentence's audio sent as soon as it is made, so
/// memory holds one sentence and the client hears the start at once. A client that goes away
/// stops the synthesis.
async fn synthesize(engine: &Arc<Engine>, text: String, write: &mut OwnedWriteHalf) -> Result<(), Failure> {
    if text.trim().is_empty() {
        return Err("synthesize has no text".to_owned().into());
    }
    if text.len() > iris_engine::MAX_SPEAK_BYTES {
        return Err(format!("synthesize text is {} bytes; send at most {} at a time", text.len(), iris_engine::MAX_SPEAK_BYTES).into());
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<f32>, u32)>(2);
    let engine = engine.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let gone = || tx.is_closed();
        engine.speak_each(&text, &gone, &mut |samples, rate| {
            if tx.blocking_send((samples.to_vec(), rate)).is_ok() {
                iris_backend::Flow::Continue
            } else {
                iris_backend::Flow::Stop
            }
        })
    });
    let mut started = false;
    while let Some((samples, rate)) = rx.recv().await {
        let format = json!({ "rate": rate, "width": 2, "channels": 1 });
        if !started {
            write_event(write, &Event::new("audio-start", format.clone())).await?;
            started = true;
        }
        for chunk in samples.chunks(CHUNK_SAMPLES) {
            write_event(write, &Event::new("audio-chunk", format.clone()).with_payload(iris_audio::pcm16_le(chunk))).await?;
        }
    }
    let rate = worker.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    if !started {
        write_event(write, &Event::new("audio-start", json!({ "rate": rate, "width": 2, "channels": 1 }))).await?;
    }
    write_event(write, &Event::new("audio-stop", json!({}))).await?;
    Ok(())
}

fn set_format(heard: &mut Listening, e: &Event) -> Result<(), String> {
    // Out-of-range values are refused, never truncated into range by a cast.
    let rate = e.u64("rate").map_or(Some(heard.rate), |r| u32::try_from(r).ok()).unwrap_or(0);
    let width = e.u64("width").map_or(Some(heard.width), |w| u16::try_from(w).ok()).unwrap_or(0);
    let channels = e.u64("channels").map_or(Some(heard.channels), |c| u16::try_from(c).ok()).unwrap_or(0);
    if !(iris_audio::MIN_RATE..=192_000).contains(&rate) || channels == 0 || channels > 8 {
        return Err(format!("audio format rate {rate}, channels {channels} is not usable; send 16 kHz mono"));
    }
    (heard.rate, heard.width, heard.channels) = (rate, width, channels);
    Ok(())
}

fn info(engine: &Engine) -> serde_json::Value {
    let loaded = engine.loaded();
    let model = |task: &str| loaded.iter().find(|m| m.task == task).map(|m| m.id.clone()).unwrap_or_default();
    let language = engine.config().speech.language;
    let languages = if language == "auto" { vec![] } else { vec![language] };
    let attribution = json!({ "name": "Iris", "url": "https://github.com/ggerganov/whisper.cpp" });
    json!({
        "asr": [{
            "name": "iris", "description": "Iris speech recognition (Whisper)", "attribution": attribution,
            "installed": true, "version": env!("CARGO_PKG_VERSION"),
            "models": [{ "name": model("asr"), "description": model("asr"), "attribution": attribution,
                         "installed": true, "languages": languages, "version": null }],
        }],
        "tts": [{
            "name": "iris", "description": "Iris voice (Piper)", "attribution": { "name": "Iris", "url": "https://github.com/rhasspy/piper" },
            "installed": true, "version": env!("CARGO_PKG_VERSION"),
            "voices": [{ "name": model("tts"), "description": engine.voice_name(), "attribution": { "name": "Piper", "url": "https://github.com/rhasspy/piper" },
                         "installed": true, "languages": languages, "version": null }],
        }],
        "handle": [{
            "name": "iris", "description": "Iris assistant (local language model and skills)", "attribution": attribution,
            "installed": true, "version": env!("CARGO_PKG_VERSION"),
            "models": [{ "name": model("llm"), "description": model("llm"), "attribution": attribution,
                         "installed": true, "languages": languages, "version": null }],
        }],
    })
}
