//! The Wyoming server over a real TCP socket, on fake backends: what a Home Assistant client
//! sends and what it must get back, including for a broken event.

use std::sync::Arc;

use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts};
use iris_config::Config;
use iris_engine::{Backends, Engine, LoadedModel, Loader};
use iris_wyoming::protocol::{read_event, write_event, Event};
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Fakes;

impl Loader for Fakes {
    fn check(&self, _: &Config) -> Result<(), (String, String)> {
        Ok(())
    }

    fn load(&self, _: &Config) -> Result<Backends, String> {
        Ok(Backends {
            asr: Arc::new(FakeAsr::new("turn on the kitchen light")),
            llm: Box::new(FakeLlm::new(&["The", " light", " is", " on", "."])),
            tts: Box::new(FakeTts::default()),
            vision: None,
            vad: None,
            skills: None,
            loaded: vec![LoadedModel { task: "asr".into(), id: "fake-whisper".into(), device: "cpu".into() }],
        })
    }
}

async fn server() -> u16 {
    let engine = Arc::new(Engine::start(Box::new(Fakes), Config::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(iris_wyoming::serve(engine, listener));
    port
}

async fn exchange(port: u16, events: &[Event], raw: &[u8], until: &str) -> Vec<Event> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    for e in events {
        write_event(&mut write, e).await.unwrap();
    }
    write.write_all(raw).await.unwrap();
    let mut read = BufReader::new(read);
    let mut got = Vec::new();
    while let Ok(Some(e)) = read_event(&mut read).await {
        let done = e.kind == until;
        got.push(e);
        if done {
            break;
        }
    }
    got
}

#[tokio::test]
async fn describe_transcribe_synthesize_and_handle() {
    let port = server().await;
    let info = exchange(port, &[Event::new("describe", json!({}))], b"", "info").await;
    assert_eq!(info[0].data["asr"][0]["models"][0]["name"], "fake-whisper");

    // 44.1 kHz stereo in, as some satellites send it.
    let fmt = json!({ "rate": 44_100, "width": 2, "channels": 2 });
    let samples: Vec<u8> = (0..44_100 * 2).flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes()).collect();
    let heard = exchange(
        port,
        &[
            Event::new("transcribe", json!({ "language": "en" })),
            Event::new("audio-start", fmt.clone()),
            Event::new("audio-chunk", fmt.clone()).with_payload(samples),
            Event::new("audio-stop", json!({})),
        ],
        b"",
        "transcript",
    )
    .await;
    assert_eq!(heard.last().unwrap().data["text"], "turn on the kitchen light");

    let spoken = exchange(port, &[Event::new("synthesize", json!({ "text": "Hello there." }))], b"", "audio-stop").await;
    let kinds: Vec<&str> = spoken.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!((kinds.first(), kinds.last()), (Some(&"audio-start"), Some(&"audio-stop")));
    let bytes: usize = spoken.iter().filter(|e| e.kind == "audio-chunk").map(|e| e.payload.len()).sum();
    assert_eq!(bytes, "Hello there.".len() * 2, "one fake sample per character, 16-bit");

    let handled = exchange(port, &[Event::new("transcript", json!({ "text": "is the light on?" }))], b"", "handled").await;
    assert_eq!(handled.last().unwrap().data["text"], "The light is on.");
}

#[tokio::test]
async fn a_broken_event_gets_an_error_and_the_server_stays_up() {
    let port = server().await;
    let got = exchange(port, &[], b"{\"type\": \"describe\"\n", "error").await;
    assert_eq!(got.last().unwrap().data["code"], "protocol");
    let got = exchange(port, &[], b"{\"type\":\"audio-chunk\",\"payload_length\":99999999999}\n", "error").await;
    assert!(got.last().unwrap().data["text"].as_str().unwrap().contains("too large"), "{got:?}");
    let got = exchange(port, &[Event::new("synthesize", json!({ "text": " " }))], b"", "error").await;
    assert_eq!(got.last().unwrap().data["text"], "synthesize has no text");
    // Issue 14.4: text beyond what HTTP takes cost 18 s of CPU per 5 KB; refused at once.
    let long = "word ".repeat(1_000);
    let got = exchange(port, &[Event::new("synthesize", json!({ "text": long }))], b"", "error").await;
    assert!(got.last().unwrap().data["text"].as_str().unwrap().contains("at most 4096"), "{got:?}");
    // Out-of-range format fields are refused, not wrapped into range by a cast.
    let chunk = Event::new("audio-chunk", json!({ "rate": 4294983296u64, "width": 2, "channels": 1 })).with_payload(vec![0; 64]);
    let got = exchange(
        port,
        &[Event::new("transcribe", json!({})), Event::new("audio-start", json!({ "rate": 16000, "width": 2, "channels": 1 })), chunk],
        b"",
        "error",
    )
    .await;
    assert!(got.last().unwrap().data["text"].as_str().unwrap().contains("not usable"), "{got:?}");
    let info = exchange(port, &[Event::new("describe", json!({}))], b"", "info").await;
    assert_eq!(info.last().unwrap().kind, "info");
}
