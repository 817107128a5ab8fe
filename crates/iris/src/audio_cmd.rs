//! `iris audio list`: the sound devices, by the names `[audio] input` and `output` take.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AudioCmd {
    /// List the microphones and loudspeakers.
    List,
}

pub fn run(cmd: AudioCmd) -> Result<ExitCode> {
    match cmd {
        AudioCmd::List => {
            let devices = iris_sound::list()?;
            if devices.is_empty() {
                println!("no sound devices; on a headless box, connect a USB microphone and speaker");
            }
            for d in devices {
                let mut roles = Vec::new();
                if d.input {
                    roles.push(if d.default_input { "input (default)" } else { "input" });
                }
                if d.output {
                    roles.push(if d.default_output { "output (default)" } else { "output" });
                }
                println!("{:<24} {:<32} {}", d.name, roles.join(", "), d.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
