//! Faults from outside Iris's control, done to the real binary: killed mid-pull, mid-save and
//! mid-model-swap, a full disk, a read-only settings folder, a model file corrupted while the
//! server runs. Afterwards Iris starts, nothing half-written is loaded, and what happened is in
//! the log. (Issue 14, "Faults".)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{agent, log_in, serve_with, set_up, Server, IRIS};
use serde_json::{json, Value};
use sha2::Digest;

fn log_text(server: &Server, session: &(String, String)) -> String {
    server.call(session, "GET", "/api/logs", None).1["lines"].to_string()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(iris_config::TEMP_PREFIX))
        .collect()
}

/// Saves are cut short by SIGKILL at many moments, model swaps (a 0.5B model loading) among
/// them: each time the settings file is whole (the old or the new), the next start clears any
/// temporary file away and logs it, and the server comes up and answers.
#[test]
fn killed_mid_save_or_mid_model_swap_the_settings_stay_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("config.toml");
    let mut session: Option<(String, String)> = None;
    let mut saved = 0;
    for round in 0..5u64 {
        if round == 2 {
            // What a write killed between its temporary file and the rename leaves.
            std::fs::write(dir.join(format!("{}config.toml.4242.0", iris_config::TEMP_PREFIX)), "[assistant]\nname = \"Ha").unwrap();
        }
        let leftovers = temp_files(dir);
        let server = serve_with(dir, &[]);
        let s = match &session {
            None => set_up(&server),
            Some(_) => log_in(&server.url),
        };
        session = Some(s.clone());
        assert!(temp_files(dir).is_empty(), "round {round}: left behind {:?}", temp_files(dir));
        if !leftovers.is_empty() {
            let log = log_text(&server, &s);
            assert!(leftovers.iter().all(|name| log.contains(name.as_str())), "round {round}: {leftovers:?} not in the log: {log}");
        }
        let (status, _) = server.call(&s, "GET", "/api/status", None);
        assert_eq!(status, 200, "round {round}: the server must come up");
        // Saves back to back, one in four swapping the language model (seconds of loading), until the kill.
        let writer = {
            let (url, s) = (server.url.clone(), s.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    let llm = if n % 4 == 2 { "qwen2.5-coder-0.5b-instruct" } else { "smollm2-135m-instruct" };
                    let body = json!({ "assistant": { "name": format!("Iris {round}-{n}"), "system_prompt": "Be brief. ".repeat(600) }, "models": { "llm": llm } });
                    let sent = agent()
                        .put(&format!("{url}/api/config"))
                        .header("cookie", &s.0)
                        .header("x-csrf-token", &s.1)
                        .header("content-type", "application/json")
                        .send(body.to_string().as_bytes());
                    if sent.is_err() {
                        return n;
                    }
                    n += 1;
                }
            })
        };
        std::thread::sleep(Duration::from_millis(400 + 650 * round));
        drop(server); // SIGKILL
        saved += writer.join().unwrap();
        if config.exists() {
            let cfg = iris_config::Config::load(&config).unwrap_or_else(|e| panic!("round {round}: a half-written config: {e}"));
            assert!(cfg.assistant.name.starts_with("Iris "), "round {round}: {}", cfg.assistant.name);
            assert!(cfg.assistant.system_prompt.len() == "Be brief. ".len() * 600, "round {round}: the prompt is cut");
        }
    }
    assert!(saved >= 3, "only {saved} saves finished: the kills did not come between saves");
    let server = serve_with(dir, &[]);
    let s = log_in(&server.url);
    assert_eq!(server.call(&s, "GET", "/api/status", None).0, 200);
}

