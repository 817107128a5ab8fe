//! A Wyoming-protocol server: Home Assistant (or any Wyoming client) uses Iris as its speech
//! recogniser (`transcribe` + audio → `transcript`), its voice (`synthesize` → audio) and its
//! conversation agent (`transcript` → `handled`). `describe` answers with what is loaded.
//!
//! The protocol has no authentication, so the server guards itself with the owner's settings
//! (`[wyoming]`): the port is closed until Iris is set up and the owner turns the server on;
//! then only this machine and the listed addresses are answered, at most [`MAX_CLIENTS`] at
//! once, and their questions run no tools unless the owner allows it.

mod events;
pub mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iris_engine::Engine;
use protocol::{write_event, Event};
use serde_json::json;
use tokio::net::TcpListener;

/// Whether the server should answer at all now (Iris is set up and the owner turned it on).
pub type Open = Arc<dyn Fn() -> bool + Send + Sync>;

/// Clients served at once; one more is told the server is busy and disconnected.
pub const MAX_CLIENTS: usize = 16;
/// A client silent this long between events is disconnected (Home Assistant sends audio every
/// few tens of milliseconds while it streams, and opens a connection per request).
pub const IDLE: Duration = Duration::from_secs(120);
/// How often the settings are looked at while the server is off or idle.
const POLL: Duration = Duration::from_millis(500);

/// Serves Wyoming on `addr` whenever `set_up()` holds and `[wyoming] enabled` is on, and keeps
/// the port closed otherwise; follows changes to the settings as they are saved.
pub async fn run(engine: Arc<Engine>, addr: SocketAddr, set_up: Open) {
    let open: Open = {
        let engine = engine.clone();
        Arc::new(move || set_up() && engine.config().wyoming.enabled)
    };
    let mut said = None;
    loop {
        if !open() {
            if said != Some(false) {
                engine.stats.log("info", "wyoming: off (turn it on in Settings once Iris is set up); its port is closed".to_owned());
                said = Some(false);
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                let at = listener.local_addr().map_or(addr.to_string(), |a| a.to_string());
                // Tests and scripts read the real port from this line.
                println!("wyoming: tcp://{at}");
                engine.stats.log("info", format!("wyoming: listening on {at} for this machine and {:?}", engine.config().wyoming.allow));
                said = Some(true);
                serve(engine.clone(), listener, open.clone()).await;
            }
            Err(e) => {
                if said != Some(true) {
                    engine.stats.log("error", format!("wyoming: cannot listen on {addr} ({e}); trying again every 5 s"));
                    said = Some(true);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Accepts connections on `listener` until `open()` turns false; each client is served on its
/// own task. A client whose address `[wyoming] allow` does not list is disconnected unanswered.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener, open: Open) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut pause = Duration::from_millis(50);
    let mut last_refusal: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = tokio::time::sleep(POLL) => {
                if !open() {
                    return;
                }
                continue;
            }
        };
        // An accept error (out of file descriptors, a client gone mid-handshake) is transient:
        // say so once, wait a little longer each time, and keep listening.
        let (mut stream, peer) = match accepted {
            Ok(c) => {
                pause = Duration::from_millis(50);
                c
            }
            Err(e) => {
                if pause <= Duration::from_millis(50) {
                    engine.stats.log("error", format!("wyoming: cannot accept a connection ({e}); retrying"));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if !open() {
            return;
        }
        if !engine.config().wyoming.allows(peer.ip()) {
            // At most one line every 10 s, so a scan cannot flood the log.
            if last_refusal.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                engine.stats.log("warn", format!("wyoming: refused {peer}: not this machine and not in Settings → wyoming.allow"));
                last_refusal = Some(Instant::now());
            }
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let busy = Event::new(
                "error",
                json!({ "text": format!("Iris is serving {MAX_CLIENTS} Wyoming clients; try again shortly"), "code": "busy" }),
            );
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), write_event(&mut stream, &busy)).await;
            });
            continue;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) = events::connection(engine.clone(), stream).await {
                engine.stats.log("warn", format!("wyoming client {peer}: {e}"));
            }
            drop(slot);
        });
    }
}
