//! `iris bench llm`: Iris (its CPU engine, or candle; on the CPU or a GPU) and llama.cpp (the
//! `llama-cpp-python` pip package, which compiles it) on the same GGUF, token ids, thread count,
//! device and machine, in one run; on a GPU, decode's share of the memory roofline too.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::median;
use crate::backends::Models;

#[derive(Args)]
pub struct LlmArgs {
    /// A catalog model id or a path to a GGUF file.
    #[arg(default_value = "smollm2-135m-instruct")]
    model: String,
    /// Tokens decoded per run (greedy).
    #[arg(long, default_value_t = 32)]
    tokens: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The Python that has `llama-cpp-python` installed (it compiles llama.cpp from source);
    /// `none` measures Iris alone.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Which engine runs Iris's side: Iris's own engine where it takes the file (auto: its CPU
    /// engine on the CPU, its CUDA engine on a GPU), or always candle, or always Iris's CPU or
    /// CUDA engine (an error if it does not take the file).
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// Iris's CPU engine on a lesser kernel than this CPU's best (avx512 without AMX's tiles on
    /// a Sapphire Rapids, avx2 on an AVX-512 machine, neon on an ARM core with sdot), to measure
    /// what a CPU without it gets.
    #[arg(long, value_parser = ["avx512", "avx2", "neon", "scalar"])]
    kernel: Option<String>,
    /// Where both sides run: the CPU, or the GPU (Iris: its CUDA engine, or candle's; llama.cpp: all
    /// layers offloaded, which needs a llama-cpp-python whose llama.cpp was built with CUDA).
    #[arg(long, value_parser = ["cpu", "cuda", "metal"], default_value = "cpu")]
    device: String,
    /// Memory bandwidth in GB/s, for decode's share of the roofline (weights and KV cache read
    /// per token ÷ bandwidth). Default: 4800 on CUDA (an H200's HBM3e), none on the CPU.
    #[arg(long)]
    bandwidth_gbs: Option<f64>,
    /// On a GPU, also run the file on Iris's CPU engine and compare the logits and greedy picks.
    #[arg(long)]
    compare_cpu: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EngineArg {
    Auto,
    Candle,
    Cpu,
    Cuda,
}

/// llama.cpp through llama-cpp-python, on the same token ids; greedy from the raw logits. It
/// stays loaded and runs once for each `run` line, so its runs alternate with Iris's: this VM's
/// speed drifts by a third over a minute, which two blocks of runs one after the other took
/// for a difference between the engines.
const LLAMA_CPP: &str = r#"
import json, sys, time
from llama_cpp import Llama  # before numpy: the other order crashed llama.cpp's CUDA build at load
import numpy as np
path, threads, n_gen, text, gpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "cuda"
ids = json.loads(sys.stdin.readline())
llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512, n_gpu_layers=-1 if gpu else 0, verbose=False)
if gpu and not getattr(__import__("llama_cpp").llama_cpp, "llama_supports_gpu_offload", lambda: False)():
    sys.exit("this llama.cpp was built without GPU support")
nv = llm.n_vocab()
def logits(): return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(nv,))
def run():
    llm.reset()
    t0 = time.perf_counter(); llm.eval(ids); pp = time.perf_counter() - t0
    out = []; t1 = time.perf_counter()
    for _ in range(n_gen):
        tok = int(np.argmax(logits())); out.append(tok); llm.eval([tok])
    return {"pp_s": pp, "tg_s": time.perf_counter() - t1, "tokens": out}
