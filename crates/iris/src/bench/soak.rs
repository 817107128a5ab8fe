//! `iris bench soak`: a long week in minutes. Starts `iris serve` on the configured models (in a
//! fresh panel folder) and drives it from outside as its clients would: mixed turns (chat,
//! transcription, speech, a photo, Wyoming) with the server's resident memory sampled, then
//! bursts of concurrent clients, where what the model queue cannot take must be refused at once
//! (503 with Retry-After) rather than left waiting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

const QUESTION: &[u8] = include_bytes!("../../../../tests/data/question.wav");
const PASSWORD: &str = "soak test password";

#[derive(Args)]
pub struct SoakArgs {
    /// Mixed turns to run (each is one request: chat, transcription, speech, photo or Wyoming).
    #[arg(long, default_value_t = 1000)]
    turns: usize,
    /// Turns before memory is taken as the baseline (models warm, caches filled).
    #[arg(long, default_value_t = 100)]
    warm_up: usize,
    /// Concurrent clients in each burst of the load test.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Bursts of the load test.
    #[arg(long, default_value_t = 5)]
    bursts: usize,
    /// Also write the RSS curve here, as CSV (turn, rss_mib).
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

struct Server {
    child: Child,
    url: String,
    wyoming: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Result<(Server, String)> {
    std::fs::write(dir.join("config.toml"), "[wyoming]\nenabled = true\n")?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--config", &dir.join("config.toml").display().to_string(), "serve", "--listen", "127.0.0.1:0", "--wyoming", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start iris serve")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let mut next = || lines.next().ok_or_else(|| anyhow!("iris serve stopped before listening")).and_then(|l| Ok(l?));
    let url = loop {
        if let Some(u) = next()?.strip_prefix("panel: ") {
            break u.trim_end_matches('/').to_owned();
        }
    };
    let agent = ureq::Agent::new_with_defaults();
    let mut r = agent
        .post(format!("{url}/api/setup"))
        .header("content-type", "application/json")
        .send(json!({ "password": PASSWORD }).to_string())?;
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|c| c.split(';').next()).unwrap_or("").to_owned();
    let _ = r.body_mut().read_to_string();
    let state: Value =
        serde_json::from_str(&agent.get(format!("{url}/api/state")).header("cookie", &cookie).call()?.body_mut().read_to_string()?)?;
    let csrf = state["csrf"].as_str().unwrap_or_default().to_owned();
    let token: Value = serde_json::from_str(
        &agent
            .post(format!("{url}/api/tokens"))
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .send(r#"{"name":"soak"}"#)?
            .body_mut()
            .read_to_string()?,
    )?;
    let token = token["secret"].as_str().ok_or_else(|| anyhow!("no token: {token}"))?.to_owned();
    // Wyoming opens once Iris is set up.
    let wyoming = loop {
        if let Some(p) = next()?.strip_prefix("wyoming: tcp://").and_then(|a| a.rsplit(':').next()?.parse().ok()) {
            break p;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((Server { child, url, wyoming }, token))
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
    kb / 1024.0
}

fn multipart(file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "irissoakboundary";
    let mut body =
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"q.wav\"\r\ncontent-type: audio/wav\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{boundary}--\r\n").as_bytes(),
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A 64x48 PNG of two colours, for the vision turns.
fn photo_url() -> Result<String> {
    use base64::Engine as _;
    let img = image::RgbImage::from_fn(64, 48, |x, _| if x < 32 { image::Rgb([200, 30, 30]) } else { image::Rgb([30, 30, 200]) });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

/// One Wyoming exchange: `events` sent, replies read until one of kind `until`.
fn wyoming(port: u16, events: &[(Value, Vec<u8>)], until: &str) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    for (header, payload) in events {
        let mut h = header.clone();
        if !payload.is_empty() {
            h["payload_length"] = json!(payload.len());
        }
        s.write_all(format!("{h}\n").as_bytes())?;
        s.write_all(payload)?;
    }
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            bail!("wyoming closed before {until}");
        }
        let h: Value = serde_json::from_str(&line)?;
        let skip = h["data_length"].as_u64().unwrap_or(0) + h["payload_length"].as_u64().unwrap_or(0);
        std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())?;
        match h["type"].as_str() {
            Some(t) if t == until => return Ok(()),
            Some("error") => bail!("wyoming error"),
            _ => {}
        }
    }
}

