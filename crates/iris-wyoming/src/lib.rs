//! A Wyoming-protocol server: Home Assistant (or any Wyoming client) uses Iris as its speech
//! recogniser (`transcribe` + audio → `transcript`), its voice (`synthesize` → audio) and its
//! conversation agent (`transcript` → `handled`). `describe` answers with what is loaded.

pub mod protocol;

use std::sync::Arc;

use iris_engine::{Engine, TurnInput};
use protocol::{read_event, write_event, Event, ProtocolError};
use serde_json::json;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

/// One utterance is at most this long; Home Assistant's own pipelines stop far sooner.
const MAX_SECONDS: usize = 300;
const CHUNK_SAMPLES: usize = 2048;

/// Accepts connections until the task is dropped; each is served on its own task.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        // An accept error (out of file descriptors, a client gone mid-handshake) is transient:
        // say so once, wait a little longer each time, and keep listening.
        let (stream, peer) = match listener.accept().await {
            Ok(c) => {
                pause = std::time::Duration::from_millis(50);
                c
            }
            Err(e) => {
                if pause <= std::time::Duration::from_millis(50) {
                    engine.stats.log("error", format!("wyoming: cannot accept a connection ({e}); retrying"));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
                continue;
            }
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(engine.clone(), stream).await {
                engine.stats.log("warn", format!("wyoming client {peer}: {e}"));
            }
        });
    }
}

#[derive(Default)]
struct Listening {
    rate: u32,
    width: u16,
    channels: u16,
    pcm: Vec<f32>,
    language: Option<String>,
}

async fn connection(engine: Arc<Engine>, stream: TcpStream) -> Result<(), ProtocolError> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut heard = Listening::default();
    loop {
        let event = match read_event(&mut read).await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(()),
            // A malformed or oversized event ends the connection, but the client is told why.
            Err(e @ (ProtocolError::Header(_) | ProtocolError::TooLarge(_))) => {
                let _ = write_event(&mut write, &Event::new("error", json!({ "text": e.to_string(), "code": "protocol" }))).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let replies = match handle(&engine, &mut heard, event).await {
            Ok(r) => r,
            Err(message) => vec![Event::new("error", json!({ "text": message, "code": "iris" }))],
        };
        for r in &replies {
            write_event(&mut write, r).await?;
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())?
}

async fn handle(engine: &Arc<Engine>, heard: &mut Listening, e: Event) -> Result<Vec<Event>, String> {
    match e.kind.as_str() {
        "describe" => Ok(vec![Event::new("info", info(engine))]),
        "ping" => Ok(vec![Event::new("pong", json!({ "text": e.str("text") }))]),
        "transcribe" => {
            heard.language = e.str("language").map(str::to_owned);
            Ok(vec![])
        }
        "audio-start" => {
            let language = heard.language.take();
            *heard = Listening { language, ..Listening::default() };
            set_format(heard, &e)?;
            Ok(vec![])
        }
        "audio-chunk" => {
            set_format(heard, &e)?;
            if heard.width != 2 {
                return Err(format!("audio width {} is not supported; send 16-bit samples (width 2)", heard.width));
            }
            let samples: Vec<f32> = e.payload.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
            let mono = iris_audio::downmix(&samples, usize::from(heard.channels.max(1)));
            heard.pcm.extend(iris_audio::resample(&mono, heard.rate, 16_000));
            if heard.pcm.len() > MAX_SECONDS * 16_000 {
                heard.pcm.clear();
                return Err(format!("the audio is longer than {MAX_SECONDS} s; send one utterance at a time"));
            }
            Ok(vec![])
        }
        "audio-stop" => {
            let pcm = std::mem::take(&mut heard.pcm);
            let language = heard.language.take();
            let engine = engine.clone();
            let out = blocking(move || engine.transcribe(&pcm, language, &iris_backend::NeverStop).map_err(|e| e.to_string())).await?;
            Ok(vec![Event::new("transcript", json!({ "text": out.text, "language": out.language }))])
        }
        "synthesize" => {
            let text = e.str("text").unwrap_or_default().to_owned();
            if text.trim().is_empty() {
                return Err("synthesize has no text".into());
            }
            if text.len() > iris_engine::MAX_SPEAK_BYTES {
                return Err(format!("synthesize text is {} bytes; send at most {} at a time", text.len(), iris_engine::MAX_SPEAK_BYTES));
            }
            let engine = engine.clone();
            let (samples, rate) = blocking(move || engine.speak(&text, &iris_backend::NeverStop).map_err(|e| e.to_string())).await?;
            let format = json!({ "rate": rate, "width": 2, "channels": 1 });
            let mut out = vec![Event::new("audio-start", format.clone())];
            for chunk in samples.chunks(CHUNK_SAMPLES) {
                out.push(Event::new("audio-chunk", format.clone()).with_payload(iris_audio::pcm16_le(chunk)));
            }
            out.push(Event::new("audio-stop", json!({})));
            Ok(out)
        }
        // A client's transcript is a request to answer it (Home Assistant's "handle").
        "transcript" => {
            let text = e.str("text").unwrap_or_default().to_owned();
            let engine = engine.clone();
            let record = blocking(move || {
                let input = TurnInput { source: "wyoming".into(), text: Some(text), ..TurnInput::default() };
                engine.turn(input, &iris_backend::NeverStop, &mut |_| {}).map_err(|e| e.to_string())
            })
            .await?;
            Ok(vec![Event::new("handled", json!({ "text": record.answer }))])
        }
        // Unknown events are ignored, as the protocol asks, so newer clients still work.
        _ => Ok(vec![]),
    }
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
