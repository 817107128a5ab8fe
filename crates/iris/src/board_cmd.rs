//! `iris board`: the edge boards' profiles (`firmware/boards/`), which one this machine is, and
//! laying one's settings over the settings file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use iris_config::{Board, Config};

#[derive(Subcommand)]
pub enum BoardCmd {
    /// Every board profile: what runs where, and the latency to expect.
    List,
    /// Lay a board's settings (model pack, threads, audio) over the settings file's.
    Apply {
        /// rpi5, rk3588, jetson-orin-nano or intel-n100
        name: String,
    },
}

/// What this machine calls itself: the device tree's model on ARM boards, else the CPU's model
/// name. `IRIS_BOARD_MODEL` stands in for both (to check a profile's recognition off the board).
pub fn machine_model() -> String {
    if let Ok(m) = std::env::var("IRIS_BOARD_MODEL") {
        return m;
    }
    let tree = std::fs::read("/proc/device-tree/model").ok().map(|b| String::from_utf8_lossy(&b).trim_end_matches('\0').trim().to_owned());
    tree.filter(|m| !m.is_empty()).unwrap_or_else(cpu_model)
}

/// The CPU's model name from /proc/cpuinfo ("" where it has none, as on most ARM cores).
pub fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).and_then(|l| l.split(':').nth(1)).map_or("", str::trim).to_owned()
}

pub fn run(config: Option<&Path>, cmd: BoardCmd) -> Result<ExitCode> {
    match cmd {
        BoardCmd::List => {
            let here = Board::recognise(&machine_model()).map(|b| b.name);
            for b in Board::all()? {
                let mark = if here.as_deref() == Some(b.name.as_str()) { " (this machine)" } else { "" };
                println!("{}{mark}: {} [{}]", b.name, b.title, b.arch);
                println!("  cpu: {}", b.cpu);
                println!("  accelerators: {}", b.accelerators);
                println!("  latency: {}", b.latency);
            }
            Ok(ExitCode::SUCCESS)
        }
        BoardCmd::Apply { name } => {
            let board = Board::named(&name)?;
            let store = iris_models::Store::from_env()?;
            let path = config.map(Path::to_owned).unwrap_or_else(|| store.home().join("config.toml"));
            let current = Config::load(&path).with_context(|| format!("reading {}", path.display()))?;
            let next = board.apply(&current)?;
            next.save(&path).with_context(|| format!("writing {}", path.display()))?;
            println!("{}: {}'s settings laid over the others", path.display(), board.title);
            if board.arch != std::env::consts::ARCH {
                eprintln!("note: {} needs the {} build; this one is {}", board.title, board.arch, std::env::consts::ARCH);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
