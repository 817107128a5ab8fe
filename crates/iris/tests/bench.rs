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

/// `iris bench onnx`: every ONNX model on the CPU provider and beside another provider, timed,
/// with how far the outputs moved and ONNX Runtime's account of where the nodes ran. OpenVINO's
/// plugin offers only Intel hardware: elsewhere the bench stops with that one clear error.
#[test]
fn the_onnx_models_are_timed_on_each_provider_beside_the_cpu_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(images) = std::env::var_os("IRIS_IMAGES_DIR") else {
        panic!("IRIS_IMAGES_DIR (deploy/test.sh) holds the photographed page the OCR reads");
    };
    let run = |provider: &str| {
        Command::new(IRIS)
            .args(["bench", "onnx", "--provider", provider, "--runs", "1", "--json", "--image"])
            .arg(std::path::Path::new(&images).join("page.png"))
            .arg(root.join("tests/data/question.wav"))
            .output()
            .unwrap()
    };
    let intel = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("GenuineIntel");
    let mut providers = vec!["qnn"];
    if intel {
        providers.push("openvino");
    } else {
        let out = run("openvino");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("offers no device"), "{err}");
    }
    for provider in providers {
        let out = run(provider);
        assert!(out.status.success(), "{provider}: {}", String::from_utf8_lossy(&out.stderr));
        // QNN's libraries print a line of their own to standard output.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("{provider}: no JSON report in {stdout}"));
        let report: serde_json::Value = serde_json::from_str(line).expect("a JSON report");
        let models = report["models"].as_array().expect("the models");
        let names: Vec<&str> = models.iter().filter_map(|m| m["model"].as_str()).collect();
        for name in ["silero-vad", "smart-turn", "openwakeword", "ppocr-v6-tiny", "piper"] {
            assert!(names.iter().any(|n| n.starts_with(name)), "{provider}: no {name} in {names:?}");
        }
        for m in models {
            assert!(m["cpu_ms"].as_f64().is_some_and(|t| t > 0.0) && m["provider_ms"].as_f64().is_some_and(|t| t > 0.0), "{m}");
            assert!(m["same_text"].as_bool() == Some(true), "{provider} reads other text: {m}");
            // Piper draws noise inside its model: no difference to compare there.
            if !m["model"].as_str().unwrap_or_default().starts_with("piper") {
                let moved = m["max_difference"].as_f64().unwrap_or(f64::INFINITY);
                assert!(moved < 0.01, "{provider} moves the outputs: {m}");
            }
            assert!(m["placement"].as_str().is_some_and(|p| p.contains("(ONNX Runtime")), "{m}");
        }
    }
}
