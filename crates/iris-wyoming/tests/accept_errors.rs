//! Issue 14.6: one accept error (out of file descriptors) ended the Wyoming accept loop for good,
//! silently. Here the process really runs out of descriptors while a client connects: the error
//! is logged, and once descriptors are free again that very client is served. Alone in its
//! file, because the descriptor limit is the whole process's.

use std::sync::Arc;
use std::time::Duration;

use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts};
use iris_config::Config;
use iris_engine::{Backends, Engine, Loader};
use iris_wyoming::protocol::{read_event, write_event, Event};
use serde_json::json;
use tokio::io::BufReader;

struct Fakes;

impl Loader for Fakes {
    fn check(&self, _: &Config) -> Result<(), (String, String)> {
        Ok(())
    }

    fn load(&self, _: &Config) -> Result<Backends, String> {
        Ok(Backends {
            asr: Arc::new(FakeAsr::new("hello")),
            llm: Box::new(FakeLlm::new(&["Hi."])),
            tts: Box::new(FakeTts::default()),
            vision: None,
            vad: None,
            skills: None,
            loaded: Vec::new(),
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RLimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: i32, limit: *mut RLimit) -> i32;
    fn setrlimit(resource: i32, limit: *const RLimit) -> i32;
}

/// Linux's RLIMIT_NOFILE.
const NOFILE: i32 = 7;

fn set_limit(cur: u64) {
    let mut l = RLimit { cur: 0, max: 0 };
    assert_eq!(unsafe { getrlimit(NOFILE, &mut l) }, 0);
    l.cur = cur;
    assert_eq!(unsafe { setrlimit(NOFILE, &l) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_survives_running_out_of_file_descriptors() {
    let engine = Arc::new(Engine::start(Box::new(Fakes), Config::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(iris_wyoming::serve(engine.clone(), listener, Arc::new(|| true)));

    let mut saved = RLimit { cur: 0, max: 0 };
    assert_eq!(unsafe { getrlimit(NOFILE, &mut saved) }, 0);
    // The client's socket exists before the limit drops; connecting it needs no new descriptor,
    // but accepting it does.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    let highest =
        std::fs::read_dir("/proc/self/fd").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok()).max().unwrap();
    set_limit(highest + 1);
    // Fill any lower gaps, so no descriptor at all is left.
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    let client = socket.connect(addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(filler);
    set_limit(saved.cur);
    let client = client.expect("connect");

    let logged = engine.stats.log_lines().iter().any(|l| l.level == "error" && l.message.contains("cannot accept a connection"));
    assert!(logged, "the accept error was not logged: {:?}", engine.stats.log_lines());
    let (read, mut write) = client.into_split();
    write_event(&mut write, &Event::new("ping", json!({ "text": "still there?" }))).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_event(&mut BufReader::new(read))).await;
    let reply = reply.expect("the server stopped accepting").unwrap().unwrap();
    assert_eq!((reply.kind.as_str(), reply.str("text")), ("pong", Some("still there?")));
}
