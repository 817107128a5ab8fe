//! `iris bench …`: Iris and the reference tool on the same input, model, thread count and
//! machine, in one run, reported as ratios (>1 means Iris is faster).

mod asr;
mod barge_in;
mod llm;
pub mod loop_bench;
mod onnx;
mod self_talk;
mod soak;
mod synth;
mod tts;
pub mod whisper_cpp;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Time to first audio and real-time factor: Iris vs Piper's runtime.
    Tts(tts::TtsArgs),
    /// Prompt processing and decode speed, and greedy agreement: Iris vs llama.cpp.
    Llm(llm::LlmArgs),
    /// Recognition time and real-time factor: Iris vs whisper.cpp, same model and samples.
    Asr(asr::AsrArgs),
    /// End of speech to first audio out through the simulated room, with each stage's share.
    Loop(loop_bench::LoopArgs),
    /// Mixed turns against `iris serve` with its memory sampled, then bursts of concurrent clients.
    Soak(soak::SoakArgs),
    /// The ONNX models on the CPU provider and on another execution provider beside it.
    Onnx(onnx::OnnxArgs),
    /// Writes a GGUF of a real model's shape with random weights, for speed measurements.
    Synth(synth::SynthArgs),
}

pub fn run(config_path: Option<&Path>, cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {
        BenchCmd::Tts(args) => tts::run(config_path, args),
        BenchCmd::Llm(args) => llm::run(config_path, args),
        BenchCmd::Asr(args) => asr::run(config_path, args),
        BenchCmd::Loop(args) => loop_bench::run(config_path, args),
        BenchCmd::Soak(args) => soak::run(config_path, args),
        BenchCmd::Synth(args) => synth::run(args),
        BenchCmd::Onnx(args) => onnx::run(config_path, args),
    }
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