fn turn(n: usize, srv: &Server, token: &str, agent: &ureq::Agent, photo: &str) -> Result<&'static str> {
    let bearer = format!("Bearer {token}");
    let post = |path: &str| agent.post(format!("{}{path}", srv.url)).header("authorization", &bearer);
    let chat = |content: Value| json!({ "messages": [{ "role": "user", "content": content }], "max_tokens": 24 }).to_string();
    Ok(match n % 5 {
        0 => {
            post("/v1/chat/completions").header("content-type", "application/json").send(chat(json!("What is the capital of France?")))?;
            "chat"
        }
        1 => {
            let (ct, body) = multipart(QUESTION);
            post("/v1/audio/transcriptions").header("content-type", ct).send(&body[..])?;
            "transcription"
        }
        2 => {
            post("/v1/audio/speech")
                .header("content-type", "application/json")
                .send(json!({ "input": "The kettle is on." }).to_string())?;
            "speech"
        }
        3 => {
            let content = json!([{ "type": "text", "text": "What colours are in this photo?" }, { "type": "image_url", "image_url": { "url": photo } }]);
            post("/v1/chat/completions").header("content-type", "application/json").send(chat(content))?;
            "vision"
        }
        _ => {
            let pcm: Vec<u8> = QUESTION.get(44..).unwrap_or_default().to_vec();
            let fmt = json!({ "rate": 16000, "width": 2, "channels": 1 });
            let ev = |t: &str, data: Value| json!({ "type": t, "data": data });
            wyoming(
                srv.wyoming,
                &[
                    (ev("transcribe", json!({ "language": "en" })), vec![]),
                    (ev("audio-start", fmt.clone()), vec![]),
                    (ev("audio-chunk", fmt), pcm),
                    (ev("audio-stop", json!({})), vec![]),
                ],
                "transcript",
            )?;
            wyoming(srv.wyoming, &[(ev("synthesize", json!({ "text": "Done." })), vec![])], "audio-stop")?;
            "wyoming"
        }
    })
}

pub fn run(_config: Option<&Path>, args: SoakArgs) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let (srv, token) = start(dir.path())?;
    let pid = srv.child.id();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(true).build().into();
    let photo = photo_url()?;
    println!("soak: {} mixed turns against iris serve (pid {pid}), RSS sampled every 50", args.turns);
    let started = Instant::now();
    let (mut curve, mut failures, mut baseline) = (Vec::new(), 0usize, None);
    for n in 0..args.turns {
        if let Err(e) = turn(n, &srv, &token, &agent, &photo) {
            failures += 1;
            eprintln!("turn {n}: {e}");
        }
        if n + 1 == args.warm_up {
            baseline = Some(rss_mib(pid));
        }
        if (n + 1) % 50 == 0 || n + 1 == args.turns {
            let rss = rss_mib(pid);
            curve.push((n + 1, rss));
            println!("  turn {:>5}  RSS {rss:>7.1} MiB", n + 1);
        }
    }
    let last = curve.last().map_or(0.0, |c| c.1);
    let base = baseline.unwrap_or(last);
    let growth = (last - base) / base.max(1.0) * 100.0;
    println!(
        "soak: {} turns in {:.0} s, {failures} failed; RSS {base:.1} MiB after {} turns of warm-up, {last:.1} MiB at the end ({growth:+.1} %)",
        args.turns,
        started.elapsed().as_secs_f64(),
        args.warm_up
    );
    if let Some(csv) = &args.csv {
        let text: String = std::iter::once("turn,rss_mib\n".to_owned()).chain(curve.iter().map(|(t, r)| format!("{t},{r:.1}\n"))).collect();
        std::fs::write(csv, text)?;
    }

    println!("load: {} bursts of {} concurrent chat clients", args.bursts, args.clients);
    let (mut ok, mut busy, mut other) = (Vec::new(), Vec::new(), 0usize);
    for _ in 0..args.bursts {
        let handles: Vec<_> = (0..args.clients)
            .map(|_| {
                let (url, bearer) = (srv.url.clone(), format!("Bearer {token}"));
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let t = Instant::now();
                    let body = json!({ "messages": [{ "role": "user", "content": "Name a colour." }], "max_tokens": 16 }).to_string();
                    let r = agent
                        .post(format!("{url}/v1/chat/completions"))
                        .header("authorization", &bearer)
                        .header("content-type", "application/json")
                        .send(body);
                    let retry = r.as_ref().ok().and_then(|r| r.headers().get("retry-after")?.to_str().ok().map(str::to_owned));
                    (r.map(|r| r.status().as_u16()).unwrap_or(0), retry, t.elapsed().as_secs_f64() * 1000.0)
                })
            })
            .collect();
        for h in handles {
            match h.join().map_err(|_| anyhow!("a client panicked"))? {
                (200, _, ms) => ok.push(ms),
                (503, Some(_), ms) => busy.push(ms),
                _ => other += 1,
            }
        }
    }
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN)
    };
    println!(
        "load: {} answered (p50 {:.0} ms, max {:.0} ms); {} refused with 503 + Retry-After (p50 {:.0} ms, max {:.0} ms); {other} other",
        ok.len(),
        pct(&mut ok, 0.5),
        pct(&mut ok, 1.0),
        busy.len(),
        pct(&mut busy, 0.5),
        pct(&mut busy, 1.0)
    );
    Ok(if failures == 0 && other == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
