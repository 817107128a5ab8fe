//! The Wyoming server over a real TCP socket, on fake backends: what a Home Assistant client
//! sends and what it must get back, including for a broken event.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts, FakeVad};
use iris_config::Config;
use iris_engine::{Backends, Engine, LoadedModel, Loader};
use iris_wyoming::protocol::{read_event, write_event, Event};
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Fake models, a VAD that hears loud frames as speech, and a light switch skill that counts
/// how often it was used.
#[derive(Clone, Default)]
struct Fakes {
    switched: Arc<AtomicUsize>,
}

struct LightSwitch(Arc<AtomicUsize>);

impl iris_backend::Skills for LightSwitch {
    fn handle(&mut self, text: &str) -> Option<String> {
        text.contains("turn on").then(|| {
            self.0.fetch_add(1, Ordering::SeqCst);
            "Done.".to_owned()
        })
    }
}

impl Loader for Fakes {
    fn check(&self, _: &Config) -> Result<(), (String, String)> {
        Ok(())
    }

    fn load(&self, _: &Config) -> Result<Backends, String> {
        let switched = self.switched.clone();
        Ok(Backends {
            asr: Arc::new(FakeAsr::new("turn on the kitchen light")),
            llm: Box::new(FakeLlm::new(&["The", " light", " is", " on", "."])),
            tts: Box::new(FakeTts::default()),
            vision: None,
            vad: Some(Arc::new(|| Ok(Box::new(FakeVad { frame_len: 512, threshold: 0.01 }) as Box<dyn iris_backend::Vad>))),
            skills: Some(Arc::new(move || Box::new(LightSwitch(switched.clone())) as Box<dyn iris_backend::Skills>)),
            loaded: vec![LoadedModel { task: "asr".into(), id: "fake-whisper".into(), device: "cpu".into() }],
        })
    }
}

fn engine(fakes: &Fakes, config: Config) -> Arc<Engine> {
    Arc::new(Engine::start(Box::new(fakes.clone()), config).unwrap())
}

async fn serve_on(engine: Arc<Engine>, addr: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(iris_wyoming::serve(engine, listener, Arc::new(|| true)));
    port
}