run()
print(json.dumps({"tokenized": llm.tokenize(text.encode(), add_bos=False, special=True)}), flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    print(json.dumps(run()), flush=True)
"#;

/// The greedy pick: the first index of the largest logit, as numpy's `argmax` on the other side.
/// The maximum is found first (a loop the compiler vectorises): a scan comparing (index, value)
/// pairs took 0.2 ms on Gemma's 262,144 logits, a sixth of a GPU decode step, charged to Iris alone.
fn argmax(v: &[f32]) -> u32 {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    v.iter().position(|&x| x == max).unwrap_or(0) as u32
}

/// The pause before each run of either engine.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// The llama.cpp process, loaded and warmed up, waiting for `run` lines.
struct Reference {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    stderr: std::thread::JoinHandle<String>,
    python: PathBuf,
}

impl Reference {
    fn start(python: &Path, path: &Path, threads: usize, tokens: usize, text: &str, device: &str, ids: &[u32]) -> Result<(Self, Vec<u32>)> {
        use std::io::{Read, Write};
        let mut child = Command::new(python)
            .args(["-c", LLAMA_CPP])
            .arg(path)
            .args([threads.to_string(), tokens.to_string(), text.to_owned(), device.to_owned()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let (Some(mut stdin), Some(stdout), Some(mut err)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
            bail!("no pipes to {}", python.display());
        };
        // Read as it comes, so a chatty llama.cpp cannot fill the pipe and stall.
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        writeln!(stdin, "{}", serde_json::to_string(ids)?)?;
        let mut reference = Self { child, stdin, stdout: std::io::BufReader::new(stdout), stderr, python: python.to_owned() };
        let ready = reference.line()?;
        let tokenized = ready["tokenized"].as_array().into_iter().flatten().filter_map(|t| t.as_u64().map(|t| t as u32)).collect();
        Ok((reference, tokenized))
    }

    /// One run: pre-fill and decode seconds, and the greedy tokens.
    fn run(&mut self) -> Result<(f64, f64, Vec<u32>)> {
        use std::io::Write;
        writeln!(self.stdin, "run")?;
        let v = self.line()?;
        let tokens = v["tokens"].as_array().into_iter().flatten().filter_map(|t| t.as_u64().map(|t| t as u32)).collect();
        Ok((v["pp_s"].as_f64().unwrap_or(f64::NAN), v["tg_s"].as_f64().unwrap_or(f64::NAN), tokens))
    }

    /// The next JSON line, or the process's own last words if it ended instead.
    fn line(&mut self) -> Result<serde_json::Value> {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        // A line of JSON from a script of ours: 16 MiB is far beyond any real one.
        Read::take(&mut self.stdout, 16 << 20).read_line(&mut line)?;
        if line.trim().is_empty() {
            let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
            let err = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new)).join().unwrap_or_default();
            if err.contains("No module named 'llama_cpp'") {
                bail!(
                    "the reference needs llama.cpp: `{} -m pip install llama-cpp-python` (it compiles llama.cpp), or --python with one that has it",
                    self.python.display()
                );
            }
            bail!("llama.cpp failed ({status}): {}", err.lines().last().unwrap_or("it printed nothing").trim());
        }
        serde_json::from_str(&line).context("llama.cpp printed no timings")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(config_path: Option<&Path>, args: LlmArgs) -> Result<ExitCode> {
    use iris_backend::{ChatMessage, Role};
    anyhow::ensure!(args.runs > 0 && args.tokens > 0, "--runs and --tokens must be at least 1");
    let models = Models::open(config_path)?;
    let config = &models.config;
    let path = if Path::new(&args.model).is_file() { PathBuf::from(&args.model) } else { models.file(&args.model, "llm")? };
    if let Some(kernel) = &args.kernel {
        // Read once, when the engine first picks its kernel (below, at load).
        std::env::set_var("IRIS_LLM_KERNEL", kernel);
    }
    let engine = match args.engine {
        EngineArg::Auto => iris_llm_candle::Engine::Auto,
        EngineArg::Candle => iris_llm_candle::Engine::Candle,
        EngineArg::Cpu => iris_llm_candle::Engine::Cpu,
        EngineArg::Cuda => iris_llm_candle::Engine::Cuda,
    };
    let device = iris_whisper_candle::device(&args.device)?;
    let mut llm = iris_llm_candle::LlamaChat::load_on_device(&path, 4096, iris_llm_candle::plan::available_memory(), engine, &device)?;
    let text = llm.render(&[
        ChatMessage::new(Role::System, "You are a helpful AI assistant named Iris. Give short, correct answers."),
        ChatMessage::new(Role::User, "Explain in a few sentences why the sky is blue, and what happens at sunset."),
    ])?;
    let ids: Vec<u32> = llm.tokenizer().encode(text.as_str(), false).map_err(|e| anyhow::anyhow!("{e}"))?.get_ids().to_vec();
    let mut once = || -> Result<(f64, f64, Vec<u32>)> {
        let t0 = Instant::now();
        let mut logits = llm.logits_after(&ids, 0)?;
        let pp = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut out = Vec::new();
        for i in 0..args.tokens {
            let t = argmax(&logits);
            out.push(t);
            logits = llm.logits_after(&[t], ids.len() + i)?;
        }
        Ok((pp, t1.elapsed().as_secs_f64(), out))
    };
    let threads = config.threads();
    // Started first, so its runs can alternate with Iris's; a failure to start is reported after
    // Iris's own figures.
    let mut reference = (args.python.as_os_str() != "none")
        .then(|| Reference::start(&args.python, &path, threads, args.tokens, &text, &args.device, &ids))
        .transpose();
    once()?;
    let (mut runs, mut ref_runs) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        // llama.cpp's OpenMP threads spin for a while after its run, and Iris's for 200 µs after
        // each job: each side starts on quiet cores.
        std::thread::sleep(SETTLE);
        runs.push(once()?);
        if let Ok(Some((r, _))) = &mut reference {
            std::thread::sleep(SETTLE);
            ref_runs.push(r.run()?);
        }
    }
    let (iris_pp, iris_tg) = (median(runs.iter().map(|r| r.0)), median(runs.iter().map(|r| r.1)));
    let iris_tokens = runs[0].2.clone();
    // Printed now, so a reference that failed does not lose them.
    println!("iris on {}: prompt {:.1} tok/s, decode {:.1} tok/s", llm.engine(), ids.len() as f64 / iris_pp, args.tokens as f64 / iris_tg);
    if args.device != "cpu" && args.compare_cpu {
        agreement_with_cpu(&path, &ids, &mut llm)?;
    }
    let Some((_, ref_ids)) = reference? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (ref_pp, ref_tg) = (median(ref_runs.iter().map(|r| r.0)), median(ref_runs.iter().map(|r| r.1)));
    let ref_tokens = ref_runs[0].2.clone();
    // Each alternating pair's own ratio: how far the machine's drift moves a single one.
    let spread = |f: fn(&(f64, f64, Vec<u32>)) -> f64| {
        let r: Vec<f64> = runs.iter().zip(&ref_runs).map(|(i, l)| f(l) / f(i)).collect();
        (r.iter().copied().fold(f64::MAX, f64::min), r.iter().copied().fold(f64::MIN, f64::max))
    };
    let ((pp_lo, pp_hi), (tg_lo, tg_hi)) = (spread(|r| r.0), spread(|r| r.1));

    let n = ids.len() as f64;
    let g = args.tokens as f64;
    println!(
        "{} ({} threads, {} prompt tokens, {} decoded, median of {} runs, the two engines taking turns)",
        path.display(),
        threads,
        ids.len(),
        args.tokens,
        args.runs
    );
    println!("iris runs on {}", llm.engine());
    println!("{:<10} {:>16} {:>14}", "", "prompt tok/s", "decode tok/s");
    println!("{:<10} {:>16.1} {:>14.1}", "iris", n / iris_pp, g / iris_tg);
    println!("{:<10} {:>16.1} {:>14.1}", "llama.cpp", n / ref_pp, g / ref_tg);
    println!("ratio iris/llama.cpp (>1 is faster): prompt x{:.2}, decode x{:.2}", ref_pp / iris_pp, ref_tg / iris_tg);
    println!("each run against the llama.cpp run after it: prompt x{pp_lo:.2} to x{pp_hi:.2}, decode x{tg_lo:.2} to x{tg_hi:.2}");
    let bandwidth = args.bandwidth_gbs.or((args.device == "cuda").then_some(4800.0));
    if let Some(gbs) = bandwidth {
        // Per decoded token: the weights, and the KV cache up to the middle of the decode.
        let (weights, kv_per_pos) = iris_llm_candle::LlamaChat::decode_traffic(&path)?;
        let per_token = weights + kv_per_pos * (ids.len() as u64 + args.tokens as u64 / 2);
        let roofline = gbs * 1e9 / per_token as f64;
        println!(
            "roofline: {:.1} MB read per decoded token, {:.0} tok/s at {gbs:.0} GB/s; iris at {:.1} %, llama.cpp at {:.1} %",
            per_token as f64 / 1e6,
            roofline,
            100.0 * g / iris_tg / roofline,
            100.0 * g / ref_tg / roofline
        );
    }
    println!(
        "tokenizer: {}",
        if ref_ids == ids { "same token ids as llama.cpp".to_owned() } else { format!("differs ({} vs {} ids)", ids.len(), ref_ids.len()) }
    );
    let k = 16.min(args.tokens);
    let agree = iris_tokens.iter().zip(&ref_tokens).take(k).take_while(|(a, b)| a == b).count();
    println!("greedy: first {agree} of {k} tokens identical to llama.cpp{}", if agree == k { "" } else { " (then they diverge)" });
    println!("iris:      {:?}", llm.tokenizer().decode(&iris_tokens[..k], false).unwrap_or_default());
    println!("llama.cpp: {:?}", llm.tokenizer().decode(&ref_tokens[..k.min(ref_tokens.len())], false).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// The GPU's logits against Iris's CPU engine on the same file and ids: the largest difference
/// after the prompt, and greedy agreement over 16 steps, each fed the CPU's token.
fn agreement_with_cpu(path: &Path, ids: &[u32], gpu: &mut iris_llm_candle::LlamaChat) -> Result<()> {
    let mut cpu =
        iris_llm_candle::LlamaChat::load_on(path, 4096, iris_llm_candle::plan::available_memory(), iris_llm_candle::Engine::Auto)?;
    let (mut a, mut b) = (gpu.logits_after(ids, 0)?, cpu.logits_after(ids, 0)?);
    let spread = b.iter().fold(f32::MIN, |m, v| m.max(*v)) - b.iter().fold(f32::MAX, |m, v| m.min(*v));
    let first = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let (mut same, mut gaps) = (0, Vec::new());
    for i in 0..16 {
        let (g, c) = (argmax(&a), argmax(&b));
        if g == c {
            same += 1;
        } else {
            gaps.push(format!("{i}: {:.3}", b[c as usize] - b[g as usize]));
        }
        a = gpu.logits_after(&[c], ids.len() + i)?;
        b = cpu.logits_after(&[c], ids.len() + i)?;
    }
    println!(
        "{} against {}: logits after the prompt at most {first:.3} apart (range {spread:.2}); greedy {same} of 16 the same, each step fed the CPU's token{}",
        gpu.engine(),
        cpu.engine(),
        if gaps.is_empty() { String::new() } else { format!(" (CPU logit gaps where not: {})", gaps.join(", ")) }
    );
    Ok(())
}