/// A pull killed with SIGKILL mid-download installs nothing; the next pull takes the dead one's
/// lock over, resumes where the download stopped, and installs the model verified.
#[test]
fn a_pull_killed_mid_download_installs_nothing_and_the_next_resumes() {
    let body: Vec<u8> = (0..400_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let sha = hex::encode(sha2::Sha256::digest(&body));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    {
        let (body, ranges) = (body.clone(), ranges.clone());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let (body, ranges) = (body.clone(), ranges.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut start = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                            start = v.trim().trim_end_matches('-').parse().unwrap_or(0);
                        }
                    }
                    ranges.lock().unwrap().push(start);
                    let part = &body[start.min(body.len())..];
                    let status = if start > 0 { "206 Partial Content" } else { "200 OK" };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len());
                    let _ = stream.write_all(head.as_bytes());
                    if n == 0 {
                        // The first download stalls after a quarter of the file, until it is killed.
                        let _ = stream.write_all(&part[..100_000]);
                        let _ = stream.flush();
                        std::thread::sleep(Duration::from_secs(120));
                    } else {
                        let _ = stream.write_all(part);
                    }
                });
            }
        });
    }
    let home = tempfile::tempdir().unwrap();
    let catalog = home.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[packs]\ntest = [\"blob\"]\n[[model]]\nid = \"blob\"\ntask = \"test\"\nformat = \"bytes\"\nlicence = \"CC0-1.0\"\n\
             [[model.file]]\nname = \"blob.bin\"\nsize = {}\nsha256 = \"{sha}\"\n[[model.source]]\nurl = \"{url}/repo\"\nfiles = [\"weights/blob.bin\"]\n",
            body.len()
        ),
    )
    .unwrap();
    let iris = |args: &[&str]| {
        let mut c = Command::new(IRIS);
        c.args(args).env("IRIS_HOME", home.path()).env("IRIS_CATALOG", &catalog);
        c
    };
    let mut pull = iris(&["models", "pull", "blob"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let part_size = || -> u64 {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut files = Vec::new();
        walk(home.path(), &mut files);
        files.iter().filter(|p| p.to_string_lossy().ends_with(".part")).map(|p| p.metadata().map_or(0, |m| m.len())).max().unwrap_or(0)
    };
    for _ in 0..300 {
        if part_size() >= 100_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(part_size(), 100_000, "the first download never got going");
    pull.kill().unwrap();
    pull.wait().unwrap();
    assert!(!home.path().join("models/blob/blob.bin").exists(), "a killed pull must install nothing");
    let listed = iris(&["models", "list", "--json"]).output().unwrap();
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let blob = rows.as_array().unwrap().iter().find(|r| r["id"] == "blob").unwrap().clone();
    assert_eq!(blob["installed"], false, "{blob}");
    let again = iris(&["models", "pull", "blob"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(ranges.lock().unwrap().as_slice(), [0, 100_000], "the second pull resumes at the byte the first stopped at");
    assert_eq!(std::fs::read(home.path().join("models/blob/blob.bin")).unwrap(), body);
    let verified = iris(&["models", "verify", "blob"]).output().unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}

/// A small filesystem of its own for the settings folder (tmpfs, so it can be filled and made
/// read-only); unmounted when dropped. `None` where this machine cannot mount one.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status();
        ok.is_ok_and(|s| s.success()).then(|| Self(dir.to_owned()))
    }

    fn read_only(&self) {
        let ok = Command::new("mount").args(["-o", "remount,ro"]).arg(&self.0).status().unwrap();
        assert!(ok.success(), "remount read-only");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The settings folder fills up, then turns read-only: each save is refused with the reason
/// named, the settings in force and on disk stay the old ones, no temporary file is left, the
/// log says it, and the server goes on (and starts again on the read-only folder).
#[test]
fn a_full_disk_or_a_read_only_folder_refuses_the_save_and_keeps_the_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("settings");
    let Some(mounted) = Mounted::tmpfs(&dir, "512k") else {
        panic!("cannot mount a tmpfs for the settings folder: this test needs root (or CAP_SYS_ADMIN), as CI has");
    };
    let server = serve_with(&dir, &[]);
    let s = set_up(&server);
    assert_eq!(server.call(&s, "PUT", "/api/config", Some(json!({ "assistant": { "name": "Before" } }))).0, 200);
    // Fill the disk.
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    while filler.write_all(&[7u8; 4096]).is_ok() {}
    drop(filler);
    let (status, body) =
        server.call(&s, "PUT", "/api/config", Some(json!({ "assistant": { "name": "Full", "system_prompt": "x".repeat(4000) } })));
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(status >= 500 && message.contains("space"), "{status} {body}");
    assert!(message.contains("config.toml") && message.contains("unchanged"), "names the file and what became of it: {message}");
    assert_eq!(server.call(&s, "GET", "/api/config", None).1["assistant"]["name"], "Before", "the old settings stay in force");
    assert_eq!(iris_config::Config::load(&dir.join("config.toml")).unwrap().assistant.name, "Before");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    assert!(log_text(&server, &s).contains("settings not saved"));
    std::fs::remove_file(dir.join("filler")).unwrap();
    // Read-only.
    mounted.read_only();
    let (status, body) = server.call(&s, "PUT", "/api/config", Some(json!({ "assistant": { "name": "ReadOnly" } })));
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(status >= 500 && message.contains("read-only"), "{status} {body}");
    assert_eq!(server.call(&s, "GET", "/api/config", None).1["assistant"]["name"], "Before");
    assert_eq!(server.call(&s, "GET", "/api/status", None).0, 200, "the server goes on");
    drop(server);
    // And it starts again on the read-only folder, with its password.
    let server = serve_with(&dir, &[]);
    let s = log_in(&server.url);
    assert_eq!(server.call(&s, "GET", "/api/config", None).1["assistant"]["name"], "Before");
}

/// The real store's folder (where deploy/test.sh pulled the default pack).
fn real_home() -> PathBuf {
    std::env::var_os("IRIS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share/iris"))
}

/// The voice's model is overwritten in the middle (its mtime put back) while the server runs:
/// the reload that the next settings change needs refuses it, names it and the fix, the old
/// voice stays in force, `verify` calls it corrupt, and a restart refuses to load it in one line.
#[test]
fn a_model_corrupted_while_running_is_not_loaded() {
    let real = real_home();
    let voice = "piper-en_US-joe-medium";
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    // Every model shared with the real store, but the voice, which is copied to be damaged.
    for entry in std::fs::read_dir(real.join("models")).unwrap().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy() == voice {
            let to = models.join(&name);
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
                if f.path().is_file() {
                    std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
                }
            }
        } else {
            std::os::unix::fs::symlink(entry.path(), models.join(&name)).unwrap();
        }
    }
    let settings = home.path().join("settings");
    std::fs::create_dir_all(&settings).unwrap();
    let env = [("IRIS_HOME", home.path().to_str().unwrap())];
    let server = serve_with(&settings, &env);
    let s = set_up(&server);
    let onnx = std::fs::read_dir(models.join(voice))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "onnx"))
        .expect("the voice's .onnx");
    let modified = onnx.metadata().unwrap().modified().unwrap();
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&onnx).unwrap();
        let len = f.metadata().unwrap().len();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(len / 2)).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        f.set_modified(modified).unwrap();
    }
    // A change the voice must be loaded again for.
    let (status, body) = server.call(&s, "PUT", "/api/config", Some(json!({ "speech": { "rate": 1.1 } })));
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert_eq!(status, 422, "refused as a setting that cannot be put in force: {body}");
    assert!(message.contains(voice) && message.contains("pull"), "names the model and the fix: {message}");
    assert_eq!(server.call(&s, "GET", "/api/config", None).1["speech"]["rate"], 1.0, "the old settings stay in force");
    let log = log_text(&server, &s);
    assert!(log.contains("settings not applied") && log.contains("en_US-joe-medium.onnx"), "the log says it: {log}");
    let (_, listed) = server.call(&s, "GET", "/api/status", None);
    assert!(listed["models"].to_string().contains(voice), "the voice loaded at start is still the one in force");
    drop(server);
    let verify = Command::new(IRIS).args(["models", "verify", voice]).env("IRIS_HOME", home.path()).output().unwrap();
    assert!(!verify.status.success(), "verify must call it corrupt");
    let o = Command::new(IRIS)
        .args(["--config", &settings.join("config.toml").display().to_string(), "serve", "--listen", "127.0.0.1:0"])
        .env("IRIS_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a corrupted model must not be loaded: {err}");
    assert!(err.contains(voice) && err.contains("pull"), "one clear line naming it and the fix: {err}");
}