async fn server() -> u16 {
    serve_on(engine(&Fakes::default(), Config::default()), "127.0.0.1:0").await
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

fn chunked(fmt: &serde_json::Value, pcm: Vec<u8>) -> Vec<Event> {
    vec![
        Event::new("transcribe", json!({ "language": "en" })),
        Event::new("audio-start", fmt.clone()),
        Event::new("audio-chunk", fmt.clone()).with_payload(pcm),
        Event::new("audio-stop", json!({})),
    ]
}

/// Issue 14.10: server transcription skipped the VAD, so silence came back as Whisper's
/// inventions; now silence is no speech and the transcript is empty.
#[tokio::test]
async fn silence_gives_an_empty_transcript() {
    let port = server().await;
    let fmt = json!({ "rate": 16_000, "width": 2, "channels": 1 });
    let heard = exchange(port, &chunked(&fmt, vec![0; 16_000 * 2 * 3]), b"", "transcript").await;
    assert_eq!(heard.last().unwrap().data["text"], "", "{heard:?}");
}

/// Issue 14.3: an anonymous client's question fired the owner's home action. Wyoming questions
/// run no tools unless the owner allows it.
#[tokio::test]
async fn wyoming_questions_run_no_tools_unless_allowed() {
    let fakes = Fakes::default();
    let ask = [Event::new("transcript", json!({ "text": "turn on the heating" }))];
    let port = serve_on(engine(&fakes, Config::default()), "127.0.0.1:0").await;
    let got = exchange(port, &ask, b"", "handled").await;
    assert_eq!(got.last().unwrap().data["text"], "The light is on.", "answered by the language model");
    assert_eq!(fakes.switched.load(Ordering::SeqCst), 0, "the skill ran for a Wyoming client");

    let mut config = Config::default();
    config.wyoming.tools = true;
    let port = serve_on(engine(&fakes, config), "127.0.0.1:0").await;
    let got = exchange(port, &ask, b"", "handled").await;
    assert_eq!(got.last().unwrap().data["text"], "Done.");
    assert_eq!(fakes.switched.load(Ordering::SeqCst), 1);
}

/// This machine's address on its network (not loopback), if it has one.
fn own_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // A UDP "connect" sends nothing; it only picks the interface a packet would leave by.
    probe.connect("192.0.2.1:9").ok()?;
    Some(probe.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// A client from another address is disconnected unanswered unless `[wyoming] allow` lists it.
#[tokio::test]
async fn only_this_machine_and_allowed_addresses_are_answered() {
    let Some(own) = own_address() else {
        panic!("this machine has no network address to connect from; the allow-list cannot be tested");
    };
    let describe = [Event::new("describe", json!({}))];
    let fakes = Fakes::default();
    let port = serve_on(engine(&fakes, Config::default()), "0.0.0.0:0").await;
    assert_eq!(exchange(port, &describe, b"", "info").await.len(), 1, "loopback is answered");
    let stranger = TcpStream::connect((own, port)).await.unwrap();
    let (read, mut write) = stranger.into_split();
    write_event(&mut write, &describe[0]).await.ok();
    let mut read = BufReader::new(read);
    let got = tokio::time::timeout(Duration::from_secs(5), read_event(&mut read)).await.expect("the connection was left open");
    assert!(matches!(got, Ok(None) | Err(_)), "a stranger at {own} got an answer: {got:?}");

    let mut config = Config::default();
    config.wyoming.allow = vec![format!("{own}")];
    let port = serve_on(engine(&fakes, config), "0.0.0.0:0").await;
    let stream = TcpStream::connect((own, port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    write_event(&mut write, &describe[0]).await.unwrap();
    let got = read_event(&mut BufReader::new(read)).await.unwrap().unwrap();
    assert_eq!(got.kind, "info");
}

async fn connects(addr: std::net::SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}

/// Issue 14.3: the port answered anyone, before set-up too. It opens once Iris is set up and
/// the owner turns Wyoming on, and closes when they turn it off.
#[tokio::test]
async fn the_port_opens_only_once_set_up_and_turned_on() {
    let mut config = Config::default();
    config.wyoming.enabled = true;
    let engine = engine(&Fakes::default(), config.clone());
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let set_up = Arc::new(AtomicBool::new(false));
    let s = set_up.clone();
    tokio::spawn(iris_wyoming::run(engine.clone(), addr, Arc::new(move || s.load(Ordering::SeqCst))));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(!connects(addr).await, "the port is open before set-up");

    set_up.store(true, Ordering::SeqCst);
    let mut open = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if connects(addr).await {
            open = true;
            break;
        }
    }
    assert!(open, "the port did not open once set up and turned on");
    assert_eq!(exchange(addr.port(), &[Event::new("describe", json!({}))], b"", "info").await[0].kind, "info");

    config.wyoming.enabled = false;
    engine.apply(config).unwrap();
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !connects(addr).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the port stayed open after Wyoming was turned off");
}

/// Clients beyond the cap are told the server is busy at once, and served again once a slot frees.
#[tokio::test]
async fn clients_beyond_the_cap_are_told_busy() {
    let port = server().await;
    let mut held = Vec::new();
    for _ in 0..iris_wyoming::MAX_CLIENTS {
        let (read, mut write) = TcpStream::connect(("127.0.0.1", port)).await.unwrap().into_split();
        let mut read = BufReader::new(read);
        write_event(&mut write, &Event::new("ping", json!({}))).await.unwrap();
        assert_eq!(read_event(&mut read).await.unwrap().unwrap().kind, "pong");
        held.push((read, write));
    }
    let got = exchange(port, &[Event::new("describe", json!({}))], b"", "error").await;
    assert_eq!(got.last().unwrap().data["code"], "busy", "{got:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(exchange(port, &[Event::new("describe", json!({}))], b"", "info").await.last().unwrap().kind, "info");
}
