//! `iris bench synth` and `iris bench llm` as a GPU session uses them: a GGUF of a real shape
//! with random weights that Iris and llama.cpp both load and tokenise alike, Iris measured
//! alone (`--python none`), and CUDA asked of a build without it refused with the fix.

mod common;

use std::process::Command;

const IRIS: &str = env!("CARGO_BIN_EXE_iris");

#[test]
fn a_synthetic_model_of_a_real_shape_runs_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qwen2-1.5b.gguf");
    let out = Command::new(IRIS).args(["bench", "synth"]).arg(&file).args(["--shape", "qwen2-1.5b", "--quant", "q4_k_m"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Qwen2.5 1.5B's Q4_K_M file is 1.12 GB with a Q8_0-free mix; this one 0.92 GB.
    let size = std::fs::metadata(&file).unwrap().len();
    assert!((850_000_000..1_000_000_000).contains(&size), "{size} bytes");

    let bad = Command::new(IRIS).args(["bench", "synth"]).arg(dir.path().join("x.gguf")).args(["--shape", "gpt-5"]).output().unwrap();
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("use qwen2-1.5b, llama-3b, llama-8b, smollm2-135m or gemma3-270m")
    );
    // Gemma 3's rows are 640 wide: no K-quants, said with the fix.
    let bad = Command::new(IRIS).args(["bench", "synth"]).arg(dir.path().join("x.gguf")).args(["--shape", "gemma3-270m"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("such as q8_0"));

    let home = common::store_home();
    let run = |args: &[&str]| Command::new(IRIS).args(["bench", "llm"]).arg(&file).args(args).env("IRIS_HOME", &home).output().unwrap();
    // A GPU this build has no support for: refused, naming the fix.
    for (device, built) in [("cuda", cfg!(feature = "cuda")), ("metal", cfg!(feature = "metal"))] {
        if !built {
            let out = run(&["--device", device, "--python", "none"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.contains(&format!("--features {device}")) && err.lines().count() == 1, "{err}");
        }
    }
    // Against llama.cpp where deploy/test.sh provides it, else Iris alone.
    let python = std::env::var("IRIS_LLAMA_PYTHON").unwrap_or_else(|_| "none".into());
    let out = run(&["--python", &python, "--runs", "1", "--tokens", "4"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("iris on iris-cpu"), "{text}");
    if python != "none" {
        assert!(text.contains("tokenizer: same token ids as llama.cpp"), "{text}");
        assert!(text.contains("ratio iris/llama.cpp"), "{text}");
    }

    // Gemma 3's shape (per-head norms, norms after each block, a sliding window the prompt
    // crosses) in a 32-value format: a file both engines load, for the GPU's conformance runs.
    let gemma = dir.path().join("gemma3.gguf");
    let out = Command::new(IRIS).args(["bench", "synth"]).arg(&gemma).args(["--shape", "gemma3-270m", "--quant", "q5_0"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(IRIS)
        .args(["bench", "llm"])
        .arg(&gemma)
        .args(["--python", &python, "--runs", "1", "--tokens", "4"])
        .env("IRIS_HOME", &home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("iris on iris-cpu"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    if python != "none" {
        assert!(text.contains("tokenizer: same token ids as llama.cpp"), "{text}");
    }
}
