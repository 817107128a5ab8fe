//! What the tests that drive `iris serve` from outside share: starting it on free ports with
//! its settings in a folder of their own, and setting the panel up over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const IRIS: &str = env!("CARGO_BIN_EXE_iris");
pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    pub child: Child,
    pub url: String,
    /// The one-time setup code it printed, until it is set up.
    pub setup_code: String,
    /// The HTTPS certificate's SHA-256 fingerprint it printed.
    pub fingerprint: String,
    /// Where that certificate is.
    pub cert_path: String,
    /// The server's later lines of output.
    pub lines: std::sync::mpsc::Receiver<String>,
}

/// This machine's address on the network, if it has one.
pub fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// An HTTP client that returns 4xx and 5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

impl Server {
    /// A panel call with the owner's session (cookie, CSRF token): GET, or POST or PUT with a JSON body.
    /// Gives the status and the JSON answer; (0, null) when the server is gone.
    pub fn call(&self, session: &(String, String), method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.url);
        let a = agent();
        let resp = match method {
            "GET" => a.get(&url).header("cookie", &session.0).call(),
            "DELETE" => a.delete(&url).header("cookie", &session.0).header("x-csrf-token", &session.1).call(),
            "POST" => a
                .post(&url)
                .header("cookie", &session.0)
                .header("x-csrf-token", &session.1)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| serde_json::json!({})).to_string().as_bytes()),
            _ => a
                .put(&url)
                .header("cookie", &session.0)
                .header("x-csrf-token", &session.1)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| serde_json::json!({})).to_string().as_bytes()),
        };
        match resp {
            Ok(mut r) => {
                let status = r.status().as_u16();
                (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default())
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// The Wyoming port, once the server says it listens (after set-up, when turned on).
    pub fn wyoming_port(&self) -> u16 {
        loop {
            let line = self.lines.recv_timeout(std::time::Duration::from_secs(30)).expect("Wyoming never started listening");
            if let Some(port) = line.strip_prefix("wyoming: tcp://").and_then(|a| a.rsplit(':').next()?.parse().ok()) {
                return port;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `iris serve` on free ports with its settings (and panel state) in `dir`.
pub fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// The same, with these environment variables set for it.
pub fn serve_with(dir: &Path, env: &[(&str, &str)]) -> Server {
    serve_on(dir, env, "127.0.0.1:0")
}

/// The same, listening on `listen`.
pub fn serve_on(dir: &Path, env: &[(&str, &str)], listen: &str) -> Server {
    let mut child = Command::new(IRIS)
        .args(["--config", &dir.join("config.toml").display().to_string(), "serve", "--listen", listen, "--wyoming", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start iris serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut setup_code, mut fingerprint, mut cert_path) = (String::new(), String::new(), String::new());
    let url = loop {
        let line = lines.next().expect("iris serve exited before listening").unwrap();
        if let Some(c) = line.strip_prefix("setup code: ") {
            setup_code = c.to_owned();
        }
        if let Some(f) = line.strip_prefix("https: certificate sha256 ") {
            fingerprint = f.split(' ').next().unwrap_or_default().to_owned();
            cert_path = f.split_once(" (").map(|(_, p)| p.trim_end_matches(')').to_owned()).unwrap_or_default();
        }
        if let Some(u) = line.strip_prefix("panel: ") {
            break u.trim_end_matches('/').to_owned();
        }
    };
    // Keep reading stdout so the server never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Server { child, url, setup_code, fingerprint, cert_path, lines: rx }
}

/// Sets the panel up over HTTP with the code it printed; returns the owner's session cookie
/// and CSRF token.
pub fn set_up(server: &Server) -> (String, String) {
    session(&server.url, "/api/setup", &server.setup_code)
}

/// Logs in with the password set up earlier: the session cookie and CSRF token.
pub fn log_in(url: &str) -> (String, String) {
    session(url, "/api/login", "")
}

/// Sends the owner's password to `path`; the session cookie it gives and its CSRF token.
pub fn session(url: &str, path: &str, code: &str) -> (String, String) {
    let resp = ureq::post(&format!("{url}{path}"))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "password": PASSWORD, "code": code }).to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let state: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{url}/api/state")).header("cookie", &cookie).call().unwrap().body_mut().read_to_string().unwrap(),
    )
    .unwrap();
    (cookie, state["csrf"].as_str().unwrap().to_owned())
}

/// Types a question on the panel's "try it" (a multipart form with a `text` field); the body of
/// the answer's event stream.
pub fn try_text(url: &str, session: &(String, String), text: &str) -> String {
    let boundary = "iris-test-boundary";
    let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{text}\r\n--{boundary}--\r\n");
    let mut resp = ureq::post(&format!("{url}/api/try"))
        .header("cookie", &session.0)
        .header("x-csrf-token", &session.1)
        .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
        .send(body.as_bytes())
        .expect("try it");
    resp.body_mut().read_to_string().unwrap()
}

/// Writes to `path` the shipped catalog with the default pack's sources replaced by a mirror on
/// this machine serving the store's files (tests fetch nothing from the network); the pack's ids.
pub fn mirror_catalog(path: &Path) -> Vec<String> {
    let store = iris_models::Store::from_env().unwrap();
    let mirror = mirror(store.home().join("models"));
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/catalog.toml")).unwrap();
    let mut catalog: toml::Table = text.parse().unwrap();
    let pack: Vec<String> = catalog["packs"]["default"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    for model in catalog.get_mut("model").unwrap().as_array_mut().unwrap() {
        let m = model.as_table_mut().unwrap();
        let id = m["id"].as_str().unwrap().to_owned();
        if pack.contains(&id) {
            let files: Vec<toml::Value> = m["file"].as_array().unwrap().iter().map(|f| f["name"].clone()).collect();
            let source = toml::toml! { url = (format!("{mirror}/{id}")) files = files };
            m.insert("source".into(), toml::Value::Array(vec![toml::Value::Table(source)]));
        }
    }
    std::fs::write(path, toml::to_string(&catalog).unwrap()).unwrap();
    pack
}

/// Serves `dir`'s files over plain HTTP on loopback (GET /ID/FILE), as a download mirror.
fn mirror(dir: std::path::PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or_default();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
                let mut stream = stream;
                match (!path.contains("..")).then(|| std::fs::read(dir.join(&path))) {
                    Some(Ok(body)) => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
                    }
                    _ => {
                        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
    url
}

/// The model store the tests run on (`IRIS_HOME`, as `iris` itself finds it).
pub fn store_home() -> std::path::PathBuf {
    iris_models::Store::from_env().unwrap().home().to_owned()
}
