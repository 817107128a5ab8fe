//! `[assistant] model_tools`: Qwen2.5-Coder-0.5B calls the assistant's own calculator for a
//! question the built-in phrasings miss, and the calculator's sentence is the answer; a call
//! the words do not support is not run.

use std::path::Path;
use std::process::Command;

const IRIS: &str = env!("CARGO_BIN_EXE_iris");

fn ask(config: &Path, question: &str) -> String {
    let wav = config.with_extension("wav");
    let out =
        Command::new(IRIS).arg("--config").arg(config).args(["ask", "--text", question, "--json", "--out"]).arg(&wav).output().unwrap();
    assert!(out.status.success(), "iris ask failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["answer"].as_str().unwrap().to_owned()
}

#[test]
fn the_model_calls_the_calculator_when_the_phrasing_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let on = dir.path().join("on.toml");
    std::fs::write(&on, "[models]\nllm = \"qwen2.5-coder-0.5b-instruct\"\n[assistant]\nmodel_tools = true\n").unwrap();
    let off = dir.path().join("off.toml");
    std::fs::write(&off, "[models]\nllm = \"qwen2.5-coder-0.5b-instruct\"\n").unwrap();
    // The matcher does not know "raised to": without tools the model answers in its own words.
    assert_ne!(ask(&off, "What is 17 raised to the power of 2?"), "That is 289.");
    assert_eq!(ask(&on, "What is 17 raised to the power of 2?"), "That is 289.");
    // Nothing to calculate or time: no tool's sentence.
    let answer = ask(&on, "What is the capital of France?");
    assert!(answer.contains("Paris") && !answer.starts_with("That is") && !answer.starts_with("Timer"), "{answer}");
}
