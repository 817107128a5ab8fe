//! The server's answer, and the local model taking over, against scripted HTTP servers on a
//! loopback port: one that streams, one that is off, one that accepts and never answers, one
//! that breaks off, one that refuses. The real server (llama.cpp's, through
//! `llama-cpp-python`) is driven in `crates/iris/tests/cli.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris_backend::fakes::FakeLlm;
use iris_backend::{BackendError, ChatMessage, Flow, GenParams, Llm, Role};
use iris_llm_remote::{RemoteLlm, Server};

/// What a scripted server does with each connection.
#[derive(Clone, Copy)]
enum Script {
    Streams,
    Calls,
    Hangs,
    BreaksOff,
    NotFound,
}

/// Serves `script` on a loopback port; counts connections.
fn server(script: Script) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (c, b) = (count.clone(), bodies.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let b = b.clone();
            std::thread::spawn(move || answer(stream, script, &b));
        }
    });
    (url, count, bodies)
}

fn answer(mut stream: TcpStream, script: Script, bodies: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    bodies.lock().unwrap().push(String::from_utf8(body).unwrap());
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let piece = |t: &str| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n");
    let _ = match script {
        Script::Streams => {
            let mut out = head.to_owned();
            for t in ["The capital", " of France", " is Paris."] {
                out += &piece(t);
            }
            out += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n";
            stream.write_all(out.as_bytes())
        }
        Script::Calls => {
            let call = |args: &str| {
                format!(
                    "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{{args}}}}}]}}}}]}}\n\n"
                )
            };
            let out = head.to_owned()
                + &call(r#""name":"get_weather","arguments":"{\"ci""#)
                + &call(r#""arguments":"ty\": \"Oslo\"}""#)
                + "data: [DONE]\n\n";
            stream.write_all(out.as_bytes())
        }
        Script::Hangs => {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        }
        Script::BreaksOff => stream.write_all((head.to_owned() + &piece("The capital")).as_bytes()),
        Script::NotFound => {
            let body = r#"{"error":{"message":"model 'big' not found"}}"#;
            stream.write_all(format!("HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
        }
    };
}

fn remote(url: &str, wait_ms: u64) -> (RemoteLlm, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let server = Server {
        url: url.to_owned(),
        model: "big".into(),
        api_key: "secret".into(),
        wait: Duration::from_millis(wait_ms),
        retry_after: Duration::from_secs(30),
    };
    let local = FakeLlm::new(&["Paris", " (local)."]);
    (RemoteLlm::new(server, Box::new(local), Arc::new(move |l| sink.lock().unwrap().push(l))), log)
}

fn ask(llm: &mut RemoteLlm) -> Result<String, BackendError> {
    let messages = [ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "What is the capital of France?")];
    let mut text = String::new();
    llm.generate(&messages, &GenParams { max_tokens: 40, ..GenParams::default() }, &|| false, &mut |t| {
        text.push_str(t);
        Flow::Continue
    })?;
    Ok(text)
}

#[test]
fn the_server_answers_streamed_with_the_conversation_and_the_key() {
    let (url, _, bodies) = server(Script::Streams);
    let (mut llm, log) = remote(&url, 2000);
    assert_eq!(ask(&mut llm).unwrap(), "The capital of France is Paris.");
    assert!(log.lock().unwrap().is_empty());
    let sent: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!((sent["model"].as_str(), sent["stream"].as_bool(), sent["max_tokens"].as_u64()), (Some("big"), Some(true), Some(40)));
    assert_eq!(sent["messages"][1]["content"], "What is the capital of France?");
}

#[test]
fn a_server_that_is_off_hands_the_turn_to_the_local_model_and_is_left_alone_a_while() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut llm, log) = remote(&format!("http://127.0.0.1:{port}/v1"), 2000);
    let started = Instant::now();
    assert_eq!(ask(&mut llm).unwrap(), "Paris (local).");
    assert!(started.elapsed() < Duration::from_millis(1500), "a refused connection is known at once: {:?}", started.elapsed());
    assert_eq!(ask(&mut llm).unwrap(), "Paris (local).");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "said once, not per turn: {log:?}");
    assert!(log[0].contains(&port.to_string()) && log[0].contains("local model answers"), "{log:?}");
}

#[test]
fn a_server_that_never_answers_is_waited_for_only_so_long() {
    let (url, count, _) = server(Script::Hangs);
    let (mut llm, log) = remote(&url, 300);
    let started = Instant::now();
    assert_eq!(ask(&mut llm).unwrap(), "Paris (local).");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "{took:?}");
    assert!(log.lock().unwrap()[0].contains("no answer within 300 ms"), "{:?}", log.lock().unwrap());
    // The next turn, within retry_after, does not wait for it again.
    let started = Instant::now();
    ask(&mut llm).unwrap();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn an_answer_broken_off_is_an_error_not_a_second_answer() {
    let (url, _, _) = server(Script::BreaksOff);
    let (mut llm, log) = remote(&url, 2000);
    let e = ask(&mut llm).unwrap_err().to_string();
    assert!(e.contains("broke off"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn a_refusal_is_logged_with_the_servers_reason() {
    let (url, _, _) = server(Script::NotFound);
    let (mut llm, log) = remote(&url, 2000);
    assert_eq!(ask(&mut llm).unwrap(), "Paris (local).");
    let log = log.lock().unwrap();
    assert!(log[0].contains("404") && log[0].contains("model 'big' not found"), "{log:?}");
}

#[test]
fn a_cancelled_turn_stops_waiting_at_once() {
    let (url, _, _) = server(Script::Hangs);
    let (mut llm, _) = remote(&url, 10_000);
    let started = Instant::now();
    let messages = [ChatMessage::new(Role::User, "Hello")];
    let stop = move || started.elapsed() > Duration::from_millis(100);
    let r = llm.generate(&messages, &GenParams::default(), &stop, &mut |_| Flow::Continue);
    assert!(matches!(r, Err(BackendError::Cancelled)), "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn a_servers_tool_calls_come_through_in_the_local_format() {
    let (url, _, bodies) = server(Script::Calls);
    let (mut llm, _) = remote(&url, 2000);
    let messages = [ChatMessage::new(Role::User, "Weather in Oslo?")];
    let tools = vec![iris_backend::ToolSpec {
        name: "get_weather".into(),
        description: "Weather".into(),
        parameters: r#"{"type":"object"}"#.into(),
    }];
    let params = GenParams { tools, ..GenParams::default() };
    let mut scanner = iris_backend::ToolCallScanner::new(vec!["get_weather".into()]);
    let mut text = String::new();
    llm.generate(&messages, &params, &|| false, &mut |t| {
        text.push_str(&scanner.push(t));
        Flow::Continue
    })
    .unwrap();
    let (rest, calls) = scanner.finish();
    assert_eq!((text + &rest).as_str(), "");
    assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("get_weather", r#"{"city":"Oslo"}"#));
    let sent: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
}
