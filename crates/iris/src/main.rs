//! `iris`: the offline voice-and-vision assistant. The only crate that sees every backend.

mod alarms;
mod ask;
mod audio_cmd;
mod backends;
mod bench;
mod board_cmd;
mod bundle_cmd;
mod doctor;
mod echo_record;
mod eval;
mod eyes;
mod listen;
mod live;
mod look;
mod models_cmd;
mod progress;
mod say;
mod serve;
mod transcribe;
mod voice_service;
mod wake;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "iris", version, about = "Iris: an offline voice-and-vision assistant")]
struct Cli {
    /// Settings file (default: $IRIS_HOME/config.toml; a missing file means the defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask a spoken question (a WAV file), optionally with a photo or typed text, and get a spoken answer.
    Ask(ask::AskArgs),
    /// Speak text with the configured voice.
    Say(say::SayArgs),
    /// Look at a picture: read its text, say its colour, describe what can be said of it.
    Look(look::LookArgs),
    /// Listen to the room and answer out loud: wake word, question, spoken answer. With
    /// --mic-file and --speaker-file, the same loop runs in a simulated room on files.
    Listen(live::ListenArgs),
    /// Sound devices: `iris audio list`.
    #[command(subcommand)]
    Audio(audio_cmd::AudioCmd),
    /// Serve the panel (set-up, status, settings, models, "try it"), the OpenAI-compatible API
    /// and a Wyoming server for Home Assistant.
    Serve(serve::ServeArgs),
    /// Transcribe WAV files with the configured speech recogniser.
    Transcribe(transcribe::TranscribeArgs),
    /// Measure speed against the reference tool: `iris bench tts`.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Measure quality: `iris eval tts`.
    #[command(subcommand)]
    Eval(eval::EvalCmd),
    /// Say what works on this box and what to do about what does not: devices, CPU, memory,
    /// models, ports, certificate. Exits non-zero when something configured cannot work.
    Doctor(doctor::DoctorArgs),
    /// Edge boards' profiles: `iris board list`, `iris board apply rpi5`.
    #[command(subcommand)]
    Board(board_cmd::BoardCmd),
    /// Offline bundles for a box with no internet: `iris bundle create DIR`.
    #[command(subcommand)]
    Bundle(bundle_cmd::BundleCmd),
    /// Get, list, check, remove and import models.
    #[command(subcommand)]
    Models(models_cmd::ModelsCmd),
}

extern "C" {
    fn signal(signum: std::ffi::c_int, handler: usize) -> usize;
}

/// A command whose output goes to a pipe that closes early (`iris models list | head -1`) ends
/// quietly, as other Unix tools do, instead of panicking in `println!`. Not for the servers:
/// there a client closing its socket must not end the process.
fn quiet_on_closed_pipe() {
    const SIGPIPE: std::ffi::c_int = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default disposition, before any thread is started.
    unsafe { signal(SIGPIPE, SIG_DFL) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Listen(_)) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Ask(args) => ask::run(cli.config.as_deref(), args),
        Command::Say(args) => say::run(cli.config.as_deref(), args),
        Command::Look(args) => look::run(cli.config.as_deref(), args),
        Command::Listen(args) => live::run(cli.config.as_deref(), args),
        Command::Audio(cmd) => audio_cmd::run(cli.config.as_deref(), cmd),
        Command::Serve(args) => serve::run(cli.config.as_deref(), args),
        Command::Transcribe(args) => transcribe::run(cli.config.as_deref(), args),
        Command::Bench(cmd) => bench::run(cli.config.as_deref(), cmd),
        Command::Eval(cmd) => eval::run(cli.config.as_deref(), cmd),
        Command::Models(cmd) => models_cmd::run(cmd),
        Command::Bundle(cmd) => bundle_cmd::run(cmd),
        Command::Doctor(args) => doctor::run(cli.config.as_deref(), args),
        Command::Board(cmd) => board_cmd::run(cli.config.as_deref(), cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: what is wrong and what to do. No backtrace.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            let mut line = chain[0].clone();
            for cause in &chain[1..] {
                if !line.contains(cause.as_str()) {
                    line.push_str(": ");
                    line.push_str(cause);
                }
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
