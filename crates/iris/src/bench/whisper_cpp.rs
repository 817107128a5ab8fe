//! The reference whisper.cpp for `iris eval asr` and `iris bench asr`: the pywhispercpp pip
//! package, driven by a small script on the same model file, thread count and samples.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::json;

const SCRIPT: &str = include_str!("whisper_cpp.py");

pub struct RefRun {
    pub load_s: f64,
    /// Per input, in order: the transcript and the median time of `runs` decodes.
    pub results: Vec<(String, f64)>,
}

/// Transcribes each of `inputs` (16 kHz mono) `runs` times with whisper.cpp.
pub fn transcribe(python: &Path, model: &Path, threads: usize, language: &str, inputs: &[&[f32]], runs: usize) -> Result<RefRun> {
    let dir = tempdir()?;
    let mut files = Vec::new();
    for (i, pcm) in inputs.iter().enumerate() {
        let path = dir.join(format!("{i}.f32"));
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        files.push(path);
    }
    let job = json!({"model": model, "threads": threads, "language": language, "runs": runs, "files": files});
    let result = run_script(python, &job.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let out = result?;
    let mut lines = out.lines().map(serde_json::from_str::<serde_json::Value>);
    let head = lines.next().context("whisper.cpp printed nothing")??;
    let mut results = Vec::new();
    for line in lines {
        let v = line.context("whisper.cpp printed something that is not JSON")?;
        results.push((v["text"].as_str().unwrap_or_default().to_owned(), v["s"].as_f64().unwrap_or(f64::NAN)));
    }
    if results.len() != inputs.len() {
        bail!("whisper.cpp answered {} of {} files", results.len(), inputs.len());
    }
    Ok(RefRun { load_s: head["load_s"].as_f64().unwrap_or(f64::NAN), results })
}

fn run_script(python: &Path, job: &str) -> Result<String> {
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(job.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'pywhispercpp'") || err.contains("No module named 'numpy'") {
            bail!(
                "the reference needs whisper.cpp: `{} -m pip install --no-binary pywhispercpp pywhispercpp==1.5.1` \
                 (it compiles whisper.cpp for this CPU), or --python with one that has it",
                python.display()
            );
        }
        bail!("whisper.cpp failed: {}", err.lines().last().unwrap_or("").trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("iris-whisper-cpp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
