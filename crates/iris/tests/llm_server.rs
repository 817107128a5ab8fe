//! `[llm_server]` against a real server: llama.cpp's OpenAI-compatible server from pip
//! `llama-cpp-python[server]` (IRIS_LLAMA_PYTHON, a Python that has it; `deploy/test.sh` builds
//! it), serving Qwen2.5-Coder-0.5B while the local model is SmolLM2 (the suite's `IRIS_DEFAULT_LLM`). The
//! server answers; when it is too slow, or gone, the local model answers and the log says so once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const IRIS: &str = env!("CARGO_BIN_EXE_iris");
const SERVER_MODEL: &str = "qwen2.5-coder-0.5b-instruct";

struct LlamaServer {
    child: Child,
    port: u16,
    /// The server's log (uvicorn's access lines among them).
    log: Receiver<String>,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn iris_home() -> PathBuf {
    std::env::var_os("IRIS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share/iris"))
}

fn start(python: &std::ffi::OsStr) -> LlamaServer {
    let model = iris_home().join("models").join(SERVER_MODEL).join("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    assert!(model.is_file(), "{} is not installed (deploy/test.sh pulls it)", model.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", "2"])
        .args(["--port", &port.to_string(), "--model_alias", "qwen-small", "--model"])
        .arg(&model)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start llama_cpp.server");
    let (tx, log) = std::sync::mpsc::channel();
    for pipe in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let ready = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(ready.elapsed() < Duration::from_secs(120), "llama_cpp.server did not start listening");
        assert!(child.try_wait().unwrap().is_none(), "llama_cpp.server exited: {:?}", log.try_iter().collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(200));
    }
    LlamaServer { child, port, log }
}

fn ask(config: &Path, question: &str) -> Output {
    let wav = config.with_extension("wav");
    let out = Command::new(IRIS)
        .args(["--config"])
        .arg(config)
        .args(["ask", "--text", question, "--json", "--out"])
        .arg(&wav)
        .output()
        .expect("run iris");
    assert!(out.status.success(), "iris ask failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn answer(out: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["answer"].as_str().unwrap().to_owned()
}

fn stderr_lines(out: &Output, needle: &str) -> usize {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(needle)).count()
}

fn config(dir: &Path, port: u16, wait_ms: u64) -> PathBuf {
    let path = dir.join(format!("config-{wait_ms}.toml"));
    let text = format!("[llm_server]\nurl = \"http://127.0.0.1:{port}/v1\"\nmodel = \"qwen-small\"\nwait_ms = {wait_ms}\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bigger_model_on_the_network_answers_and_the_local_one_stands_in() {
    let Some(python) = std::env::var_os("IRIS_LLAMA_PYTHON") else {
        eprintln!("IRIS_LLAMA_PYTHON is not set (deploy/test.sh sets it): the language-model server test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start(&python);

    // The server answers: its access log has the request, and Iris's log no fallback.
    let out = ask(&config(dir.path(), server.port, 20_000), "What is the capital of France?");
    assert!(answer(&out).contains("Paris"), "{}", answer(&out));
    assert_eq!(stderr_lines(&out, "local model answers"), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("POST /v1/chat/completions") && l.contains("200")), "the server was not asked: {log:?}");

    // Its answer is the server's own greedy answer to the same conversation, word for word.
    let direct = ureq::post(&format!("http://127.0.0.1:{}/v1/chat/completions", server.port))
        .header("content-type", "application/json")
        .send(
            serde_json::json!({
                "model": "qwen-small", "temperature": 0, "max_tokens": 256,
                "messages": [
                    { "role": "system", "content": iris_config::Config::default().assistant.system_prompt },
                    { "role": "user", "content": "What is the capital of France?" },
                ],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let direct: serde_json::Value = serde_json::from_str(&direct).unwrap();
    let direct = direct["choices"][0]["message"]["content"].as_str().unwrap().trim().to_owned();
    let first_sentence = |s: &str| s.split_inclusive(['.', '!', '?']).next().unwrap_or("").trim().to_owned();
    assert_eq!(first_sentence(&answer(&out)), first_sentence(&direct), "Iris said {:?}; the server alone says {direct:?}", answer(&out));

    // Slower than the wait: the local model answers this turn, and the log says so once.
    let out = ask(&config(dir.path(), server.port, 100), "Name a large animal that lives in the sea.");
    assert!(!answer(&out).is_empty());
    assert_eq!(stderr_lines(&out, "(no answer within 100 ms); the local model answers"), 1, "{}", String::from_utf8_lossy(&out.stderr));

    // The server gone: the local model answers at once.
    let port = server.port;
    drop(server);
    let started = Instant::now();
    let out = ask(&config(dir.path(), port, 20_000), "What is the capital of France?");
    assert!(answer(&out).contains("Paris"), "{}", answer(&out));
    assert_eq!(stderr_lines(&out, "the local model answers"), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(20), "a refused connection is not waited out: {:?}", started.elapsed());
}
